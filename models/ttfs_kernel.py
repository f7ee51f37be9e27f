"""A compiled TTFS layer: `models.ttfs_layer`'s closed-form first spikes as numba loops, forward and backward.

The same mathematics as the PyTorch reference (`models.ttfs_layer._TTFSLayer`), per sample
instead of as (K, B, n_out) tensors: the sample's events (finite inputs outside the merged
tail) are sorted once (stable: ties keep their input order) for all output neurons; then, in
arrival order, every neuron's running sums ``A = sum w`` and ``Bz = sum w z`` grow by the
event's weight row (contiguous in the transposed weights ``wt`` (n_in, n_out)), and a neuron's
first prefix whose voltage just before the next event, ``A - Bz / z_next``, exceeds theta
selects its spike ``z_out = Bz / (A - theta)``. The scan of a sample stops when every neuron
has spiked. Neurons that have not spiked by the last event may still spike on the merged tail
(``A + w_tail > theta``). Each sum is accumulated in the reference's order and dtype (float32
or float64, no fast-math contraction), so only the sort's order among equal input times can
make the two paths round differently.

The backward pass uses the exact derivatives of the selected closed form (the module doc of
`models.ttfs_layer`): for the ``count`` causal events of each (sample, neuron),
``d z_out / d w_i = (z_i - z_out) / (A - theta)`` and ``d z_out / d z_i = w_i / (A - theta)``;
the merged tail's terms are two matrix products left to PyTorch. Times are in units of tau_syn
throughout, as ``z = exp(t / tau_syn)``. `tests/test_ttfs.py` holds this kernel equal to the
reference to 1e-12 in float64, values and gradients.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, nogil=True)
def forward(z_in, events, wt, theta, beyond, w_tail, tail_z):
    """First spikes of one layer, one sample per (parallel) iteration.

    ``z_in`` (B, n_in) input times as z; ``events`` (B, n_in) bool, the inputs scanned one by one;
    ``wt`` (n_in, n_out) the transposed weights, C order; ``theta`` the threshold; ``beyond`` the z
    after the last event (``tail_z``, or inf without a tail); ``w_tail`` (B, n_out) the merged tail's
    weight sums, or of size 0 for no tail; all scalars of the arrays' dtype.
    Returns ``z_out`` (B, n_out) (inf: no spike), ``denom`` (B, n_out) ``A - theta`` of the selected
    prefix (1 where no spike), ``count`` (B, n_out) int64 the number of causal sorted events,
    ``spiked``, ``used_tail`` (B, n_out) bool, and the sorted events ``perm`` (B, K) (input index)
    and ``zs`` (B, K) (their z), padded with 0 beyond each sample's ``n`` (B,) events.
    """
    B, n_in = z_in.shape
    n_out = wt.shape[1]
    dt = wt.dtype
    has_tail = w_tail.size > 0
    n = np.zeros(B, dtype=np.int64)
    for b in numba.prange(B):
        c = 0
        for i in range(n_in):
            if events[b, i]:
                c += 1
        n[b] = c
    K = n.max() if B else 0
    perm = np.zeros((B, K), dtype=np.int64)
    zs = np.zeros((B, K), dtype=dt)
    z_out = np.empty((B, n_out), dtype=dt)
    denom = np.empty((B, n_out), dtype=dt)
    count = np.empty((B, n_out), dtype=np.int64)
    spiked = np.zeros((B, n_out), dtype=np.bool_)
    used_tail = np.zeros((B, n_out), dtype=np.bool_)
    one = dt.type(1)
    for b in numba.prange(B):
        nb = n[b]
        found = np.empty(nb, dtype=np.int64)
        c = 0
        for i in range(n_in):
            if events[b, i]:
                found[c] = i
                c += 1
        ranked = found[np.argsort(z_in[b, found], kind="mergesort")]
        for k in range(nb):
            perm[b, k] = ranked[k]
            zs[b, k] = z_in[b, ranked[k]]
        A = np.zeros(n_out, dtype=dt)
        Bz = np.zeros(n_out, dtype=dt)
        A_sel = np.zeros(n_out, dtype=dt)
        B_sel = np.zeros(n_out, dtype=dt)
        cnt = np.full(n_out, nb, dtype=np.int64)
        waiting = np.ones(n_out, dtype=np.int64)  # 1 until the neuron's spike is selected
        done = np.zeros(n_out, dtype=np.bool_)
        left = n_out
        for k in range(nb):
            if left == 0:
                break
            row = wt[ranked[k]]
            zk = zs[b, k]
            inv = one / (zs[b, k + 1] if k + 1 < nb else beyond)
            hits = 0
            for j in range(n_out):  # every neuron's sums grow; count new crossings (branch-free: it vectorises)
                a = A[j] + row[j]
                bz = Bz[j] + row[j] * zk
                A[j], Bz[j] = a, bz
                hits += waiting[j] * (a - bz * inv > theta)
            if hits:
                for j in range(n_out):
                    if waiting[j] and A[j] - Bz[j] * inv > theta:
                        waiting[j] = 0
                        done[j] = True
                        A_sel[j], B_sel[j], cnt[j] = A[j], Bz[j], k + 1
                left -= hits
        for j in range(n_out):
            fired = done[j]
            if not fired and has_tail:
                a_t = A[j] + w_tail[b, j]
                if a_t > theta:
                    fired = True
                    used_tail[b, j] = True
                    A_sel[j], B_sel[j] = a_t, Bz[j] + w_tail[b, j] * tail_z
            count[b, j] = cnt[j]
            if fired:
                spiked[b, j] = True
                d = A_sel[j] - theta
                denom[b, j] = d
                z_out[b, j] = B_sel[j] / d
            else:
                denom[b, j] = one
                z_out[b, j] = np.inf
    return z_out, denom, count, spiked, used_tail, perm, zs, n


@numba.njit(cache=True, nogil=True)
def backward_weight(G, zo, count, perm, zs, n, n_in):
    """``d loss / d wt`` (n_in, n_out) over the sorted events: sum over samples b and the
    ``count[b, j]`` causal events k of ``G[b, j] (zs[b, k] - zo[b, j])``, ``G`` = the output
    gradient over ``A - theta`` (0 where no spike), ``zo`` the spike z (0 where none).
    Serial over samples (they add into one array)."""
    B, n_out = G.shape
    g_wt = np.zeros((n_in, n_out), dtype=G.dtype)
    zero = G.dtype.type(0)
    for b in range(B):
        last = 0
        for j in range(n_out):
            last = max(last, count[b, j])
        Gb, zb, cb = G[b], zo[b], count[b]
        for k in range(min(last, n[b])):
            out = g_wt[perm[b, k]]
            zk = zs[b, k]
            for j in range(n_out):
                out[j] += Gb[j] * (zk - zb[j]) if k < cb[j] else zero
    return g_wt


@numba.njit(parallel=True, cache=True, nogil=True)
def backward_input(G, count, perm, n, wt, n_in):
    """``d loss / d z_in`` (B, n_in) of the scanned events: for event k of sample b,
    the sum over neurons j with ``k < count[b, j]`` of ``G[b, j] wt[perm[b, k], j]``; 0 elsewhere."""
    B, n_out = G.shape
    g_z = np.zeros((B, n_in), dtype=G.dtype)
    zero = G.dtype.type(0)
    for b in numba.prange(B):
        Gb, cb = G[b], count[b]
        for k in range(n[b]):
            row = wt[perm[b, k]]
            s = zero
            for j in range(n_out):
                s += Gb[j] * row[j] if k < cb[j] else zero
            g_z[b, perm[b, k]] = s
    return g_z
