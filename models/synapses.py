"""Dense synapses over whole spike trains, with Lava's latency and delays.

A spike at step t through a synapse with delay d arrives at step ``t + 1 + d``
(Lava's Dense/DelayDense). Inputs are whole trains (B, T, N_in); the output is
the input that *arrives* at every step, (B, T, N_out), computed with one
matrix product per distinct delay value.

SuperSpike feedback modes (for hidden layers) change only the backward pass
of the product: ``symmetric`` sends the error back through W (backprop),
``random`` through a fixed random matrix (feedback alignment), ``uniform``
through a constant matrix.

A binary input that takes no gradient (a network's input layer) with few
spikes is summed event by event (`models.event_kernel`): the weight rows of
the inputs that spiked, and for the weight gradient the gradient rows of the
steps they spiked at. In fixed mode (integer weights in float64) the sums are
exact, so the result is the dense product's to the bit; in float mode it
differs by the rounding of the additions' order.
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


EVENT_DRIVEN = True  # sparse binary inputs without gradient take `_EventProduct` (False: always dense)


def event_density_limit(n_out: int) -> float:
    """The input density (fraction of nonzero entries) below which summing spikes beats the dense
    product for ``n_out`` postsynaptic neurons. Cost model, from CPU times measured on one thread
    at 700 x 256 and 64 x 128: a dense multiply-add 0.03 ns, a summed spike 0.28 ns per
    postsynaptic neuron, listing the spikes 2.7 ns per input entry; the event path pays while
    ``2.7 + 0.28 d n_out < 0.03 n_out``, i.e. ``d < 0.107 - 9.6 / n_out`` (0.07 at 256, none below 90)."""
    return 0.03 / 0.28 - 2.7 / (0.28 * n_out)


class _EventProduct(torch.autograd.Function):
    """``s @ W.T`` for a binary ``s`` (…, n_in) that takes no gradient, from its spike lists
    ``events`` (`input_events` of ``s``, delayed or not); the gradient goes to W only."""

    @staticmethod
    def forward(ctx, s, weight, events):
        from models import event_kernel  # lazy, as in `input_events`: numba loads only when used
        rows, (n_out, n_in) = events[0].shape[0] - 1, weight.shape
        out = torch.empty(rows, n_out, dtype=weight.dtype)
        event_kernel.gather_rows(*events[:3], weight.detach().t().contiguous().numpy(), out.numpy())
        ctx.events, ctx.n_in = events, n_in
        return out.reshape(*s.shape[:-1], n_out)

    @staticmethod
    def backward(ctx, g):
        if not ctx.needs_input_grad[1]:
            return None, None, None
        from models import event_kernel
        flat = g.reshape(-1, g.shape[-1]).contiguous()
        g_wt = torch.empty(ctx.n_in, flat.shape[1], dtype=g.dtype)
        event_kernel.gather_rows(*ctx.events[3:], flat.numpy(), g_wt.numpy())
        return None, g_wt.t(), None


def input_events(s: torch.Tensor, n_out: int, delay: int = 0):
    """The spike lists of ``s`` (…, T, n_in), delayed by ``delay`` steps, for `_EventProduct` when it
    takes the event path (`models.event_kernel.events`): `EVENT_DRIVEN`, numba installed, a float CPU
    tensor without gradient, with fewer nonzero entries than `event_density_limit` of ``n_out``.
    Else None (the dense product)."""
    limit = event_density_limit(n_out)
    if not EVENT_DRIVEN or limit <= 0 or s.requires_grad or s.dtype not in (torch.float32, torch.float64) \
            or s.numel() == 0 or s.dim() < 2:
        return None
    try:
        from models import event_kernel
    except ImportError:
        return None
    trains = s.detach().reshape(-1, *s.shape[-2:]).numpy()
    events = event_kernel.events(trains, int(limit * s.numel()), delay)
    return events if len(events[1]) == events[0][-1] else None


_COMPILED_SPIKE_SOURCES = (torch.float32, torch.float64, torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32,
                           torch.int64)


def spikes_of(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(x != 0)`` as 0 and 1 in ``dtype``: what a binary input sends (any nonzero value is a
    spike). One compiled pass for a CPU tensor without gradient (torch's compare and cast are
    two passes: 5.5 ms against 2.5 ms on the 64 x 100 x 700 benchmark train), else torch's."""
    if x.requires_grad or x.device.type != "cpu" or x.numel() == 0 or not x.is_contiguous() \
            or dtype not in (torch.float32, torch.float64) or x.dtype not in _COMPILED_SPIKE_SOURCES:
        return (x != 0).to(dtype)
    try:
        from models import event_kernel
    except ImportError:
        return (x != 0).to(dtype)
    out = torch.empty(x.shape, dtype=dtype)
    src = x.view(torch.uint8) if x.dtype == torch.bool else x
    event_kernel.nonzero_as(src.reshape(-1, x.shape[-1]).numpy(), out.view(-1, x.shape[-1]).numpy())
    return out


def product(s: torch.Tensor, weight: torch.Tensor, feedback: Optional[torch.Tensor],
            events=None) -> torch.Tensor:
    """``s @ W.T`` with the chosen feedback path (None = symmetric); summed over ``events``
    (`input_events` of ``s``) when given."""
    if events is not None:
        return _EventProduct.apply(s, weight, events)
    if feedback is None:
        return s @ weight.t()
    return _FeedbackProduct.apply(s, weight, feedback)


def synaptic_input(s: torch.Tensor, weight: torch.Tensor, delays: Optional[torch.Tensor] = None,
                   *, feedback: Optional[torch.Tensor] = None, fixed: bool = False,
                   weight_exp: int = 0, binary: bool = False) -> torch.Tensor:
    """Input arriving at the post-synaptic population at every step, (B, T, N_out).

    ``weight`` (N_out, N_in): float weights, or in fixed mode Lava's integer
    weights, whose per-delay sums are shifted by ``weight_exp`` (flooring)
    exactly as Lava's (Delay)Dense does. Binary input: 0 or 1 (a spike);
    ``binary=True``: the caller guarantees it (a spike train it made), so fixed
    mode skips checking it before summing in float32. Fixed mode returns the
    integers in float32 where every sum and its shift are exact there
    (`_exact_in_float32`, ``weight_exp <= MAX_EXP_FLOAT32``), else in float64.
    """
    if delays is None:
        groups = [(0, weight)]
    else:
        groups = [(int(d), weight * (delays == d)) for d in torch.unique(delays).tolist()]
    dtype = s.dtype
    if fixed:  # exact integers: float32 where every sum and its shift stay exact in it, else float64
        dtype = torch.float32 if _exact_in_float32(s, weight, binary) and weight_exp <= MAX_EXP_FLOAT32 \
            else torch.float64
        s, groups = s.to(dtype), [(d, w.to(dtype)) for d, w in groups]
        feedback = None if feedback is None else feedback.to(dtype)
    one_group = len(groups) == 1  # its latency 1 + d goes into the spike lists: no shifted copy
    events = input_events(s, weight.shape[0], 1 + groups[0][0] if one_group else 0)  # (delay groups share them)
    total = None
    for d, w in groups:
        acc = product(s, w, None if feedback is None else feedback * (w != 0), events).to(dtype)
        if fixed:
            acc = fx.shift_by_weight_exp(acc, weight_exp)  # zero where no spike arrives: commutes with the delay
        if events is None or not one_group:  # the lists carry no latency
            acc = shift_time(acc, 1 + d)
        total = acc if total is None else total + acc
    return total


MAX_EXP_FLOAT32 = 7  # Lava's largest weight_exp: a sum below 2**24 shifted by it stays below 2**31 (no wrap)


def _exact_in_float32(s: torch.Tensor, weight: torch.Tensor, binary: bool = False) -> bool:
    """Whether every partial sum of ``s @ W.T`` is an integer float32 holds exactly: binary ``s``
    (checked unless ``binary`` says so: the check costs a fifth of a fixed-mode training step)
    and integer ``weight`` with ``n_in * max|W| < 2**24`` (Lava's 8-bit weights: any n_in below
    65,793). Fixed mode then sums in float32 at half float64's cost, to the same integers."""
    w = weight.detach()
    bound = w.shape[-1] * fx.max_abs(w)
    return bound < 2.0 ** 24 and torch.equal(w, w.round()) and (binary or bool(((s == 0) | (s == 1)).all()))


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
