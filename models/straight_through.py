"""Fixed mode's quantizers as single autograd nodes (straight-through estimators).

Fixed mode rebuilds a layer's integer parameters from its float parameters on
every forward pass (`models.fixed_params` says how they map). Each mapping is
a chain of roundings and clips; composed from torch operations it costs some
thirty autograd nodes per layer and step. Here each is one node: the forward
pass is the numpy quantizer itself (the one the post-training quantizer runs,
so both give the same integers), and the backward pass multiplies the
gradient by the chain's derivative with every rounding taken as the identity:

* weights: ``lam / 2**weight_exp`` where the weight lies inside its 8-bit
  range, 0 where Lava clips it (the clamp's derivative);
* threshold: ``lam``;  decays: ``4096``;  bias: ``64 * lam`` (all unclipped).
"""
from __future__ import annotations

import numpy as np
import torch

from models import fixed_params as fp
from models import fixed_point as fx


class _StraightThrough(torch.autograd.Function):
    """``quantize(x)`` -> (value, gain) evaluated in float64 numpy: ``value`` forward, ``gain * g`` back."""

    @staticmethod
    def forward(ctx, x, quantize):
        value, gain = quantize(x.detach().cpu().double().numpy())
        ctx.gain, ctx.dtype = gain, x.dtype
        return torch.as_tensor(np.asarray(value, dtype=np.float64))

    @staticmethod
    def backward(ctx, g):
        gain = ctx.gain if np.isscalar(ctx.gain) else torch.from_numpy(ctx.gain)
        return (g * gain).to(ctx.dtype), None


def weights(weight: torch.Tensor, lam: float, weight_exp: int):
    """(integer weights as float64, sign mode) for Lava, as `fp.quantize_weights` gives them."""
    mode, scale = fp.sign_mode_of(weight), fp.SynapseScale(weight_exp)

    def quantize(w):
        on_grid = fp.weight_grid(w, lam, scale, mode)  # `fp.quantize_weights`, keeping the grid
        lo, hi = fx.weight_clip_range(mode)
        inside = (on_grid >= lo) & (on_grid <= hi)
        return fx.lava_weights(on_grid, scale.num_weight_bits, mode), inside * (lam / 2.0 ** weight_exp)

    return _StraightThrough.apply(weight, quantize), mode


def decay(d: torch.Tensor, offset: int):
    """Integer decay ``round(4096 * d) - offset`` (du: offset 1, Lava's du+1; dv: offset 0)."""
    return _StraightThrough.apply(d, lambda x: (fx.round_half_away(x * fx.DECAY_UNITY) - offset,
                                                float(fx.DECAY_UNITY)))


def threshold(vth: torch.Tensor, lam: float):
    """Integer threshold mantissa ``round(lam * vth)`` (`fp.threshold_to_fixed`)."""
    return _StraightThrough.apply(vth, lambda x: (fx.round_half_away(x * lam), lam))


def bias(b: torch.Tensor, lam: float):
    """The effective integer bias ``mant << exp`` Lava applies (`fp.bias_to_fixed`)."""
    def quantize(x):
        mant, exp, _ = fp.bias_to_fixed(x, lam)
        return mant * 2.0 ** exp, float(1 << fx.ACT_SHIFT) * lam

    return _StraightThrough.apply(b, quantize)
