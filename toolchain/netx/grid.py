"""Post-training quantization onto netx's grid: a float network -> integers a ``.net`` file holds exactly.

netx hands Lava every bias with ``bias_exp`` 6 and sums integer file weights with
no shift after the sum (`toolchain.netx.writer`). spikeport's usual quantization
(`toolchain.quantize`) picks, per population, a scale ``lam`` and per synapse a
``weight_exp`` (negative ones give fractional weights, positive ones weights
beyond 8 bits) and the smallest bias exponent: exact on Lava, but mostly not
expressible in a ``.net`` file. Here every population keeps the scale
`toolchain.quantize` calibrates, lowered where needed so that every incoming
synapse's largest weight fits 254 at ``weight_exp`` 0 (`WEIGHT_TOP`), and then:

* weights ``round(lam * W)`` on Lava's grid at ``weight_exp`` 0 (8 weight bits);
* bias ``round(lam * b)`` at ``bias_exp`` 6 (the state unit is ``64 * lam``);
* ``vth = round(lam * vth)``, decays as `toolchain.quantize` sets them; u = v = 0.

The result is an ordinary fixed-point IR: spikeport runs its integers exactly,
and the writer checks that netx reproduces them. ``format_lines`` says, per
population, the scale kept and what rounding cost.
"""
from __future__ import annotations

import numpy as np

from models import fixed_params as fp
from models import fixed_point as fx
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.netx import rules
from toolchain.quantize import calibration_stats, quantize

WEIGHT_TOP = 254  # largest |weight| at weight_exp 0: Lava's even mixed grid, and no 255 beside negative weights
                  # when netx optimises a recurrent layer's two matrices together (lava-dl issue 170)


def quantize_for_netx(ir: irm.IR, inputs: np.ndarray) -> tuple[irm.IR, list[str]]:
    """(fixed IR, report lines) for the float ``ir`` calibrated on ``inputs`` (B, T, N)."""
    fixed, reports = quantize(ir, calibration_stats(ir, inputs))
    lines = []
    for report in reports:
        lines.append(_requantize(fixed, report.node, report.lam))
    fixed.meta.pop("quantization", None)  # its scales are not the ones kept here
    fixed.meta["quantization_mode"] = "post-training onto netx's grid (weight_exp 0, bias_exp 6)"
    fixed.meta["format_notes"] = lines
    return fixed, lines


def _requantize(ir: irm.IR, node: str, lam: float) -> str:
    op = ir.op(node)
    if type(op) is not irm.LIF:
        raise SpikeportError(f"{node}: {op.kind} neurons cannot be written to netx (LIF only)")
    synapses = ir.inputs(node)
    tops = [WEIGHT_TOP / max(float(np.abs(ir.op(s).weight).max(initial=0.0)), 1e-300) for s in synapses]
    scale = min([lam, *tops])
    for s in synapses:
        w = ir.op(s).weight
        w_int, mode = fp.quantize_weights(w, scale, fp.SynapseScale(0))
        if w.any() and not w_int.any():
            raise SpikeportError(f"{s}: every weight rounds to zero at scale {scale:.4g} (netx needs weight_exp 0)")
        ir.op(s).fixed = irm.SynapseFixed(w_int.astype(np.int64), weight_exp=0, num_weight_bits=fx.WEIGHT_BITS,
                                          sign_mode=int(mode))
    du, dv = fp.decays_to_fixed(op.du, op.dv)
    bias = fx.round_half_away(op.bias * scale)
    zeros = np.zeros(op.n, np.int64)
    op.fixed = irm.LIFFixed(du=du, dv=dv, vth=fp.threshold_to_fixed(op.vth, scale), bias_mant=bias.astype(np.int64),
                            bias_exp=np.full(op.n, rules.BIAS_EXP), u=zeros, v=zeros)
    err = float(np.abs(bias / scale - op.bias).max(initial=0.0))
    limited = f" (lowered from {lam:.4g} to fit 8-bit weights at weight_exp 0)" if scale < lam else ""
    return (f"{node}: scale {scale:.4g}{limited}; vth {op.fixed.vth}; bias [{int(bias.min(initial=0))}, "
            f"{int(bias.max(initial=0))}] << 6, max error {err:.3g} (float units)")
