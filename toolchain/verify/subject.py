"""What verify checks and on which inputs: the subject (fixed IR, torch model) and the held-out data.

``load_subject`` resolves a ``.pt`` checkpoint, a network file of any format
`toolchain.formats` reads (``.onnx``, ``.nir``), an `IR` or a `Network`;
``held_out_inputs`` encodes the first test samples of the task exactly as the
model was trained (time on axis 1, index k is step k + 1).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from models.errors import SpikeportError
from models.network import Network
from toolchain import formats
from toolchain import ir as irm
from toolchain.methods.superspike import checkpoint
from toolchain.methods.superspike.compile import compile_ir, compile_network
from toolchain.methods.superspike.config import with_task
from toolchain.tasks import datasets, encoders


@dataclass
class Subject:
    """What is verified: a fixed-point IR and, when available, the torch model it came from."""

    ir: irm.IR
    model: Optional[Network]
    meta: dict
    source: str


def load_subject(target, ir=None, meta: Optional[dict] = None, calibration_samples: int = 256,
                 task: Optional[str] = None) -> Subject:
    """Resolve what to verify.

    ``target``: a ``.pt`` checkpoint or a compiled network file path, an `IR`, or a
    `Network` (then ``meta`` gives its ``task`` and ``encoding``). ``ir``: a
    compiled IR (path or `IR`) to verify against the checkpoint; without it a
    checkpoint is compiled in memory (`toolchain.methods.superspike.compile.compile_network`,
    calibrated on ``task``'s training data, default the recorded task). The IR verified is
    checked as `toolchain.formats.load` checks a file (`toolchain.formats.check`): an
    invalid one is a one-line `SpikeportError` before any engine runs.
    """
    model, source = None, _describe_target(target)
    if isinstance(target, irm.IR):
        subject_ir, meta = target, {**target.meta, **(meta or {})}
    elif isinstance(target, Network):
        model, subject_ir, meta = target, None, dict(meta or {})
    else:
        path = _existing(target)
        if path.suffix == ".pt":
            model, stored = checkpoint.load(path)
            subject_ir, meta = None, {**stored, **(meta or {})}
        else:
            subject_ir = _load_ir(path)
            meta = {**subject_ir.meta, **(meta or {})}
    if ir is not None:
        subject_ir = ir if isinstance(ir, irm.IR) else _load_ir(_existing(ir))
        source += f" with {_describe_target(ir)}" if isinstance(ir, irm.IR) else f" with IR {ir}"
    if subject_ir is None or not subject_ir.is_fixed:
        meta = with_task(meta, task)
        subject_ir = (compile_network(model, meta, calibration_samples) if subject_ir is None
                      else compile_ir(subject_ir, meta, calibration_samples))
    formats.check(subject_ir, source)  # an in-memory IR is checked as a file is (`formats.load`)
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
    """A network file of any format `toolchain.formats` reads; another suffix is a one-line error."""
    if not formats.is_network_file(path):
        known = ", ".join(sorted(s for f in formats.FORMATS.values() for s in f.suffixes))
        raise SpikeportError(f"{path}: expected a .pt checkpoint or a compiled .onnx file (network formats: {known})")
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


def held_out_inputs(task: str, encoding: dict, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``samples`` held-out test samples, encoded: spikes (B, T, N) int32 and labels (B,).

    ``seed`` seeds a stochastic encoder unless the recorded encoding fixes one.
    """
    data = datasets.load_task(task)
    encoder = encoders.ENCODERS.get(encoding.get("name"))
    if encoder is not None and "seed" in inspect.signature(encoder).parameters:
        encoding = {"seed": seed, **encoding}
    x = np.asarray(encoders.encode(data.x_test[:samples], **encoding))
    return np.rint(x).astype(np.int32), np.asarray(data.y_test[:samples])
