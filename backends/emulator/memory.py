"""Arrays on recycled memory: `empty` is ``np.empty`` on a buffer a previous run let go of.

Writing to fresh memory costs a page fault per 4 KiB page, and on the
machines spikeport runs on that is as costly as the arithmetic of a small
network (and malloc hands every block-sized temporary fresh pages). So the
emulator takes its recordings and its per-block working arrays from a pool
of flat buffers (at most `POOL_BYTES` in all). A buffer is handed out again
only when nothing outside the pool refers to it: every array given out is a
view of its buffer, and numpy points every view of a view at the buffer
itself, so the buffer's reference count says whether any is alive (CPython).
"""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

POOL_BYTES = 64 << 20  # memory kept for reuse; a larger array is allocated fresh and not kept
SMALL_BYTES = 64 << 10  # smaller arrays come from malloc, which recycles them by itself
_pool: list = []  # flat uint8 buffers
_lock = threading.Lock()


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised array, on pooled memory that no live array uses when there is such memory."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < SMALL_BYTES or nbytes > POOL_BYTES:
        return np.empty(shape, dtype)
    with _lock:  # another thread must not take the buffer before the view holds it
        return _buffer(nbytes)[:nbytes].view(dtype).reshape(shape)


def _unused(i: int) -> bool:
    return sys.getrefcount(_pool[i]) == 2  # held by the list and by this call only


def _buffer(nbytes: int) -> np.ndarray:
    """The smallest unused pooled buffer that fits (without wasting half), else a new one."""
    fits = [i for i in range(len(_pool)) if nbytes <= len(_pool[i]) <= 2 * nbytes and _unused(i)]
    if fits:
        return _pool[min(fits, key=lambda i: len(_pool[i]))]
    if sum(map(len, _pool)) + nbytes > POOL_BYTES:  # make room: forget the unused buffers
        _pool[:] = [_pool[i] for i in range(len(_pool)) if not _unused(i)]
    buffer = np.empty(nbytes, np.uint8)
    if sum(map(len, _pool)) + nbytes <= POOL_BYTES:
        _pool.append(buffer)
    return buffer
