"""Event-driven synaptic products for sparse binary inputs (`models.synapses`' fast path).

A dense product ``a = s @ W.T`` of a binary train ``s`` (rows: sample x step,
columns: presynaptic neurons) costs ``rows x n_in x n_out`` multiply-adds
whatever the activity; summing only the weight rows of the inputs that spiked
costs ``spikes x n_out``. At the 700-256-20 benchmark's 5 % input activity that
is 20 times less work, and the weight gradient ``dW = g.T @ s`` has the same
structure (a sum of the gradient rows at the steps an input spiked).

`events` lists the spikes of a ``(rows, n_in)`` array twice: by row (CSR, for
the forward sum) and by input (CSC, for the weight gradient), both in
ascending order, with the spikes' values (1 in a binary train, so a product
by it is exact). Each output element is summed by one thread, in an order set
by the lists alone (`gather_rows`), so the float result does not depend on the
thread count; it differs from a BLAS product only by float rounding (the order
of the additions).
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, parallel=True)
def events(s, max_events, delay):
    """The spikes (nonzero entries) of ``s`` (B, T, n_in), delayed by ``delay`` steps, as ``(row_ptr,
    inputs, row_values, col_ptr, rows, col_values)`` over the output rows r = b T + t, which hold the
    spikes of ``s[b, t - delay]`` (none for t < delay): row r's spiking inputs are
    ``inputs[row_ptr[r]:row_ptr[r + 1]]`` with their values, input i's rows ``rows[col_ptr[i]:col_ptr[i + 1]]``;
    both ascending. (A spike's value is 1 in a binary train; any other value is kept and multiplied.)
    A product summed over these lists is the delayed one, with no shifted copy of its input or output.
    More than ``max_events`` spikes: the lists are left empty (``row_ptr[-1]`` still counts them).
    Each row's inputs are listed branch-free (every index written, the end advanced by
    ``s != 0``) into a buffer of its own, then copied: at a few % density a branch per entry
    would be mispredicted at every spike."""
    B, T, N = s.shape
    R = B * T
    row_ptr = np.zeros(R + 1, np.int64)
    for r in numba.prange(R):
        if r % T >= delay:
            src, k = s[r // T, r % T - delay], 0
            for i in range(N):
                k += src[i] != 0
            row_ptr[r + 1] = k
    row_ptr = np.cumsum(row_ptr)
    nnz = row_ptr[R] if row_ptr[R] <= max_events else 0
    inputs, row_values = np.empty(nnz, np.int32), np.empty(nnz, s.dtype)
    rows, col_values = np.empty(nnz, np.int32), np.empty(nnz, s.dtype)
    col_ptr = np.zeros(N + 1, np.int64)
    if nnz == 0:
        return row_ptr, inputs, row_values, col_ptr, rows, col_values
    for part in numba.prange(_PARTS):
        listed = np.empty(N + 1, np.int32)
        for r in range(part * R // _PARTS, (part + 1) * R // _PARTS):
            if r % T < delay:
                continue
            src, m = s[r // T, r % T - delay], 0
            for i in range(N):
                listed[m] = i
                m += src[i] != 0
            k = row_ptr[r]
            for q in range(m):
                i = listed[q]
                inputs[k + q], row_values[k + q] = i, src[i]
    for part in numba.prange(_THREADS):  # by input: each thread its range of inputs, over every spike
        lo, hi = part * N // _THREADS, (part + 1) * N // _THREADS
        for k in range(nnz):
            if lo <= inputs[k] < hi:
                col_ptr[inputs[k] + 1] += 1
    col_ptr = np.cumsum(col_ptr)
    for part in numba.prange(_THREADS):
        lo, hi = part * N // _THREADS, (part + 1) * N // _THREADS
        fill = col_ptr[lo:hi].copy()
        for r in range(R):
            for k in range(row_ptr[r], row_ptr[r + 1]):
                i = inputs[k]
                if lo <= i < hi:
                    rows[fill[i - lo]], col_values[fill[i - lo]] = r, row_values[k]
                    fill[i - lo] += 1
    return row_ptr, inputs, row_values, col_ptr, rows, col_values


_PARTS = 64  # runs of rows `events` lists on numba's threads, each with one buffer
_THREADS = numba.config.NUMBA_NUM_THREADS  # ranges of inputs `events` sorts by input (one per thread)


@numba.njit(cache=True, nogil=True, parallel=True)
def gather_rows(ptr, index, values, table, out):
    """``out[r] = sum over k in ptr[r]:ptr[r + 1] of values[k] * table[index[k]]``, four terms at a
    time: ``out[r] += (v0 t0 + v1 t1) + (v2 t2 + v3 t3)`` (one pass over ``out[r]`` per four), the
    rest one by one, in ascending k. The order is fixed by the lists alone, so the result does not
    depend on the thread count.

    Forward: ``table = W.T`` (n_in, n_out), CSR -> ``a = s @ W.T``. Gradient:
    ``table = g`` (rows, n_out), CSC -> ``dW.T = s.T @ g``."""
    R, M = out.shape
    for r in numba.prange(R):
        acc = out[r]
        for j in range(M):
            acc[j] = 0
        k, end = ptr[r], ptr[r + 1]
        while k + 4 <= end:
            t0, t1, t2, t3 = table[index[k]], table[index[k + 1]], table[index[k + 2]], table[index[k + 3]]
            v0, v1, v2, v3 = values[k], values[k + 1], values[k + 2], values[k + 3]
            for j in range(M):
                acc[j] += (v0 * t0[j] + v1 * t1[j]) + (v2 * t2[j] + v3 * t3[j])
            k += 4
        for q in range(k, end):
            row, value = table[index[q]], values[q]
            for j in range(M):
                acc[j] += value * row[j]


@numba.njit(cache=True, nogil=True, parallel=True)
def nonzero_as(x, out):
    """``out = (x != 0)`` as 0 and 1 in ``out``'s dtype, in one pass (``x``, ``out`` (rows, n))."""
    for r in numba.prange(x.shape[0]):
        for i in range(x.shape[1]):
            out[r, i] = x[r, i] != 0
