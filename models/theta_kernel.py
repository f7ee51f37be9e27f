"""A compiled theta layer: `models.theta.layer`'s arithmetic as numba loops, forward and backward.

The same computation as the PyTorch reference (`models.theta._Interval`, one interval per
event): per sample and neuron, for each event k (and the trial end) the phase advances to
the event, fires and restarts if it reached Theta before T, then takes the event's jump
through the phase transfer H. The backward pass runs the intervals in reverse with the
closed-form derivatives of `_Interval` and returns the gradients of the initial phases,
of the interval end times and of the jumps; PyTorch's autograd does the rest (the clamp of
event times to T, the gather of jumps from weights). Samples run in parallel (``prange``).
`tests/test_theta.py` holds this kernel equal to the reference to 1e-12 in float64, with
its gradients.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch


@numba.njit(parallel=True, cache=True)
def _forward(phi0, ends, jumps, Theta, T, tau, root, eps):
    B, K1 = ends.shape
    N = phi0.shape[1]
    spikes = np.full((B, K1, N), np.inf, dtype=phi0.dtype)
    xs = np.empty((B, K1, N), dtype=phi0.dtype)
    moved = np.empty((B, K1, N), dtype=phi0.dtype)
    inside = np.zeros((B, K1, N), dtype=np.bool_)
    hits = np.zeros((B, K1, N), dtype=np.bool_)
    end = np.empty((B, N), dtype=phi0.dtype)
    for b in numba.prange(B):
        phi = phi0[b].copy()
        t_prev = 0.0
        for k in range(K1):
            t_k = ends[b, k]
            for i in range(N):
                advanced = phi[i] + (t_k - t_prev)
                t_fire = t_prev + (Theta - phi[i])
                restarted = advanced
                if advanced >= Theta and t_fire < T:
                    spikes[b, k, i] = t_fire
                    hits[b, k, i] = True
                    restarted = advanced - Theta
                phi[i] = restarted
                if t_k < T and restarted > eps and restarted < Theta - eps:
                    x = root * math.tan(restarted * root / tau - math.pi / 2)
                    m = x + jumps[b, k, i]
                    xs[b, k, i] = x
                    moved[b, k, i] = m
                    inside[b, k, i] = True
                    phi[i] = tau / root * (math.atan(m / root) + math.pi / 2)
            if t_k >= T:  # padding and the trial end: no jump, nothing more can happen
                break
            t_prev = t_k
        end[b] = phi
    return spikes, end, xs, moved, inside, hits


@numba.njit(parallel=True, cache=True)
def _backward(g_spikes, g_end, xs, moved, inside, hits, c, tau):
    B, K1, N = xs.shape
    g_phi0 = np.zeros((B, N), dtype=xs.dtype)
    g_ends = np.zeros((B, K1), dtype=xs.dtype)
    g_jumps = np.zeros((B, K1, N), dtype=xs.dtype)
    for b in numba.prange(B):
        g = g_end[b].copy()
        for k in range(K1 - 1, -1, -1):
            for i in range(N):
                if inside[b, k, i]:
                    denom = c + moved[b, k, i] * moved[b, k, i]
                    g_jumps[b, k, i] = g[i] * tau / denom
                    g_r = g[i] * (c + xs[b, k, i] * xs[b, k, i]) / denom
                else:
                    g_r = g[i]
                g_fire = g_spikes[b, k, i] if hits[b, k, i] else 0.0
                g_ends[b, k] += g_r
                if k > 0:
                    g_ends[b, k - 1] += g_fire - g_r
                g[i] = g_r - g_fire
        g_phi0[b] = g
    return g_phi0, g_ends, g_jumps


class CompiledLayer(torch.autograd.Function):
    """(phi0 (B, N), ends (B, K + 1), jumps (B, K, N), neuron, T) -> (spikes (B, K + 1, N), end (B, N))."""

    @staticmethod
    def forward(ctx, phi0, ends, jumps, neuron, T):
        # jumps (B, K, N) is read for the K events before T only (the last interval ends at T)
        out = _forward(phi0.detach().contiguous().numpy(), ends.detach().contiguous().numpy(),
                       jumps.detach().contiguous().numpy(), neuron.Theta, T, neuron.tau, neuron.root, neuron.eps)
        spikes, end, *saved = (torch.from_numpy(a) for a in out)
        ctx.save_for_backward(*saved)
        ctx.neuron, ctx.K = neuron, jumps.shape[1]
        return spikes, end

    @staticmethod
    def backward(ctx, g_spikes, g_end):
        xs, moved, inside, hits = ctx.saved_tensors
        n = ctx.neuron
        g_phi0, g_ends, g_jumps = _backward(g_spikes.contiguous().numpy(), g_end.contiguous().numpy(),
                                            xs.numpy(), moved.numpy(), inside.numpy(), hits.numpy(),
                                            n.I0 - 0.25, n.tau)
        return (torch.from_numpy(g_phi0), torch.from_numpy(g_ends), torch.from_numpy(g_jumps[:, :ctx.K].copy()),
                None, None)
