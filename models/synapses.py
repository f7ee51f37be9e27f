"""Dense synapses over whole spike trains, with Lava's latency and delays.

A spike at step t through a synapse with delay d arrives at step ``t + 1 + d``
(Lava's Dense/DelayDense). Inputs are whole trains (B, T, N_in); the output is
the input that *arrives* at every step, (B, T, N_out), computed with one
matrix product per distinct delay value.

SuperSpike feedback modes (for hidden layers) change only the backward pass
of the product: ``symmetric`` sends the error back through W (backprop),
``random`` through a fixed random matrix (feedback alignment), ``uniform``
through a constant matrix.
"""
from __future__ import annotations

from typing import Optional

import torch

from models import fixed_point as fx

FEEDBACK_MODES = ("symmetric", "random", "uniform")


def shift_time(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Delay a (B, T, N) train by ``steps`` (zeros enter at the start)."""
    if steps == 0:
        return x
    if steps >= x.shape[1]:
        return torch.zeros_like(x)
    return torch.cat([x.new_zeros(x.shape[0], steps, x.shape[2]), x[:, :-steps]], dim=1)


class _FeedbackProduct(torch.autograd.Function):
    """``s @ W.T`` whose gradient to ``s`` goes through ``feedback`` instead of W."""

    @staticmethod
    def forward(ctx, s, weight, feedback):
        ctx.save_for_backward(s, feedback)
        return s @ weight.t()

    @staticmethod
    def backward(ctx, g):
        s, feedback = ctx.saved_tensors
        g_s = g @ feedback if ctx.needs_input_grad[0] else None
        g_w = g.reshape(-1, g.shape[-1]).t() @ s.reshape(-1, s.shape[-1])
        return g_s, g_w, None


def product(s: torch.Tensor, weight: torch.Tensor, feedback: Optional[torch.Tensor]) -> torch.Tensor:
    """``s @ W.T`` with the chosen feedback path (None = symmetric)."""
    if feedback is None:
        return s @ weight.t()
    return _FeedbackProduct.apply(s, weight, feedback)


def synaptic_input(s: torch.Tensor, weight: torch.Tensor, delays: Optional[torch.Tensor] = None,
                   *, feedback: Optional[torch.Tensor] = None, fixed: bool = False,
                   weight_exp: int = 0) -> torch.Tensor:
    """Input arriving at the post-synaptic population at every step, (B, T, N_out).

    ``weight`` (N_out, N_in): float weights, or in fixed mode Lava's integer
    weights, whose per-delay sums are shifted by ``weight_exp`` (flooring)
    exactly as Lava's (Delay)Dense does. Binary input: any nonzero is a spike.
    """
    if delays is None:
        groups = [(0, weight)]
    else:
        groups = [(int(d), weight * (delays == d)) for d in torch.unique(delays).tolist()]
    total = 0
    for d, w in groups:
        acc = product(s, w, None if feedback is None else feedback * (w != 0))
        if fixed:
            acc = fx.shift_by_weight_exp(acc, weight_exp)
        total = total + shift_time(acc, 1 + d)
    return total


def make_feedback(mode: str, weight: torch.Tensor, generator: torch.Generator) -> Optional[torch.Tensor]:
    """Fixed feedback matrix for a hidden layer's incoming synapse (None = symmetric)."""
    if mode == "symmetric":
        return None
    scale = float(weight.detach().std()) or 1.0
    if mode == "random":
        return torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * scale
    if mode == "uniform":
        return torch.full_like(weight, scale)
    raise ValueError(f"feedback mode {mode!r} is not one of {FEEDBACK_MODES}")
