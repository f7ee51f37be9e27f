"""A compiled theta layer: `models.theta.layer`'s arithmetic as numba loops, forward and backward.

The same model as the PyTorch reference (`models.theta._Interval`, one interval per event):
per sample and neuron, for each event k (and the trial end) the phase advances to the event,
fires and restarts if it reached Theta before T, then takes the event's jump through the phase
transfer H. The kernel carries each neuron's state as ``y = tan(root phi / tau - pi / 2)``
(the voltage over root) instead of the phase: an advance by dt is then the tangent addition
formula with the one ``tan(root dt / tau)`` all neurons share, it fires iff ``y tan(...) >= 1``,
and the jump is an addition, so no neuron needs a tan or atan per event (the phase is computed
only for a spike time, at the trial end, and at the few crossings within ~1e-6 of an event,
where the phase rule itself decides). The addition formula loses no phase accuracy near the
pole: the phase error stays a few ulps. The forward pass saves the two derivatives of each
jump; the backward pass runs the intervals in reverse and returns the gradients of the initial
phases, of the interval end times and of the jumps; PyTorch's autograd does the rest (the
clamp of event times to T, the gather of jumps from weights). Samples run in parallel
(``prange``). `tests/test_theta.py` holds this kernel equal to the reference to 1e-12 in
float64, with its gradients.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch


@numba.njit(inline="always")
def _phase(y, tau, root):
    """The phase (time units) whose angle has tangent ``y``: ``tau / root (atan(y) + pi / 2)``."""
    return tau / root * (math.atan(y) + math.pi / 2)


@numba.njit(inline="always")
def _tangent(phi, tau, root):
    """The tangent of the phase angle: ``tan(root phi / tau - pi / 2)`` (the voltage over root)."""
    return math.tan(phi * root / tau - math.pi / 2)


@numba.njit(parallel=True, cache=True)
def _forward(phi0, ends, jumps, Theta, T, tau, root, eps):
    """Spike times (B, K + 1, N), end phases (B, N), and per event and neuron the derivatives of
    the phase after the event by the phase before it (``d_phase``, 1 outside the jump window) and
    by the jump (``d_jump``, 0 outside), which are all the backward pass needs; ``hits``: spiked."""
    B, K1 = ends.shape
    K, N = jumps.shape[1], phi0.shape[1]
    c = root * root
    # every entry is written by the sample's own loop below, while its rows are in cache
    spikes = np.empty((B, K1, N), dtype=phi0.dtype)
    d_phase = np.empty((B, K1, N), dtype=phi0.dtype)
    d_jump = np.empty((B, K, N), dtype=phi0.dtype)
    hits = np.empty((B, K1, N), dtype=np.bool_)
    end = np.empty((B, N), dtype=phi0.dtype)
    y_lo, y_hi = _tangent(eps, tau, root), _tangent(Theta - eps, tau, root)  # the jump window (eps, Theta - eps)
    for b in numba.prange(B):
        y = np.empty(N)  # each neuron's state as the tangent of its phase angle (float64)
        for i in range(N):
            y[i] = _tangent(phi0[b, i], tau, root)
        t_prev = 0.0
        done = K1  # the row after the trial end's
        for k in range(K1):
            t_k = ends[b, k]
            if t_k >= T:  # the trial end: no jump, nothing more can happen
                for i in range(N):
                    phi = _phase(y[i], tau, root)
                    t_fire = t_prev + (Theta - phi)
                    phi += t_k - t_prev
                    fired = phi >= Theta and t_fire < T
                    spikes[b, k, i] = t_fire if fired else np.inf
                    hits[b, k, i] = fired
                    d_phase[b, k, i] = 1.0
                    if k < K:
                        d_jump[b, k, i] = 0.0
                    end[b, i] = phi - Theta if fired else phi
                done = k + 1
                break
            a = root * (t_k - t_prev) / tau  # the interval's advance of the angle
            tb = math.tan(a)
            for i in range(N):
                p = y[i] * tb
                t_spike, dp, dj = np.inf, 1.0, 0.0
                if a > 0 and a < 1.5 and abs(p - 1.0) > 1e-6:
                    # tan(angle + a) by the addition formula; it fires iff angle + a >= pi / 2, i.e. p >= 1
                    if p >= 1.0:
                        t_spike = t_prev + (Theta - _phase(y[i], tau, root))
                    y[i] = (y[i] + tb) / (1.0 - p)
                    in_window = y[i] > y_lo and y[i] < y_hi
                else:  # no advance, a long one, or a crossing within ~1e-6 of the event: the phase rule itself
                    phi = _phase(y[i], tau, root)
                    advanced = phi + (t_k - t_prev)
                    t_fire = t_prev + (Theta - phi)
                    if advanced >= Theta and t_fire < T:
                        t_spike = t_fire
                        advanced -= Theta
                    y[i] = _tangent(advanced, tau, root)
                    in_window = advanced > eps and advanced < Theta - eps
                if in_window:  # the jump, in the voltage x = root y: H(phi, w) = phase of x + w
                    x = root * y[i]
                    m = x + jumps[b, k, i]
                    inverse = 1.0 / (c + m * m)
                    dp = (c + x * x) * inverse
                    dj = tau * inverse
                    y[i] = m / root
                spikes[b, k, i] = t_spike
                hits[b, k, i] = t_spike < np.inf
                d_phase[b, k, i] = dp
                d_jump[b, k, i] = dj
            t_prev = t_k
        for k in range(done, K1):  # rows after the trial end: no spike, identity, no jump
            for i in range(N):
                spikes[b, k, i] = np.inf
                hits[b, k, i] = False
                d_phase[b, k, i] = 1.0
                if k < K:
                    d_jump[b, k, i] = 0.0
    return spikes, end, d_phase, d_jump, hits


@numba.njit(parallel=True, cache=True)
def _backward(g_spikes, g_end, d_phase, d_jump, hits):
    B, K1, N = d_phase.shape
    K = d_jump.shape[1]
    g_phi0 = np.zeros((B, N), dtype=d_phase.dtype)
    g_ends = np.zeros((B, K1), dtype=d_phase.dtype)
    g_jumps = np.empty((B, K, N), dtype=d_phase.dtype)
    for b in numba.prange(B):
        g = g_end[b].copy()
        for k in range(K1 - 1, -1, -1):
            if k < K:
                for i in range(N):
                    g_jumps[b, k, i] = g[i] * d_jump[b, k, i]
            into_end, into_start = 0.0, 0.0  # the gradient of this interval's end and start times
            for i in range(N):
                g_r = g[i] * d_phase[b, k, i]
                g_fire = g_spikes[b, k, i] * hits[b, k, i]
                into_end += g_r
                into_start += g_fire - g_r
                g[i] = g_r - g_fire
            g_ends[b, k] += into_end
            if k > 0:
                g_ends[b, k - 1] += into_start
        g_phi0[b] = g
    return g_phi0, g_ends, g_jumps


@numba.njit(parallel=True, cache=True)
def event_order(flat, T):
    """Per sample, the indices of the entries of ``flat`` (B, M) below T in increasing order
    (ties by index), padded with the index of an entry >= T (or of the first entry): (B, K)
    with K the largest count (>= 1); `models.theta.sorted_events`' order."""
    B, M = flat.shape
    counts = np.zeros(B, dtype=np.int64)
    for b in numba.prange(B):
        for j in range(M):
            if flat[b, j] < T:
                counts[b] += 1
    K = max(1, counts.max()) if B else 1
    order = np.zeros((B, K), dtype=np.int64)
    for b in numba.prange(B):
        found = np.empty(counts[b], dtype=np.int64)
        n, pad = 0, 0
        for j in range(M):
            if flat[b, j] < T:
                found[n] = j
                n += 1
            elif flat[b, pad] < T:
                pad = j
        ranked = found[np.argsort(flat[b, found], kind="mergesort")]
        order[b, :n] = ranked
        order[b, n:] = pad
    return order


class CompiledLayer(torch.autograd.Function):
    """(phi0 (B, N), ends (B, K + 1), jumps (B, K, N), neuron, T) -> (spikes (B, K + 1, N), end (B, N))."""

    @staticmethod
    def forward(ctx, phi0, ends, jumps, neuron, T):
        # jumps (B, K, N) is read for the K events before T only (the last interval ends at T)
        out = _forward(phi0.detach().contiguous().numpy(), ends.detach().contiguous().numpy(),
                       jumps.detach().contiguous().numpy(), neuron.Theta, T, neuron.tau, neuron.root, neuron.eps)
        spikes, end, *saved = (torch.from_numpy(a) for a in out)
        ctx.save_for_backward(*saved)
        return spikes, end

    @staticmethod
    def backward(ctx, g_spikes, g_end):
        g_phi0, g_ends, g_jumps = _backward(g_spikes.contiguous().numpy(), g_end.contiguous().numpy(),
                                            *(t.numpy() for t in ctx.saved_tensors))
        return torch.from_numpy(g_phi0), torch.from_numpy(g_ends), torch.from_numpy(g_jumps), None, None


@numba.njit(cache=True)
def _sum_rows(index, g, n_rows):
    """``out[index[r]] += g[r]`` for every row r (index (R,), g (R, N)): the gradient of a row gather,
    summed in row order, in g's dtype: the sums autograd's accumulating ``index_put_`` makes on one
    thread, bit for bit (on more threads it splits the rows, and its sums depend on how many)."""
    out = np.zeros((n_rows, g.shape[1]), dtype=g.dtype)
    for r in range(g.shape[0]):
        row, src = out[index[r]], g[r]
        for j in range(g.shape[1]):
            row[j] += src[j]
    return out


class Rows(torch.autograd.Function):
    """(table (M, N), index (...)) -> ``table[index]`` (..., N): the rows of a table, gathered;
    the backward sums each gradient row into its table row in a compiled loop."""

    @staticmethod
    def forward(ctx, table, index):
        ctx.save_for_backward(index)
        ctx.n_rows = table.shape[0]
        return table[index]

    @staticmethod
    def backward(ctx, g):
        index, = ctx.saved_tensors
        g_rows = g.reshape(-1, g.shape[-1]).contiguous().numpy()
        return torch.from_numpy(_sum_rows(index.reshape(-1).numpy(), g_rows, ctx.n_rows)), None
