"""How float LIF/Dense parameters map to Lava's integer parameters.

One scale ``lam`` per neuron population ties the two worlds together: the
fixed-point state is ``64 * lam`` times the float state, so

* synapse weights: ``W_int * 2**weight_exp ~ lam * W``  (8-bit mantissa, on
  the grid Lava keeps for the sign mode, so Lava changes nothing);
* threshold: ``vth = round(lam * vth_float)`` (Lava compares ``v > vth << 6``);
* bias: ``bias_mant << bias_exp ~ 64 * lam * bias`` (the bias is *not* << 6);
* decays: ``du = round(4096 * du_float) - 1`` (the du+1 offset; 0 -> -1),
  ``dv = round(4096 * dv_float)``.

Used by the simulator's fixed mode (through `models.straight_through`, so it
trains) and by the post-training quantizer (numpy), so both produce the same
integers for the same (float params, lam, weight_exp).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import fixed_point as fx


@dataclass(frozen=True)
class SynapseScale:
    """Fixed-point choice for one synapse: its exponent and weight bits."""

    weight_exp: int
    num_weight_bits: int = 8


def weight_grid_step(sign_mode: fx.SignMode, num_weight_bits: int = 8) -> int:
    """Spacing of the integer weights Lava keeps for a sign mode (2**dropped LSBs)."""
    return 1 << fx.dropped_lsbs(num_weight_bits, sign_mode)


def sign_mode_of(weight) -> fx.SignMode:
    """Sign mode the float weights will have once quantized (zeros count as both)."""
    w = weight.detach().cpu().numpy() if hasattr(weight, "detach") else np.asarray(weight)
    return fx.infer_sign_mode(np.sign(w))


def weight_grid(weight, lam: float, scale: SynapseScale, sign_mode: fx.SignMode):
    """``lam * W / 2**weight_exp`` rounded to the nearest point of Lava's grid, before any clipping."""
    step = float(weight_grid_step(sign_mode, scale.num_weight_bits))
    return fx.round_half_away(weight * (lam / 2.0 ** scale.weight_exp) / step) * step


def quantize_weights(weight, lam: float, scale: SynapseScale, sign_mode=None):
    """Integer weights on Lava's grid for ``lam * W / 2**weight_exp``.

    Rounds to the nearest grid point (not Lava's floor), then applies Lava's
    rule, which is then the identity except for values beyond the 8-bit range:
    those are clipped, and `count_clipped` reports them.
    Works on numpy arrays and on torch tensors (straight-through gradient).
    """
    mode = fx.SignMode(sign_mode) if sign_mode is not None else sign_mode_of(weight)
    on_grid = weight_grid(weight, lam, scale, mode)
    return fx.lava_weights(on_grid, scale.num_weight_bits, mode), mode


def count_clipped(weight, lam: float, scale: SynapseScale, sign_mode=None) -> int:
    """How many weights fall outside the 8-bit range of their sign mode."""
    w = np.asarray(weight, dtype=np.float64)
    mode = fx.SignMode(sign_mode) if sign_mode is not None else sign_mode_of(w)
    grid = weight_grid(w, lam, scale, mode)
    lo, hi = fx.weight_clip_range(mode)
    return int(((grid < lo) | (grid > hi)).sum())


def weight_exp_for(max_abs_weight: float, lam: float, sign_mode: fx.SignMode,
                   num_weight_bits: int = 8) -> int:
    """Smallest weight_exp that puts ``lam * max|W|`` inside the 8-bit grid."""
    step = weight_grid_step(sign_mode, num_weight_bits)
    return fx.choose_weight_exp(lam * max_abs_weight, limit=255 // step * step)


def decays_to_fixed(du: float, dv: float) -> tuple[int, int]:
    """Integer (du, dv) for float decays in [0, 1]."""
    return fx.du_from_float(du), fx.dv_from_float(dv)


def decays_from_fixed(du: int, dv: int) -> tuple[float, float]:
    """The float decays a fixed (du, dv) pair actually implements."""
    return (du + 1) / fx.DECAY_UNITY, dv / fx.DECAY_UNITY


def threshold_to_fixed(vth: float, lam: float) -> int:
    """Integer threshold mantissa: Lava spikes when ``v > vth << 6``."""
    return int(fx.round_half_away(np.float64(vth) * lam))


def bias_to_fixed(bias, lam: float):
    """(bias_mant, bias_exp, error) for ``64 * lam * bias`` on the 2**0 scale of v."""
    return fx.split_bias(np.asarray(bias, dtype=np.float64) * (float(1 << fx.ACT_SHIFT) * lam))
