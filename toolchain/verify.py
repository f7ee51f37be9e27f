"""`spikeport verify`: run every engine on the same held-out inputs and prove they agree.

    checkpoint (.pt) ──compile in memory (or --ir file)──► fixed IR
         │                                                  │
         ├─ "float"        torch model, float64             ├─ "emulator"  fixed-point emulator
         └─ "torch-fixed"  torch model, Lava integer mode   └─ "lava"      Lava fixed_pt (first lava_samples)

Inputs are the first ``samples`` held-out test samples of the task, encoded
exactly as the model was trained (the checkpoint's or IR's ``encoding``).
Given a compiled ``.onnx`` instead of a checkpoint, the float reference is
the float emulator on the IR's float parameters and there is no torch-fixed.

What is checked:

* **bit-exactness** of neighbouring fixed-point engines (torch-fixed vs
  emulator, emulator vs Lava): identical s, v (post-reset) and u for every
  neuron node, sample, step and neuron. The first divergence is the earliest
  step, then the most upstream node, then u before v before s (the order in
  which a step computes them), then the lowest sample and neuron;
* **spike timing** of float vs fixed (`toolchain.timing`), per node;
* **task accuracy** of every engine (`models.losses.predict`, the spike-count
  readout) and how often engines predict the same class.

Steps are numbered t = 1..T in every message (array index + 1), as in Lava.
Exit status of `cmd_verify`: 0 when every criterion holds, 1 when one fails,
2 on bad input (`SpikeportError`, printed as one line by the CLI).
"""
from __future__ import annotations

import copy
import inspect
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from models.errors import SpikeportError
from models.losses import predict
from models.network import Network
from toolchain import ir as irm
from toolchain import timing

FIXED_CHAIN = ("torch-fixed", "emulator", "lava")  # neighbours here must be bit-identical
ENGINES = ("float", "float-emulator", "torch-fixed", "emulator", "lava", "lava-float")
VARS = ("u", "v", "s")  # the order in which one step computes them
DEFAULT_LAVA_SAMPLES = 20


@dataclass
class Tolerances:
    """Pass criteria besides bit-exactness (None disables a criterion).

    ``min_match_1``: fraction of the float reference's output-layer spikes
    that the fixed engine matches within +-1 step. ``max_accuracy_drop``:
    float accuracy minus fixed accuracy (absolute fraction). ``max_timing_error``:
    mean |first-spike-time error| of the output layer, in steps.
    """

    min_match_1: Optional[float] = 0.9
    max_accuracy_drop: Optional[float] = 0.05
    max_timing_error: Optional[float] = None


@dataclass
class Subject:
    """What is verified: a fixed-point IR and, when available, the torch model it came from."""

    ir: irm.IR
    model: Optional[Network]
    meta: dict
    source: str


@dataclass
class Divergence:
    """The first place two fixed-point engines disagree (step is 1-based)."""

    engines: tuple
    node: str
    var: str
    sample: int
    neuron: int
    step: int
    values: tuple

    def describe(self) -> str:
        a, b = self.engines
        return (f"first divergence at node {self.node}, neuron {self.neuron}, step {self.step}, sample "
                f"{self.sample}: {self.var} = {self.values[0]} ({a}) vs {self.values[1]} ({b})")


@dataclass
class ExactComparison:
    """Bit-exact comparison of two fixed-point engines over their common samples."""

    engines: tuple
    samples: int
    identical_samples: int  # samples whose s, v, u agree in every node
    identical_by_node: dict  # node -> samples identical in that node
    first_divergence: Optional[Divergence] = None
    arrays: int = 0  # (sample, node, variable) arrays compared, each (T, n)
    identical_arrays: int = 0
    values: int = 0  # single recorded values compared
    equal_values: int = 0

    @property
    def identical(self) -> bool:
        return self.identical_samples == self.samples

    @property
    def label(self) -> str:
        return f"{self.engines[0]} = {self.engines[1]}"


@dataclass
class Criterion:
    name: str
    passed: bool
    detail: str


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
    exact: list  # ExactComparison
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

    def to_dict(self) -> dict:
        """All numbers, JSON-ready (no raw traces)."""
        skip = {"outputs", "inputs", "labels"}
        out = {k: v for k, v in asdict(self).items() if k not in skip}
        out["passed"], out["exit_status"] = self.passed, self.exit_status
        return _jsonable(out)


# ------------------------------------------------------------------ loading
def load_subject(target, ir=None, meta: Optional[dict] = None, calibration_samples: int = 256,
                 task: Optional[str] = None) -> Subject:
    """Resolve what to verify.

    ``target``: a ``.pt`` checkpoint or compiled ``.onnx`` path, an `IR`, or a
    `Network` (then ``meta`` gives its ``task`` and ``encoding``). ``ir``: a
    compiled IR (path or `IR`) to verify against the checkpoint; without it a
    checkpoint is compiled in memory (`toolchain.compiler.compile_network`,
    calibrated on ``task``'s training data, default the recorded task).
    """
    model, source = None, _describe_target(target)
    if isinstance(target, irm.IR):
        subject_ir, meta = target, {**target.meta, **(meta or {})}
    elif isinstance(target, Network):
        model, subject_ir, meta = target, None, dict(meta or {})
    else:
        path = _existing(target)
        if path.suffix == ".pt":
            from toolchain import checkpoint

            model, stored = checkpoint.load(path)
            subject_ir, meta = None, {**stored, **(meta or {})}
        elif path.suffix == ".onnx":
            subject_ir = _load_ir(path)
            meta = {**subject_ir.meta, **(meta or {})}
        else:
            raise SpikeportError(f"{path}: expected a .pt checkpoint or a compiled .onnx file")
    if ir is not None:
        subject_ir = ir if isinstance(ir, irm.IR) else _load_ir(_existing(ir))
        source += f" with {_describe_target(ir)}" if isinstance(ir, irm.IR) else f" with IR {ir}"
    if subject_ir is None:
        from toolchain.compiler import compile_network

        subject_ir = compile_network(model, _with_task(meta, task), calibration_samples)
    if not subject_ir.is_fixed:
        raise SpikeportError(f"{source}: the IR holds float parameters only; compile it first (spikeport compile)")
    if model is not None:
        _check_same_architecture(model, subject_ir)
    return Subject(ir=subject_ir, model=model, meta=meta, source=source)


def _describe_target(target) -> str:
    if isinstance(target, irm.IR):
        return f"in-memory IR {target.name!r}"
    if isinstance(target, Network):
        return "torch Network"
    return str(target)


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise SpikeportError(f"{path}: no such file")
    return path


def _load_ir(path: Path) -> irm.IR:
    from toolchain import formats

    return formats.load(path)


def _check_same_architecture(model: Network, ir: irm.IR) -> None:
    """The IR must be the lowering of this model: same layer nodes and weight shapes."""
    for i, layer in enumerate(model.layers):
        node = f"layers.{i}.dense"
        shape = tuple(layer.weight.shape)
        if node not in ir.graph or tuple(ir.op(node).weight.shape) != shape:
            found = tuple(ir.op(node).weight.shape) if node in ir.graph else "missing"
            raise SpikeportError(f"{node}: the IR does not match the checkpoint (weight shape {found}, "
                                 f"checkpoint {shape})")


def _with_task(meta: dict, task: Optional[str]) -> dict:
    """``meta`` with the task (``task`` overrides) and its input encoding filled in."""
    from toolchain.train import TASK_DEFAULTS

    task = task or meta.get("task")
    if not task:
        raise SpikeportError("no task recorded in the model; pass --task")
    encoding = meta.get("encoding")
    if encoding is None:
        if task not in TASK_DEFAULTS:
            raise SpikeportError(f"unknown task {task!r}; choose one of {', '.join(TASK_DEFAULTS)}")
        encoding = TASK_DEFAULTS[task]["encoding"]
    return {**meta, "task": task, "encoding": dict(encoding)}


# ------------------------------------------------------------------- inputs
def held_out_inputs(task: str, encoding: dict, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` held-out test samples, encoded: spikes (B, T, N) int32 and labels (B,).

    ``seed`` seeds a stochastic encoder unless the recorded encoding fixes one.
    """
    from toolchain.tasks import datasets, encoders
    from toolchain.train import encode

    data = datasets.load_task(task)
    encoder = encoders.ENCODERS.get(encoding.get("name"))
    if encoder is not None and "seed" in inspect.signature(encoder).parameters:
        encoding = {"seed": seed, **encoding}
    x = encode(data.x_test[:samples], encoding).numpy()
    return np.rint(x).astype(np.int32), np.asarray(data.y_test[:samples])


# ------------------------------------------------------------------ engines
def _torch_outputs(model: Network, x: np.ndarray, mode: str) -> dict:
    """Run the torch model; the engines' dict layout: ``layers.i/{s,v,u}``, v post-reset."""
    with torch.no_grad():
        traces = model(torch.as_tensor(x, dtype=torch.float64), mode=mode)
    out = {}
    for i, trace in enumerate(traces):
        s, v, u = (t.numpy() for t in (trace.s, trace.v_post, trace.u))
        as_state = (lambda a: a.astype(np.int32)) if mode == "fixed" else (lambda a: a)  # as the backends
        out.update({f"layers.{i}/s": s.astype(np.int8), f"layers.{i}/v": as_state(v),
                    f"layers.{i}/u": as_state(u)})
    return out


def _fixed_model(subject: Subject) -> Network:
    """A copy of the torch model scaled like the IR, so fixed mode computes the IR's integers."""
    from toolchain.quantize import apply_scales

    model = copy.deepcopy(subject.model)
    if "quantization" in subject.ir.meta:
        apply_scales(model, subject.ir)
    elif not model.has_fixed_scale:
        raise SpikeportError(f"{subject.source}: the IR records no quantization scales and the model has "
                             "none; cannot run the torch fixed-point model")
    return model


def run_engine(name: str, subject: Subject, x: np.ndarray) -> dict:
    """Outputs of engine ``name`` on inputs ``x`` (B, T, N): ``{"<node>/s|v|u": (B, T, n)}``."""
    if name == "float" and subject.model is not None:
        return _torch_outputs(subject.model, x, "float")
    if name == "torch-fixed":
        return _torch_outputs(_fixed_model(subject), x, "fixed")
    if name in ("float", "float-emulator", "emulator"):
        from backends.emulator import run

        return run(subject.ir, x, mode="fixed" if name == "emulator" else "float")
    if name in ("lava", "lava-float"):
        from backends.lava.runner import run_lava

        return run_lava(subject.ir, x, mode="fixed" if name == "lava" else "float")
    raise SpikeportError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")


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


# ---------------------------------------------------------------- comparing
def compare_exact(a: str, out_a: dict, b: str, out_b: dict, nodes: list) -> ExactComparison:
    """Bit-exact comparison of s, v, u of every node over the samples both engines ran: identical
    samples (per node and in all), arrays and values, and the first divergence."""
    n = min(out_a[f"{nodes[0]}/s"].shape[0], out_b[f"{nodes[0]}/s"].shape[0])
    identical, by_node, first_key, first = np.ones(n, bool), {}, None, None
    counts = dict(arrays=0, identical_arrays=0, values=0, equal_values=0)
    for node_index, node in enumerate(nodes):
        same = np.ones(n, bool)
        for var_index, var in enumerate(VARS):
            x, y = np.asarray(out_a[f"{node}/{var}"][:n]), np.asarray(out_b[f"{node}/{var}"][:n])
            if x.shape != y.shape:
                raise SpikeportError(f"{node}/{var}: {a} gives shape {x.shape}, {b} gives {y.shape}")
            diff = x != y
            same_array = ~diff.any(axis=(1, 2))
            same &= same_array
            counts["arrays"] += n
            counts["identical_arrays"] += int(same_array.sum())
            counts["values"] += diff.size
            counts["equal_values"] += diff.size - int(diff.sum())
            hit = _earliest(diff)
            if hit is not None:
                step, sample, neuron = hit
                key = (step, node_index, var_index, sample, neuron)
                if first_key is None or key < first_key:
                    first_key = key
                    first = Divergence(engines=(a, b), node=node, var=var, sample=sample, neuron=neuron,
                                       step=step + 1, values=(_scalar(x[sample, step, neuron]),
                                                              _scalar(y[sample, step, neuron])))
        by_node[node] = int(same.sum())
        identical &= same
    return ExactComparison(engines=(a, b), samples=n, identical_samples=int(identical.sum()),
                           identical_by_node=by_node, first_divergence=first, **counts)


def _earliest(diff: np.ndarray) -> Optional[tuple[int, int, int]]:
    """(step index, sample, neuron) of the earliest True of a (B, T, n) array, by step first."""
    if not diff.any():
        return None
    by_step = diff.transpose(1, 0, 2)
    step, sample, neuron = np.unravel_index(int(by_step.argmax()), by_step.shape)
    return int(step), int(sample), int(neuron)


def _scalar(value):
    return value.item() if hasattr(value, "item") else value


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


def _criteria(exact: list, timing_result: dict, pair: Optional[str], output_node: str, correct: dict,
              tol: Tolerances) -> list:
    """Pass/fail of every check; ``correct``: engine -> per-sample correctness of its prediction."""
    crit = [Criterion(f"bit-exact {c.label}", c.identical,
                      f"{c.identical_samples}/{c.samples} samples identical (s, v, u, every node)"
                      + (f"; {c.first_divergence.describe()}" if c.first_divergence else ""))
            for c in exact]
    if pair is None:
        return crit
    out = timing_result[pair][output_node]
    if tol.min_match_1 is not None:
        frac = out["matched"][1]["ref"]
        crit.append(Criterion(f"{output_node} spikes matched within +-1 step ({pair})",
                              frac >= tol.min_match_1, f"{frac:.1%} (minimum {tol.min_match_1:.1%})"))
    if tol.max_timing_error is not None:
        err = out["first_spike"]["mean_abs"]
        crit.append(Criterion(f"{output_node} mean |first-spike error| ({pair})",
                              err <= tol.max_timing_error, f"{err:.3f} steps (maximum {tol.max_timing_error})"))
    if tol.max_accuracy_drop is not None:
        ref, test = pair.split(" vs ")
        n = min(len(correct[ref]), len(correct[test]))
        drop = float(correct[ref][:n].mean() - correct[test][:n].mean())
        crit.append(Criterion(f"accuracy drop {ref} -> {test}", drop <= tol.max_accuracy_drop + 1e-12,
                              f"{drop:+.1%} (maximum {tol.max_accuracy_drop:.1%})"))
    return crit


# ------------------------------------------------------------------- verify
def verify(model_path_or_ir, task: Optional[str] = None, samples: int = 100, lava_samples: Optional[int] = None,
           backends=("float", "emulator", "lava"), seed: int = 0, tolerances: Optional[Tolerances] = None, *,
           ir=None, meta: Optional[dict] = None, calibration_samples: int = 256) -> VerifyResult:
    """Run the engines on the first ``samples`` test inputs and compare them (see module doc).

    ``model_path_or_ir``: ``.pt``/``.onnx`` path, `IR`, or `Network` (with
    ``meta``); ``ir``: a compiled IR (path or `IR`) to check against the
    checkpoint. Lava engines run on the first ``lava_samples`` samples
    (default ``min(samples, 20)``).
    """
    tol = tolerances or Tolerances()
    _check_request(samples, backends)
    subject = load_subject(model_path_or_ir, ir=ir, meta=meta, calibration_samples=calibration_samples, task=task)
    meta = _with_task(subject.meta, task)
    x, y = held_out_inputs(meta["task"], meta["encoding"], samples, seed)
    _check_input_size(subject.ir, x)
    plan = _engine_plan(backends, subject, len(x), lava_samples)
    nodes = subject.ir.names(irm.Neuron)
    output_node = _output_node(subject.ir)
    outputs, engines, preds = {}, {}, {}
    for name, n in plan.items():
        start = time.perf_counter()
        outputs[name] = run_engine(name, subject, x[:n])
        preds[name] = predict(outputs[name][f"{output_node}/s"])
        engines[name] = dict(samples=int(n), accuracy=float((preds[name] == y[:n]).mean()),
                             seconds=time.perf_counter() - start)
    fixed = [e for e in FIXED_CHAIN if e in outputs]
    exact = [compare_exact(a, outputs[a], b, outputs[b], nodes) for a, b in zip(fixed, fixed[1:])]
    pairs = _timing_pairs(outputs, fixed)
    timing_result = _timing(outputs, nodes, pairs)
    pair = f"{pairs[0][0]} vs {pairs[0][1]}" if pairs and pairs[0][1] in fixed else None
    criteria = _criteria(exact, timing_result, pair, output_node,
                         {e: p == y[:len(p)] for e, p in preds.items()}, tol)
    return VerifyResult(
        source=subject.source, task=meta["task"], encoding=meta["encoding"], samples=len(x),
        seeds=dict(verify=seed, training=meta.get("train_config", {}).get("seed")),
        lava_samples=max((n for e, n in plan.items() if e.startswith("lava")), default=0),
        float_engine=("torch model, float64" if subject.model is not None else "emulator, IR float parameters"),
        compile_mode=subject.ir.meta.get("quantization_mode", "unknown"),
        quantization=subject.ir.meta.get("quantization", {}), output_node=output_node, nodes=nodes,
        engines=engines, agreement=_agreement(preds),
        exact=exact, timing=timing_result, timing_pair=pair, tolerances=tol, criteria=criteria,
        outputs=outputs, inputs=x, labels=y)


def _timing_pairs(outputs: dict, fixed: list) -> list:
    """(reference, test) pairs for spike timing: float vs the first fixed engine, then float engines."""
    if "float" not in outputs:
        return []
    primary = [f for f in ("emulator", "torch-fixed", "lava") if f in fixed][:1]
    others = [e for e in ("float-emulator", "lava-float") if e in outputs]
    return [("float", e) for e in primary + others]


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


# ------------------------------------------------------------------ summary
def format_summary(result: VerifyResult) -> str:
    """The short table `cmd_verify` prints."""
    lava = f"Lava: {result.lava_samples}" if result.lava_samples else "Lava: not run"
    lines = [f"verify {result.source}: task {result.task}, {result.samples} test samples ({lava}); "
             f"{result.compile_mode}", "",
             f"{'engine':<16}{'samples':>8}{'accuracy':>10}{'agrees w/ float':>17}{'seconds':>9}"]
    for name, e in result.engines.items():
        agree = result.agreement.get(f"float vs {name}")
        lines.append(f"{name:<16}{e['samples']:>8}{e['accuracy']:>10.1%}"
                     f"{'-' if agree is None else f'{agree:.1%}':>17}{e['seconds']:>9.2f}")
    if result.exact:
        lines += ["", "bit-exact (s, v, u of every node, step and neuron):"]
        lines += [f"  {c.label:<26}{c.identical_samples:>4}/{c.samples} samples identical" for c in result.exact]
    if result.timing_pair:
        lines += ["", _timing_table(result.timing[result.timing_pair], result.timing_pair)]
    for pair, per_node in result.timing.items():
        if pair != result.timing_pair:
            m = per_node[result.output_node]["matched"]
            lines.append(f"  {pair}: {result.output_node} spikes matched {m[0]['ref']:.1%} exactly, "
                         f"{m[1]['ref']:.1%} within +-1 step")
    lines += ["", "criteria:"] + [f"  {'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}"
                                  for c in result.criteria]
    lines.append(f"verify: {'PASS' if result.passed else 'FAIL'}")
    return "\n".join(lines)


def _timing_table(per_node: dict, pair: str) -> str:
    lines = [f"spike timing, {pair} (steps):",
             f"  {'node':<12}{'spikes ref/test':>17}{'|dcount|':>9}{'match 0':>9}{'+-1':>7}{'+-2':>7}"
             f"{'first |err| mean/max':>22}{'only one':>9}{'vR':>7}"]
    for node, m in per_node.items():
        f, mt = m["first_spike"], m["matched"]
        lines.append(f"  {node:<12}{m['ref_spikes']:>8}/{m['test_spikes']:<8}{m['abs_count_diff']:>9}"
                     f"{mt[0]['ref']:>9.1%}{mt[1]['ref']:>7.1%}{mt[2]['ref']:>7.1%}"
                     f"{f['mean_abs']:>15.2f}/{f['max_abs']:<6}{f['only_ref'] + f['only_test']:>9}"
                     f"{m['van_rossum']['mean']:>7.3f}")
    return "\n".join(lines)


def cmd_verify(args) -> int:
    """`spikeport verify`: run, print the summary (and any failure), write the report, return 0/1."""
    defaults = Tolerances()
    tol = Tolerances(min_match_1=_flag(args, "min_match_1", defaults.min_match_1),
                     max_accuracy_drop=_flag(args, "max_accuracy_drop", defaults.max_accuracy_drop),
                     max_timing_error=_flag(args, "max_timing_error", defaults.max_timing_error))
    result = verify(args.model, task=args.task, samples=args.samples, lava_samples=args.lava_samples,
                    backends=args.backends, seed=args.seed, tolerances=tol,
                    ir=getattr(args, "ir", None))
    print(format_summary(result))
    for c in result.criteria:
        if not c.passed:
            print(f"FAILED: {c.name}: {c.detail}")
    if getattr(args, "report", None) and not getattr(args, "no_report", False):
        from toolchain.report import write_report

        folder = write_report(result, args.report)
        print(f"report: {folder / 'report.html'}")
    return result.exit_status


def _flag(args, name: str, default):
    value = getattr(args, name, None)
    return default if value is None else value
