"""`verify`: run every engine on the same held-out inputs and measure how they agree.

    checkpoint (.pt) ──compile in memory (or --ir file)──► fixed IR
         │                                                  │
         ├─ "float"        torch model, float64             ├─ "emulator"  fixed-point emulator
         └─ "torch-fixed"  torch model, Lava integer mode   └─ "lava"      Lava fixed_pt (first lava_samples)

Inputs are the first ``samples`` held-out test samples of the task, encoded
exactly as the model was trained (the checkpoint's or IR's ``encoding``).
Given a compiled network file instead of a checkpoint, the float reference is
the float emulator on the IR's float parameters and there is no torch-fixed.
The engines are `toolchain.engines`.

What is measured:

* **bit-identity** of neighbouring fixed-point engines (torch-fixed vs
  emulator, emulator vs Lava): every recorded variable of every neuron node,
  sample, step and neuron, and the first divergence (`toolchain.verify.compare`);
* **spike timing** of float vs fixed (`toolchain.verify.timing`), per node;
* **task accuracy** of every engine (`models.losses.predict`, the spike-count
  readout) and how often engines predict the same class.

`toolchain.verify.criteria` turns the numbers into PASS/FAIL. Steps are
numbered t = 1..T in every message (array index + 1), as in Lava.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from models.errors import SpikeportError
from models.losses import predict
from toolchain import engines as eng
from toolchain import scaleout
from toolchain import ir as irm
from toolchain.verify import timing
from toolchain.verify.compare import compare_bit_identity, variables_text
from toolchain.verify.criteria import Tolerances, criteria
from toolchain.methods.superspike.config import with_task
from toolchain.verify.subject import Subject, held_out_inputs, load_subject

FIXED_CHAIN = ("torch-fixed", "emulator", "lava")  # neighbours here must be bit-identical
ENGINES = tuple(eng.ENGINES)
DEFAULT_LAVA_SAMPLES = 20


@dataclass
class VerifyResult:
    """Every number verify measured; ``outputs``/``inputs`` hold the raw traces for the report."""

    source: str
    task: str
    encoding: dict
    seeds: dict  # verify (stochastic encoders), training (the model's config)
    samples: int
    lava_samples: int
    float_engine: str
    compile_mode: str
    quantization: dict
    output_node: str
    nodes: list
    engines: dict  # name -> {samples, accuracy, seconds}
    agreement: dict  # "a vs b" -> fraction of common samples with the same prediction
    bit_identity: list  # BitIdentity of each fixed-point neighbour pair
    timing: dict  # "float vs X" -> node -> timing.compare(...)
    timing_pair: Optional[str]  # the float-vs-fixed pair the criteria read
    tolerances: Tolerances
    criteria: list  # Criterion
    outputs: dict = field(default_factory=dict, repr=False)
    inputs: Optional[np.ndarray] = field(default=None, repr=False)
    labels: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)

    @property
    def exit_status(self) -> int:
        return 0 if self.passed else 1

    def predictions(self, engine: str) -> np.ndarray:
        return predict(self.outputs[engine][f"{self.output_node}/s"])

    def variables_text(self, comparison=None) -> str:
        """The variables a bit-identity comparison (default: the first) compared, as text ("s, v, u")."""
        return _variables(self.outputs, comparison or self.bit_identity[0], self.output_node)

    def to_dict(self) -> dict:
        """All numbers, JSON-ready (no raw traces)."""
        skip = {"outputs", "inputs", "labels"}
        out = {k: v for k, v in asdict(self).items() if k not in skip}
        out["passed"], out["exit_status"] = self.passed, self.exit_status
        return _jsonable(out)


# ------------------------------------------------------------------ engines
def backend_names(backends, allowed=ENGINES, model: str = "") -> list[str]:
    """``--backends`` (comma-separated text or a sequence of names) as a list of engine
    names, each one of ``allowed`` (blank entries skipped); a one-line error names the
    first unknown one, the kind of ``model`` and the choices."""
    names = [b.strip() for b in (backends.split(",") if isinstance(backends, str) else backends) if b.strip()]
    unknown = next((n for n in names if n not in allowed), None) if names else "(none given)"
    if unknown is not None:
        kind = f" for a {model} model" if model else ""
        raise SpikeportError(f"verify: unknown engine {unknown!r}{kind}; choose from {', '.join(allowed)}")
    return names


def _check_request(samples: int, backends) -> None:
    """Refuse a bad sample count or engine name before anything slow runs."""
    if samples < 1:
        raise SpikeportError(f"verify: samples={samples} is outside [1, inf)")
    backend_names(backends)


def _engine_plan(backends, subject: Subject, samples: int, lava_samples: Optional[int]) -> dict:
    """Engine -> number of samples it runs on (torch-fixed whenever a model is available)."""
    names = backend_names(backends)
    if subject.model is None and "torch-fixed" in names:
        raise SpikeportError(f"{subject.source}: engine 'torch-fixed' needs a .pt checkpoint, not only an IR")
    if subject.model is not None and "torch-fixed" not in names:
        names.append("torch-fixed")
    n_lava = min(samples, DEFAULT_LAVA_SAMPLES) if lava_samples is None else min(lava_samples, samples)
    if n_lava < 1 and any(n.startswith("lava") for n in names):
        raise SpikeportError(f"verify: lava_samples={lava_samples} is outside [1, {samples}]")
    order = [e for e in ENGINES if e in names]
    return {name: n_lava if name.startswith("lava") else samples for name in order}


def run_engine(name: str, subject: Subject, x: np.ndarray, **options) -> dict:
    """Outputs of engine ``name`` on inputs ``x`` (B, T, N): `toolchain.engines.run` on the subject,
    sharded over the active scale-out pool (`toolchain.scaleout.run`); ``options`` go to the engine."""
    return scaleout.run(name, subject.ir, x, model=subject.model, **options)


# ------------------------------------------------------------------- verify
def verify(model_path_or_ir, task: Optional[str] = None, samples: int = 100, lava_samples: Optional[int] = None,
           backends=("float", "emulator", "lava"), seed: int = 0, tolerances: Optional[Tolerances] = None, *,
           ir=None, meta: Optional[dict] = None, calibration_samples: int = 256,
           lava_batching: str = "tile") -> VerifyResult:
    """Run the engines on the first ``samples`` test inputs and compare them (see module doc).

    ``model_path_or_ir``: ``.pt`` or network file path, `IR`, or `Network` (with
    ``meta``); ``ir``: a compiled IR (path or `IR`) to check against the
    checkpoint. Lava engines run on the first ``lava_samples`` samples
    (default ``min(samples, 20)``), ``lava_batching`` "tile" (one network, samples side by
    side) or "per-sample" (one network per sample). Engines run sharded over the active
    scale-out pool, if any (`toolchain.scaleout`): the numbers are the same.
    """
    tol = tolerances or Tolerances()
    _check_request(samples, backends)
    subject = load_subject(model_path_or_ir, ir=ir, meta=meta, calibration_samples=calibration_samples, task=task)
    meta = with_task(subject.meta, task)
    x, y = held_out_inputs(meta["task"], meta["encoding"], samples, seed)
    _check_input_size(subject.ir, x)
    plan = _engine_plan(backends, subject, len(x), lava_samples)
    nodes = subject.ir.names(irm.Neuron)
    output_node = _output_node(subject.ir)
    outputs, engines, preds = {}, {}, {}
    for name, n in plan.items():
        start = time.perf_counter()
        options = dict(batching=lava_batching) if name.startswith("lava") else {}
        outputs[name] = run_engine(name, subject, x[:n], **options)
        preds[name] = predict(outputs[name][f"{output_node}/s"])
        engines[name] = dict(samples=int(n), accuracy=float((preds[name] == y[:n]).mean()),
                             seconds=time.perf_counter() - start)
    fixed = [e for e in FIXED_CHAIN if e in outputs]
    identity = [compare_bit_identity(a, outputs[a], b, outputs[b], nodes) for a, b in zip(fixed, fixed[1:])]
    pairs = _timing_pairs(outputs, fixed)
    timing_result = _timing(outputs, nodes, pairs)
    pair = f"{pairs[0][0]} vs {pairs[0][1]}" if pairs and pairs[0][1] in fixed else None
    compared = [(c, _variables(outputs, c, output_node)) for c in identity]
    checks = criteria(compared, timing_result, pair, output_node, {e: p == y[:len(p)] for e, p in preds.items()}, tol)
    return VerifyResult(
        source=subject.source, task=meta["task"], encoding=meta["encoding"], samples=len(x),
        seeds=dict(verify=seed, training=meta.get("train_config", {}).get("seed")),
        lava_samples=max((n for e, n in plan.items() if e.startswith("lava")), default=0),
        float_engine=("torch model, float64" if subject.model is not None else "emulator, IR float parameters"),
        compile_mode=subject.ir.meta.get("quantization_mode", "unknown"),
        quantization=subject.ir.meta.get("quantization", {}), output_node=output_node, nodes=nodes,
        engines=engines, agreement=_agreement(preds),
        bit_identity=identity, timing=timing_result, timing_pair=pair, tolerances=tol, criteria=checks,
        outputs=outputs, inputs=x, labels=y)


def _variables(outputs: dict, comparison, node: str) -> str:
    """The variables ``comparison`` compared in ``node``, as text ("s, v, u")."""
    a, b = comparison.engines
    return variables_text(outputs[a], outputs[b], node)


def _timing_pairs(outputs: dict, fixed: list) -> list:
    """(reference, test) pairs for spike timing: float vs the first fixed engine, then float engines."""
    if "float" not in outputs:
        return []
    primary = [f for f in ("emulator", "torch-fixed", "lava") if f in fixed][:1]
    others = [e for e in ("float-emulator", "lava-float") if e in outputs]
    return [("float", e) for e in primary + others]


def _timing(outputs: dict, nodes: list, pairs: list) -> dict:
    """``"float vs X"`` -> node -> `timing.compare` on the samples both ran."""
    result = {}
    for ref, test in pairs:
        n = min(outputs[ref][f"{nodes[0]}/s"].shape[0], outputs[test][f"{nodes[0]}/s"].shape[0])
        result[f"{ref} vs {test}"] = {node: timing.compare(outputs[ref][f"{node}/s"][:n],
                                                           outputs[test][f"{node}/s"][:n]) for node in nodes}
    return result


def _agreement(predictions: dict) -> dict:
    """Fraction of common samples on which two engines predict the same class, every pair."""
    names, out = list(predictions), {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            n = min(len(predictions[a]), len(predictions[b]))
            out[f"{a} vs {b}"] = float((predictions[a][:n] == predictions[b][:n]).mean())
    return out


def _output_node(ir: irm.IR) -> str:
    outputs = ir.names(irm.Output)
    if not outputs or not ir.inputs(outputs[0]):
        raise SpikeportError(f"IR {ir.name!r}: no Output node marks the result")
    return ir.inputs(outputs[0])[0]


def _check_input_size(ir: irm.IR, x: np.ndarray) -> None:
    name = ir.names(irm.Input)[0]
    if ir.op(name).size != x.shape[-1]:
        raise SpikeportError(f"{name}: the network takes {ir.op(name).size} input channels but the task's "
                             f"encoded inputs have {x.shape[-1]}")


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
