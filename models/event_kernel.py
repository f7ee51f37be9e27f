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
by it is exact). Each output element is summed by one thread, in ascending
input (forward) or row (gradient) order, so the float result does not depend
on the thread count; it differs from a BLAS product only by float rounding
(the order of the additions).
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, parallel=True)
def events(s, max_events):
    """The spikes (nonzero entries) of ``s`` (rows, n_in) as ``(row_ptr, inputs, row_values,
    col_ptr, rows, col_values)``: row r's spiking inputs are ``inputs[row_ptr[r]:row_ptr[r + 1]]``
    with their values, input i's spiking rows ``rows[col_ptr[i]:col_ptr[i + 1]]``; both ascending.
    (A spike's value is 1 in a binary train; any other value is kept and multiplied.)
    More than ``max_events`` spikes: the lists are left empty (``row_ptr[-1]`` still counts them)."""
    R, N = s.shape
    row_ptr = np.zeros(R + 1, np.int64)
    for r in numba.prange(R):
        k = 0
        for i in range(N):
            k += s[r, i] != 0
        row_ptr[r + 1] = k
    row_ptr = np.cumsum(row_ptr)
    nnz = row_ptr[R] if row_ptr[R] <= max_events else 0
    inputs, row_values = np.empty(nnz, np.int32), np.empty(nnz, s.dtype)
    rows, col_values = np.empty(nnz, np.int32), np.empty(nnz, s.dtype)
    col_ptr = np.zeros(N + 1, np.int64)
    if nnz == 0:
        return row_ptr, inputs, row_values, col_ptr, rows, col_values
    for r in numba.prange(R):
        k = row_ptr[r]
        for i in range(N):
            if s[r, i] != 0:
                inputs[k], row_values[k] = i, s[r, i]
                k += 1
    for k in range(nnz):
        col_ptr[inputs[k] + 1] += 1
    col_ptr = np.cumsum(col_ptr)
    fill = col_ptr[:-1].copy()
    for r in range(R):
        for k in range(row_ptr[r], row_ptr[r + 1]):
            i = inputs[k]
            rows[fill[i]], col_values[fill[i]] = r, row_values[k]
            fill[i] += 1
    return row_ptr, inputs, row_values, col_ptr, rows, col_values


@numba.njit(cache=True, nogil=True, parallel=True)
def gather_rows(ptr, index, values, table, out):
    """``out[r] = sum over k in ptr[r]:ptr[r + 1] of values[k] * table[index[k]]``, summed in that order.

    Forward: ``table = W.T`` (n_in, n_out), CSR -> ``a = s @ W.T``. Gradient:
    ``table = g`` (rows, n_out), CSC -> ``dW.T = s.T @ g``."""
    R, M = out.shape
    for r in numba.prange(R):
        acc = out[r]
        for j in range(M):
            acc[j] = 0
        for k in range(ptr[r], ptr[r + 1]):
            row, value = table[index[k]], values[k]
            for j in range(M):
                acc[j] += value * row[j]
