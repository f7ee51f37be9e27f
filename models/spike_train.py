"""Spike trains as spike *times*, and Banerjee's error functional between two of them.

Representation. A batch of spike trains is a float tensor ``(..., K)`` of
spike times in milliseconds, padded with ``+inf`` ("no spike"), so trains of
different lengths share one tensor. `raster_to_times` / `times_to_raster`
convert to and from spikeport's step rasters ``(B, T, n)`` with the
convention used by every engine: 1 step = ``dt`` ms, array index ``k`` is
step ``k + 1``, and step ``n`` covers the time interval ``((n-1) dt, n dt]``
(a spike at time ``t`` falls in step ``ceil(t / dt)``).

Error functional (Banerjee 2016, "Learning precise spike train to spike
train transformations in multilayer feedforward neuronal networks"). Both
trains drive a virtual postsynaptic neuron with a causal kernel ``k``; the
error is the squared difference of the two drives, integrated over time::

    E = 1/2 ∫ ( Σ_i k(t - t_i) - Σ_j k(t - t̂_j) )² dt

(``t_i`` emitted, ``t̂_j`` desired; no spike alignment is needed). For a
kernel that is a sum of exponentials, ``k(t) = Σ_p c_p exp(-t/τ_p)`` for
``t > 0``, the overlap of two shifted kernels has a closed form that depends
only on the distance of the two spikes::

    ∫ k(t-a) k(t-b) dt = g(|a-b|),   g(x) = Σ_q γ_q exp(-x/τ_q),
    γ_q = c_q Σ_p c_p τ_p τ_q / (τ_p + τ_q)

so ``E = 1/2 ΣΣ g(|t_i - t_i'|) - ΣΣ g(|t_i - t̂_j|) + 1/2 ΣΣ g(|t̂_j - t̂_j'|)``,
a double sum over spike pairs. ``g'(0) = -k(0)²/2``: for the exponential
kernel ``g`` has a kink where an emitted spike meets a desired one; for the
difference of exponentials (``k(0) = 0``) it is smooth, which is why that
kernel is the default for learning. Units: times and time constants in ms,
``E`` in ms (the kernels are dimensionless, peak 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

INF = math.inf


# ------------------------------------------------------------------ kernels
@dataclass(frozen=True)
class Kernel:
    """Causal kernel ``k(t) = Σ_p coef[p] exp(-t / tau[p])`` for ``t > 0`` (0 before); tau in ms."""

    coef: tuple
    tau: tuple

    def __post_init__(self):
        if len(self.coef) != len(self.tau) or not self.tau or min(self.tau) <= 0:
            raise ValueError(f"kernel needs matching coef/tau with tau > 0, got {self.coef}, {self.tau}")

    def __call__(self, t):
        """Kernel value at lags ``t`` (ms); zero for ``t <= 0``."""
        t = torch.as_tensor(t, dtype=torch.float64)
        pos = t > 0
        safe = torch.where(pos, t, torch.zeros_like(t))
        val = sum(c * torch.exp(-safe / tau) for c, tau in zip(self.coef, self.tau))
        return torch.where(pos, val, torch.zeros_like(t))

    def overlap_coefficients(self) -> list[float]:
        """``γ_q`` of ``g(x) = Σ_q γ_q exp(-x/τ_q)``, the overlap of two kernels at distance x."""
        return [cq * sum(cp * tp * tq / (tp + tq) for cp, tp in zip(self.coef, self.tau))
                for cq, tq in zip(self.coef, self.tau)]

    def overlap(self, x: torch.Tensor) -> torch.Tensor:
        """``g(x) = ∫ k(t) k(t - x) dt`` for distances ``x >= 0`` (ms)."""
        return sum(g * torch.exp(-x / tq) for g, tq in zip(self.overlap_coefficients(), self.tau))

    def overlap_slope(self, x: torch.Tensor) -> torch.Tensor:
        """``g'(x)`` for ``x >= 0`` (right derivative at 0)."""
        return sum(-g / tq * torch.exp(-x / tq) for g, tq in zip(self.overlap_coefficients(), self.tau))


def exponential_kernel(tau: float = 5.0) -> Kernel:
    """``k(t) = exp(-t/tau)``: the van Rossum kernel (peak 1 at t = 0+)."""
    return Kernel((1.0,), (float(tau),))


def difference_of_exponentials(tau_1: float = 10.0, tau_2: float = 2.5) -> Kernel:
    """``k(t) ∝ exp(-t/tau_1) - exp(-t/tau_2)`` (tau_1 > tau_2), scaled to peak 1.

    A PSP-shaped kernel with ``k(0) = 0``, so the error functional is smooth
    in every spike time, also where an emitted spike meets a desired one.
    """
    if not tau_1 > tau_2 > 0:
        raise ValueError(f"need tau_1 > tau_2 > 0, got {tau_1}, {tau_2}")
    t_peak = math.log(tau_1 / tau_2) * tau_1 * tau_2 / (tau_1 - tau_2)
    peak = math.exp(-t_peak / tau_1) - math.exp(-t_peak / tau_2)
    return Kernel((1.0 / peak, -1.0 / peak), (float(tau_1), float(tau_2)))


# ------------------------------------------------------ error functional
def _pair_sum(kernel: Kernel, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Σ_i Σ_j g(|a_i - b_j|)`` over the last axis of ``a`` (..., I) and ``b`` (..., J); inf = absent."""
    valid = torch.isfinite(a)[..., :, None] & torch.isfinite(b)[..., None, :]
    a0 = torch.where(torch.isfinite(a), a, torch.zeros_like(a))
    b0 = torch.where(torch.isfinite(b), b, torch.zeros_like(b))
    dist = (a0[..., :, None] - b0[..., None, :]).abs()
    g = torch.where(valid, kernel.overlap(dist), torch.zeros_like(dist))
    return g.sum(dim=(-2, -1))


def error_functional(emitted: torch.Tensor, desired: torch.Tensor, kernel: Kernel) -> torch.Tensor:
    """Banerjee's ``E`` (ms) for every train: emitted (..., I), desired (..., J) spike times (ms).

    Closed form (see module docstring); differentiable in the emitted times
    (torch autograd gives the exact gradient, `error_gradient` the same by hand).
    """
    emitted = torch.as_tensor(emitted, dtype=torch.float64)
    desired = torch.as_tensor(desired, dtype=torch.float64)
    return (0.5 * _pair_sum(kernel, emitted, emitted) - _pair_sum(kernel, emitted, desired)
            + 0.5 * _pair_sum(kernel, desired, desired))


def error_gradient(emitted: torch.Tensor, desired: torch.Tensor, kernel: Kernel) -> torch.Tensor:
    """``dE/dt_i`` for every emitted spike (..., I), in closed form; 0 for absent spikes.

    ``dE/dt_i = Σ_i' g'(|t_i - t_i'|) sgn(t_i - t_i') - Σ_j g'(|t_i - t̂_j|) sgn(t_i - t̂_j)``.
    """
    emitted = torch.as_tensor(emitted, dtype=torch.float64)
    desired = torch.as_tensor(desired, dtype=torch.float64)

    def pull(a, b):
        valid = torch.isfinite(a)[..., :, None] & torch.isfinite(b)[..., None, :]
        d = torch.where(valid, a[..., :, None] - b[..., None, :], torch.zeros_like(valid, dtype=a.dtype))
        return (kernel.overlap_slope(d.abs()) * torch.sign(d)).sum(dim=-1)

    grad = pull(emitted, emitted) - pull(emitted, desired)
    return torch.where(torch.isfinite(emitted), grad, torch.zeros_like(grad))


def drive(times: torch.Tensor, t_grid: torch.Tensor, kernel: Kernel) -> torch.Tensor:
    """The virtual neuron's input ``Σ_i k(t - t_i)`` on ``t_grid`` (G,): (..., K) -> (..., G)."""
    times = torch.as_tensor(times, dtype=torch.float64)
    lag = t_grid.to(torch.float64)[..., None, :] - torch.where(
        torch.isfinite(times), times, torch.full_like(times, 1e30))[..., :, None]
    return kernel(lag).sum(dim=-2)


# ----------------------------------------------------- representations
def pad_times(trains) -> torch.Tensor:
    """Nested lists ``trains[b][i] = [t, ...]`` (ms) -> (B, n, K) float64 tensor, sorted, inf-padded."""
    B, n = len(trains), len(trains[0])
    K = max([len(x) for row in trains for x in row] + [1])
    out = np.full((B, n, K), INF)
    for b, row in enumerate(trains):
        for i, x in enumerate(row):
            out[b, i, :len(x)] = np.sort(np.asarray(x, dtype=np.float64))
    return torch.from_numpy(out)


def raster_to_times(raster, dt: float = 1.0) -> torch.Tensor:
    """(B, T, n) step raster -> (B, n, K) spike times (ms): index k is step k+1, time (k+1)·dt."""
    r = np.asarray(raster.detach().cpu() if isinstance(raster, torch.Tensor) else raster) != 0
    B, T, n = r.shape
    K = max(int(r.sum(axis=1).max(initial=0)), 1)
    out = np.full((B, n, K), INF)
    counts = np.zeros((B, n), dtype=np.int64)
    for b, k, i in zip(*np.nonzero(r)):  # np.nonzero is row-major: time-ordered within (b, i)
        out[b, i, counts[b, i]] = (k + 1) * dt
        counts[b, i] += 1
    return torch.from_numpy(np.sort(out, axis=-1))


def times_to_raster(times, T: int, dt: float = 1.0) -> np.ndarray:
    """(B, n, K) spike times (ms) -> (B, T, n) uint8 raster: a spike at t lands in step ceil(t/dt).

    Spikes outside ``(0, T·dt]`` are dropped; several spikes in one step count once
    (`step_collisions` counts how often that happens).
    """
    t = np.asarray(times.detach().cpu() if isinstance(times, torch.Tensor) else times, dtype=np.float64)
    B, n, _ = t.shape
    out = np.zeros((B, T, n), dtype=np.uint8)
    step = np.ceil(t / dt)
    ok = np.isfinite(step) & (step >= 1) & (step <= T)
    b, i, _ = np.nonzero(ok)
    out[b, step[ok].astype(np.int64) - 1, i] = 1
    return out


def spike_counts(times) -> torch.Tensor:
    """Number of spikes (finite entries) per train: (..., K) -> (...)."""
    t = torch.as_tensor(times)
    return torch.isfinite(t).sum(dim=-1)


def step_collisions(times, dt: float = 1.0) -> int:
    """How many spikes fall in the same step as an earlier spike of their train (lost in a raster)."""
    t = np.sort(np.asarray(times.detach().cpu() if isinstance(times, torch.Tensor) else times), axis=-1)
    step = np.ceil(t / dt)
    same = (step[..., 1:] == step[..., :-1]) & np.isfinite(step[..., 1:])
    return int(same.sum())
