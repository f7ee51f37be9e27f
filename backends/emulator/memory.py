"""Arrays on recycled memory: `empty` is ``np.empty`` on a buffer a previous run let go of.

Writing to fresh memory costs a page fault per 4 KiB page, and on the
machines spikeport runs on that is as costly as the arithmetic of a small
network (and malloc hands every block-sized temporary fresh pages). So the
emulator takes its recordings and its per-block working arrays from a pool
of flat buffers (at most `POOL_BYTES` in all). A buffer is handed out again
only when nothing outside the pool refers to it: every array given out is a
view of its buffer, and numpy points every view of a view at the buffer
itself, so the buffer's reference count says whether any is alive (CPython).

A large run's recordings are fresh pages (hundreds of MB on a large layer), which cost as much
as a third of the run, and more in a VM whose host backs a page only when it is first touched.
`reserving` has them faulted in on another thread while the caller prepares the run on one
core (the IR's checks, Lava's weights), and `empty` hands every array of `RESERVED_BYTES` or
more out of that memory.
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import mmap
import sys
import threading
import time

import numpy as np

POOL_BYTES = 64 << 20  # memory kept for reuse; a larger array is allocated fresh and not kept
SMALL_BYTES = 64 << 10  # smaller arrays come from malloc, which recycles them by itself
RESERVED_BYTES = 8 << 20  # arrays from this size come out of a reservation when there is one (`reserving`)
_pool: list = []  # flat uint8 buffers
_lock = threading.Lock()
_local = threading.local()  # the calling thread's `_Reservation`, inside `reserving`
MADV_POPULATE_WRITE = 23  # Linux 5.14: map the pages of a range as a write would, without writing
POPULATE_CHUNK = 8 << 20  # bytes per call: the caller's own mmap calls wait for one call at most
HUGE_PAGE = 2 << 20
SLOW_HUGE_S_PER_MB = 0.5e-3  # 2 MiB pages mapping slower than this (backed: 0.13 ms/MB) are left for 4 KiB ones
ALIGN = 64  # bytes: each array handed out of a reservation starts on a cache line


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised array, on pooled memory that no live array uses when there is such memory."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes >= RESERVED_BYTES and getattr(_local, "reservation", None) is not None:
        memory = _local.reservation.take(nbytes)
        if memory is not None:
            return memory.view(dtype).reshape(shape)
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


@contextlib.contextmanager
def reserving(nbytes: int):
    """Inside the block, `empty` hands out arrays of `RESERVED_BYTES` or more from ``nbytes`` of
    memory that a thread of its own allocates and faults in meanwhile (front to back, each array
    aligned to `ALIGN`; arrays that do not fit are allocated as before). Reserve what the
    block's large arrays need: memory handed out stays alive while any of them does.
    Below `RESERVED_BYTES` this does nothing."""
    if nbytes < RESERVED_BYTES or getattr(_local, "reservation", None) is not None:
        yield
        return
    _local.reservation = _Reservation(nbytes)
    try:
        yield
    finally:
        _local.reservation = None


def aligned(nbytes: int) -> int:
    """``nbytes`` rounded up to `ALIGN`: what an array of ``nbytes`` takes of a reservation."""
    return -(-nbytes // ALIGN) * ALIGN


def reservation_for(sizes) -> int:
    """The bytes to reserve (`reserving`) for arrays of ``sizes`` bytes: those of `RESERVED_BYTES` or more."""
    return sum(aligned(n) for n in sizes if n >= RESERVED_BYTES)


class _Reservation:
    """A buffer of ``nbytes`` faulted in on a thread of its own (`reserving`), handed out in order."""

    def __init__(self, nbytes: int):
        self.nbytes, self.used, self.buffer = nbytes, 0, None
        self.thread = threading.Thread(target=self._fault_in, name="spikeport-recording-pages", daemon=True)
        self.thread.start()

    def _fault_in(self) -> None:
        self.buffer = np.asarray(_Mapping(self.nbytes))

    def take(self, nbytes: int):
        """The next ``nbytes`` of the buffer (waiting for its pages), or None when they do not fit."""
        if self.used + nbytes > self.nbytes:
            return None
        self.thread.join()
        start, self.used = self.used, self.used + aligned(nbytes)
        return self.buffer[start:start + nbytes]


class _Mapping:
    """``nbytes`` of anonymous memory with every page mapped, unmapped when the last array on it
    goes (numpy keeps this object as the arrays' base). Elsewhere than Linux: ``np.empty``.

    The pages are mapped ahead (``MADV_POPULATE_WRITE``, one call per `POPULATE_CHUNK`, no
    fault per page) through ctypes, which releases the GIL, so the caller's preparation goes
    on meanwhile. In 2 MiB pages while they come fast, then in 4 KiB pages: in a VM that hands
    freed memory back to its host, 2 MiB pages often come back unbacked (320 MB took 0.25-0.8 s
    to map instead of 0.04 s), while 4 KiB pages took a steady 0.07-0.09 s and cost the
    recording's writes more TLB misses (docs/emulator-paths.md, "The ceiling").
    """

    def __init__(self, nbytes: int):
        self.nbytes, self.address = nbytes + HUGE_PAGE, None
        if _LIBC is not None:
            address = _LIBC.mmap(None, self.nbytes, mmap.PROT_READ | mmap.PROT_WRITE,
                                 mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
            if address not in (None, ctypes.c_void_p(-1).value):  # MAP_FAILED
                self.address = address
        if self.address is None:
            self.fallback = np.empty(nbytes, np.uint8)
            self.__array_interface__ = self.fallback.__array_interface__
            return
        start = -(-self.address // HUGE_PAGE) * HUGE_PAGE  # 2 MiB pages need 2 MiB-aligned ranges
        _populate(start, nbytes)
        self.__array_interface__ = dict(shape=(nbytes,), typestr="|u1", data=(start, False), version=3)

    def __del__(self):
        if self.address is not None:
            _LIBC.munmap(self.address, self.nbytes)


def _populate(start: int, nbytes: int) -> None:
    """Map every page of ``[start, start + nbytes)``: 2 MiB pages until a chunk of them maps
    slower than `SLOW_HUGE_S_PER_MB`, 4 KiB pages from there on."""
    huge = _LIBC.madvise(start, nbytes, mmap.MADV_HUGEPAGE) == 0
    for lo in range(0, nbytes, POPULATE_CHUNK):
        size = min(POPULATE_CHUNK, nbytes - lo)
        began = time.perf_counter()
        _LIBC.madvise(start + lo, size, MADV_POPULATE_WRITE)
        if huge and time.perf_counter() - began > SLOW_HUGE_S_PER_MB * size / 2**20 and lo + size < nbytes:
            huge = False
            _LIBC.madvise(start + lo + size, nbytes - lo - size, mmap.MADV_NOHUGEPAGE)


def _libc():
    """libc's mmap, munmap and madvise through ctypes, or None off Linux (where ``MADV_POPULATE_WRITE``
    is not: a kernel before 5.14 refuses it, and its pages are then faulted by the run as before)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype, libc.mmap.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                                   ctypes.c_int, ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()
