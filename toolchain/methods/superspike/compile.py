"""SuperSpike `spikeport compile`: checkpoint -> validated IR with float and fixed-point parameters.

    checkpoint ──lower──► float IR ──calibrate+quantize──► fixed IR ──validate──► .onnx

A network trained quantization-aware already carries its fixed-point scales;
lowering then writes the integers it trained with and no calibration runs.
"""
from __future__ import annotations

import numpy as np

from models import fixed_params as fp
from models.network import Network
from toolchain.ir import passes
from toolchain.tasks import datasets, encoders
from toolchain import ir as irm
from toolchain.lower import lower
from toolchain.methods.superspike import checkpoint
from toolchain.quantize import calibration_stats, quantize


def calibration_inputs(meta: dict, samples: int) -> np.ndarray:
    """Encoded training inputs (B, T, N) for calibration, as the model was trained."""
    data = datasets.load_task(meta["task"])
    return np.asarray(encoders.encode(data.x_train[:samples], **meta["encoding"]))


def compile_network(model: Network, meta: dict, calibration_samples: int = 256,
                    target: str = "loihi2") -> irm.IR:
    """Lower, quantize (unless already scaled) and validate ``model``."""
    ir = lower(model, name=meta.get("task", "network"))
    ir.meta.update({k: meta[k] for k in ("task", "encoding", "accuracy") if k in meta})
    if model.has_fixed_scale:
        ir.meta["quantization_mode"] = "quantization-aware (integers from training)" + _qat_clipping_note(model)
        return _validated(ir, target)
    return compile_ir(ir, meta, calibration_samples, target)


def compile_ir(ir: irm.IR, meta: dict, calibration_samples: int = 256, target: str = "loihi2") -> irm.IR:
    """A network read from any format: a fixed IR validated as it is; a float one calibrated on
    ``calibration_samples`` training inputs of ``meta``'s task, encoded by its ``encoding``
    (see `toolchain.methods.superspike.config.with_task`), post-training quantized and validated."""
    if not ir.is_fixed:
        stats = calibration_stats(ir, calibration_inputs(meta, calibration_samples))
        ir, _ = quantize(ir, stats)
        ir.meta.update({k: meta[k] for k in ("task", "encoding") if k in meta})
        ir.meta["quantization_mode"] = f"post-training ({calibration_samples} calibration samples)"
    return _validated(ir, target)


def _validated(ir: irm.IR, target: str) -> irm.IR:
    passes.validate(ir, target, require_fixed=True)
    ir.meta["target"] = target
    return ir


def _qat_clipping_note(model: Network) -> str:
    """Weights beyond the 8-bit range at the trained scales: training clipped them and
    so does the compiled network (identical integers), but it is said, not silent."""
    counts = []
    for i, layer in enumerate(model.layers):
        lam, exps = float(layer.fixed_scale[0]), (int(layer.fixed_scale[1]), int(layer.fixed_scale[2]))
        for name, w, e in ((f"layers.{i}.dense", layer.weight, exps[0]),
                           (f"layers.{i}.rec", layer.rec_weight, exps[1])):
            if w is not None:
                n = fp.count_clipped(w.detach().double().numpy(), lam, fp.SynapseScale(e))
                counts += [f"{name} {n}/{w.numel()}"] if n else []
    return f"; weights clipped to 8 bits, in training and here alike: {', '.join(counts)}" if counts else ""


def compile_checkpoint(path, calibration_samples: int = 256, target: str = "loihi2") -> irm.IR:
    """`compile_network` of the SuperSpike checkpoint at ``path``."""
    model, meta = checkpoint.load(path)
    return compile_network(model, meta, calibration_samples, target)
