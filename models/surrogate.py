"""SuperSpike's surrogate derivative (Zenke & Ganguli 2018).

The spike is a Heaviside step of the membrane; its derivative is replaced by
the fast sigmoid's: ``d s / d x ~ 1 / (1 + slope * |x|)**2`` where ``x`` is the
distance of the membrane from threshold, measured in thresholds
(``(v - vth) / vth``), so the same steepness works in float and fixed units.
"""
from __future__ import annotations

import torch


def fast_sigmoid_grad(x: torch.Tensor, slope: float) -> torch.Tensor:
    """SuperSpike surrogate ``1 / (1 + slope*|x|)**2`` (peak 1 at threshold)."""
    return 1.0 / (1.0 + slope * x.abs()) ** 2


class SpikeFn(torch.autograd.Function):
    """Heaviside forward (``x > 0``), fast-sigmoid surrogate backward."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * fast_sigmoid_grad(x, ctx.slope), None


def spike(x: torch.Tensor, slope: float = 10.0) -> torch.Tensor:
    """Spikes where ``x > 0``, differentiable through the SuperSpike surrogate."""
    return SpikeFn.apply(x, slope)
