"""A feed-forward theta network with trainable weights and initial phases (Klos & Memmesheimer).

Layers ``n_in -> hidden... -> n_out`` of theta neurons (`models.theta`), delta-pulse
synapses, trial ``[0, T]`` in the neuron's dimensionless time. Trainable: every weight
matrix and every neuron's initial phase ``phi0`` (kept in ``[0, Theta]`` by `clamp_phases`).

Input: each feature spikes at most once, at a time from `input_times` (``inf``: no spike).
With the binned code (`bin_times`), the features of one bin spike together and are merged
into one event whose jump is their weight sum (exact: jumps at one instant add), so an
MNIST image is one input event, as in the reference code. Otherwise the input spikes are
sorted (latency code).

Output: the first output spike time of every output neuron, with pseudospikes for those
that did not fire (`models.theta.pseudo_times`); the prediction is the earliest one.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from models import theta


def bin_times(n_bins: int, T: float) -> torch.Tensor:
    """The reference's input times, one per intensity bin (brightest first), time units:
    ``T ln(I / (I - 0.01 n_bins))`` for ``I = n_bins, ..., 1`` (a LIF with constant drive I)."""
    drive = torch.arange(n_bins, 0, -1, dtype=torch.float64)
    return T * torch.log(drive / (drive - 0.01 * n_bins))


def bin_index(x: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Intensity ``x`` in [0, 1] -> bin 0 (brightest) .. n_bins - 1, or ``n_bins`` (no spike):
    ``floor((1 - x) (n_bins + 1))``. With one bin: spike iff ``x >= 1/2`` (MNIST: pixel >= 128)."""
    return torch.clamp(torch.floor((1 - x) * (n_bins + 1)), 0, n_bins).long()


def flip_bins(index: torch.Tensor, n_bins: int, p: float, generator=None) -> torch.Tensor:
    """The reference's augmentation: each feature's bin ``b`` becomes ``n_bins - b`` with
    probability ``p`` (one bin: a pixel flips on <-> off)."""
    flip = torch.rand(index.shape, generator=generator) < p
    return torch.where(flip, n_bins - index, index)


class ThetaNetwork(nn.Module):
    """``sizes = [n_in, hidden..., n_out]``; ``levels``: the binned code's times (or None: latency)."""

    def __init__(self, sizes, T: float = 2.0, neuron: theta.ThetaNeuron = theta.ThetaNeuron(),
                 levels=None, w_scale: float = 0.5, seed: int = 0, dtype=torch.float32):
        super().__init__()
        self.sizes, self.T, self.neuron = [int(n) for n in sizes], float(T), neuron
        self.config = dict(sizes=self.sizes, T=self.T, tau=neuron.tau, I0=neuron.I0, eps=neuron.eps,
                           levels=None if levels is None else [float(v) for v in levels],
                           w_scale=float(w_scale), seed=int(seed))
        gen = torch.Generator().manual_seed(int(seed))
        self.weights = nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            width = w_scale / math.sqrt(n_in)
            w = (torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * 2 - 1) * width
            self.weights.append(nn.Parameter(w.to(dtype)))
        self.phases = nn.ParameterList(
            nn.Parameter(torch.full((n,), neuron.Theta / 2, dtype=dtype)) for n in sizes[1:])
        self.register_buffer("levels", None if levels is None else torch.as_tensor(levels, dtype=dtype))

    @classmethod
    def from_config(cls, config: dict) -> "ThetaNetwork":
        """The network `config` describes (weights and phases as initialised; load a state dict)."""
        c = dict(config)
        neuron = theta.ThetaNeuron(tau=c.pop("tau"), I0=c.pop("I0"), eps=c.pop("eps"))
        return cls(c.pop("sizes"), neuron=neuron, **c)

    @torch.no_grad()
    def clamp_phases(self) -> None:
        """Keep every initial phase in [0, Theta] (the reference clips after each step)."""
        for phi in self.phases:
            phi.clamp_(0.0, self.neuron.Theta)

    def input_events(self, t_in: torch.Tensor):
        """(times (B, K), jumps) of the first layer for input spike times ``t_in`` (B, n_in)."""
        w = self.weights[0]
        if self.levels is not None:
            levels = self.levels.to(t_in.dtype)
            times = levels.expand(t_in.shape[0], -1)
            return times, torch.stack([(t_in == level).to(w.dtype) @ w.t() for level in levels], 1)
        times, sources = torch.sort(t_in, dim=1)
        return times, theta.dense_jumps(w, sources)

    def forward(self, t_in: torch.Tensor) -> dict:
        """Run every layer exactly. Returns ``spikes`` (per layer (B, S, N): one slot per interval between events), ``ends``
        (end phases per layer), ``first`` (first output spikes, ``inf`` if silent) and ``t_out``
        (with pseudospikes)."""
        times, jumps = self.input_events(t_in)
        spikes, ends = [], []
        for l, phi0 in enumerate(self.phases):
            if l > 0:
                times, sources = theta.sorted_events(spikes[-1], self.T)
                jumps = theta.dense_jumps(self.weights[l], sources)
            s, end = theta.layer(phi0, times, jumps, self.T, self.neuron)
            spikes.append(s)
            ends.append(end)
        first = theta.first_spike(spikes[-1])
        t_out = theta.pseudo_times(ends, list(self.weights[1:]), first, self.neuron, self.T)
        return dict(spikes=spikes, ends=ends, first=first, t_out=t_out)


def predict(t_out: torch.Tensor) -> torch.Tensor:
    """The class of the earliest output (pseudo)spike."""
    return t_out.argmin(1)


def predict_ordinary(first: torch.Tensor, T: float) -> torch.Tensor:
    """The reference's ``acc_ord`` rule: output times capped at T, earliest wins (ties: lowest index)."""
    return torch.clamp(first, max=T).argmin(1)
