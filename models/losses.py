"""Losses over spike trains (B, T, C) and membrane traces.

Time is in steps; step index 0 is t = 1. Every loss is differentiable through
the SuperSpike surrogate of the spikes it reads.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def spike_count_ce(s: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the output spike counts as logits."""
    return F.cross_entropy(s.sum(dim=1), target)


def max_membrane_ce(v: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with each output neuron's peak membrane as its logit."""
    return F.cross_entropy(v.max(dim=1).values, target)


def soft_first_spike_time(s: torch.Tensor) -> torch.Tensor:
    """First spike step per neuron (B, C), differentiable; ``T`` when silent.

    ``t* = sum_t t * s_t * prod_{t'<t} (1 - s_t')`` plus ``T`` times the
    probability mass of never spiking.
    """
    B, T, C = s.shape
    survive = torch.cumprod(torch.cat([s.new_ones(B, 1, C), 1 - s[:, :-1]], dim=1), dim=1)
    first = s * survive
    steps = torch.arange(T, dtype=s.dtype, device=s.device).view(1, T, 1)
    silent = 1 - first.sum(dim=1)
    return (first * steps).sum(dim=1) + silent * T


def first_spike_ce(s: torch.Tensor, target: torch.Tensor, tau: float = 2.0) -> torch.Tensor:
    """Cross-entropy on negated first-spike times (in steps / tau): earliest spike wins."""
    return F.cross_entropy(-soft_first_spike_time(s) / tau, target)


def exp_filter(s: torch.Tensor, tau: float) -> torch.Tensor:
    """Causal exponential filter over time: ``y[t] = y[t-1] * exp(-1/tau) + s[t]``."""
    decay = torch.exp(torch.tensor(-1.0 / tau, dtype=s.dtype))
    T = s.shape[1]
    powers = decay ** torch.arange(T, dtype=s.dtype)
    # y = s convolved with the kernel; a (T, T) lower-triangular matrix product
    idx = torch.arange(T)
    kernel = torch.where(idx[:, None] >= idx[None, :], powers[(idx[:, None] - idx[None, :]).clamp(min=0)],
                         torch.zeros((), dtype=s.dtype))
    return torch.einsum("ts,bsc->btc", kernel, s)


def van_rossum(s: torch.Tensor, target: torch.Tensor, tau: float = 5.0) -> torch.Tensor:
    """Van Rossum distance: squared difference of exponentially filtered trains,
    summed over time and neurons, averaged over the batch (scaled by 1/tau)."""
    diff = exp_filter(s, tau) - exp_filter(target.to(s.dtype), tau)
    return (diff ** 2).sum(dim=(1, 2)).mean() / tau


LOSSES = {
    "count": spike_count_ce,
    "max-membrane": max_membrane_ce,
    "first-spike": first_spike_ce,
}


def predict(s) -> "torch.Tensor":
    """Class = output neuron with the most spikes; ties go to the earliest first spike,
    then the lowest index. Works on torch tensors and numpy arrays (B, T, C)."""
    import numpy as np

    arr = s.detach().cpu().numpy() if isinstance(s, torch.Tensor) else np.asarray(s)
    counts = arr.sum(axis=1)
    T = arr.shape[1]
    first = np.where(arr.any(axis=1), arr.argmax(axis=1), T)
    key = counts * (T + 1) + (T - first)  # more spikes first, then earlier
    return key.argmax(axis=1)
