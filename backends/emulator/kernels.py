"""The emulator's compiled kernels (numba): fixed-point LIF blocks, event-driven synapses, whole networks.

Each computes exactly the integers the numpy reference computes, only without
the temporaries and passes of numpy:

* `lif_fixed_block`: k steps of a Lava ``fixed_pt`` LIF population on
  time-major ``(k, B, n)`` float64 input, the rule of `models.fixed_point.lif_fixed_update`
  (the same float64 operations on exact integers) followed by the spike test
  and reset (`backends.emulator.lif.spike_and_reset`). A row runs branch-free
  (the correction of u and the saturation of v as selects) and is redone with
  every rule checked only where a value left int32.
* `event_sums`: a binary synapse's output for rows of source spikes, adding
  the weight row of each spiking source (integers, exact in the accumulator's
  dtype), then Lava's ``weight_exp`` shift (`fx.shift_by_weight_exp`);
* `event_lif_block`: both fused, for a LIF population whose one input is such a
  synapse, in integers (`_add_synapse`, `models.fixed_kernel.lif_int`): each output row is used
  where it is computed, never stored.
* `network_run`: every step of a whole small network in integers
  (`backends.emulator.network`); `models.fixed_kernel.lif_int` is Lava's LIF rule in int32
  with every wrap applied (docs/emulator-paths.md proves it equal).

Which path runs is decided per block from measured activity
(`backends.emulator.nodes`) or per run (`backends.emulator.lif`);
`backends.emulator.paths.forced` pins a path for the tests that hold the
paths bit-identical. This module is imported on first use (numba's import
costs about 0.4 s).
Time: steps t = 1..T; block row i is step ``t0 + i``.

Spike recordings may be packed eight to a byte (`_pack_bits`, `backends.recording.pack_spikes`):
the event and whole-network kernels pack each row where they compute it.

One module of about 560 lines, not split by path: the event, block and whole-network kernels
share their row sums (`_sum_rows`, `_add_wrapped`), copies and recording (`_pack_bits`; `lava_weights`, the
weights' one compiled pass, sits beside `integer_weights`, which it feeds), and numba keys its
disk cache on each function's own file, so a kernel in another file would keep stale code when
a helper here changes (docs/emulator-paths.md, "Compiled once, at install").
"""
from __future__ import annotations

import types

import numba
import numpy as np

from models import fixed_kernel, kernel_cache
from models import fixed_point as fx
from models.fixed_kernel import decay_int, lif_int, wrap32  # noqa: F401  (decay_int: tested here)

_U_MAX, _V_SAT, _SPAN = float(fx.U_MAX), float(fx.V_SAT), float(1 << 24)
_I32_MIN, _I32_MAX, _I32_SPAN = float(fx.INT32_MIN), float(fx.INT32_MAX), float(1 << 32)


@numba.njit(cache=True, nogil=True)
def _wrap_int32(x):
    """`fx.wrap_int32` of one exact integer held in a float64."""
    if x > _I32_MAX or x < _I32_MIN:
        return (x - _I32_MIN) % _I32_SPAN + _I32_MIN
    return x


_inlined = numba.njit(cache=True, nogil=True, inline="always")  # a hot loop's helper, inlined where it is
# called (numba IR): the views a call is handed cost reference counts, more than a short row's arithmetic

THREADS = numba.config.NUMBA_NUM_THREADS  # numba's thread pool (frozen into the compiled event kernel)
EVENT_TILE = 1024  # output columns the event-driven LIF block sums and steps at a time: their sums stay in L1,
# their int8 weights (1,000 sources: 1 MB) in a 2 MB L2 while the block's steps use them (512-KB L2s: no faster at 256-512)
CHUNK = 512  # neurons computed into scratch before they are kept: the scratch stays in L1


def _lif_fixed_block(u, v, a, cur, volt, bias, theta, resets, S, U, V, record_uv):
    """k steps of Lava ``fixed_pt`` LIF, in place.

    ``u``, ``v``: ``(B, n)`` float64 state (exact integers), updated in place to the
    state after the last step. ``a``: ``(k, B, n)`` float64 synaptic input in Lava's
    units (before ``<< 6``), or an array of size 0 for no input. ``cur``, ``volt``:
    the decay numerators over 4096 (``current_factor(du) / 4096``, ``voltage_factor(dv)
    / 4096``); ``bias``: ``(n,)`` effective bias; ``theta``: ``vth << 6``; ``resets``:
    ``(k,)`` bool, LIFReset zeroes u and v at the start of that row's step.
    Writes spikes into ``S`` ``(k, B, n)`` bool and, if ``record_uv``, u and the
    post-reset v into ``U``, ``V`` ``(k, B, n)``. Samples are independent: they run
    in parallel (numba's threads), each its k steps while its state is in cache.
    """
    k, B, n = S.shape
    has_input = a.size > 0
    zeros = np.zeros(n)
    for b in numba.prange(B):
        xs, ys = np.empty(CHUNK), np.empty(CHUNK)
        ub, vb = u[b], v[b]
        for i in range(k):
            if resets[i]:
                ub[:] = 0.0
                vb[:] = 0.0
            _lif_row(ub, vb, a[i, b] if has_input else zeros, cur, volt, bias, theta, S[i, b], xs, ys)
            if record_uv:
                _copy(U[i, b], ub)
                _copy(V[i, b], vb)


def _event_lif_block(src, wt, e, acc, u, v, cur, volt, bias, theta, resets, S, RS, RU, RV, r0, packed):
    """`lif_fixed_block` fed by a binary synapse, event-driven and in exact integers: per
    step and sample the synaptic input is the weight rows of the spiking sources of
    ``src`` ``(k, B, n_in)`` summed in ``acc``'s dtype (`accumulator_dtype`; each thread
    makes its own), shifted by ``e`` (weight_exp) and wrapped (`_add_synapse`), computed
    where it is used; the LIF step is the whole-network loop's (`models.fixed_kernel.lif_int`, int32 state
    copied in from and back into the float64 ``u``, ``v``). ``wt``: ``W.T`` flat (int8..int64);
    ``cur``, ``volt``: the integer decay factors; ``bias`` int32; ``S`` ``(k, B, n)`` bool: the
    block's spikes, or size 0 when nothing reads them; ``RS``, ``RU``, ``RV``: the whole ``(B, T, n)`` recordings of s (int8), u and
    post-reset v (int32), or size 0 (not recorded): block row i goes into ``[:, r0 + i]`` where
    it is computed (while it is in cache, on every thread); ``packed``: ``RS`` is uint8 ``(B, T,
    ceil(n / 8))``, the spikes eight to a byte (`backends.recording.pack_spikes`; `EVENT_TILE` is a
    multiple of 8, so a tile's spikes are whole bytes but for the last); the rest as `lif_fixed_block`."""
    B = u.shape[0]
    parts = min(B, THREADS)  # runs of samples: one per thread (a constant: numba then shares them out)
    for p in numba.prange(parts):
        _event_samples(src, wt, e, acc, u, v, cur, volt, bias, theta, resets, S, RS, RU, RV, r0, packed,
                       p * B // parts, (p + 1) * B // parts)


@numba.njit(cache=True, nogil=True)
def _event_samples(src, wt, e, acc, u, v, cur, volt, bias, theta, resets, S, RS, RU, RV, r0, packed, b_lo, b_hi):
    """Samples ``b_lo .. b_hi-1`` of `_event_lif_block`, one tile of `EVENT_TILE` columns at a
    time: the tile's weights stay in cache through every step of these samples. The scratch
    is made here, once: fresh arrays LLVM knows alias nothing (so the row loops vectorise), and
    few allocations (which threads contend for)."""
    k, n_in, n = src.shape[0], src.shape[2], u.shape[1]
    sent, m = np.empty((b_hi - b_lo, k, n_in), np.int64), np.zeros((b_hi - b_lo, k), np.int64)
    for b in range(b_lo, b_hi):
        _spiking_sources(src, b, sent[b - b_lo], m[b - b_lo])
    width = min(n, EVENT_TILE)
    ub, vb, a = np.empty(width, np.int32), np.empty(width, np.int32), np.empty(width, np.int32)
    acc_t, sb = np.empty(width, acc.dtype), np.empty(width, RS.dtype)  # as the recording RS (int8, or uint8 packed)
    no_v = np.empty(0, np.int32)  # the pre-reset v is not kept
    for lo in range(0, n, EVENT_TILE):
        hi = min(n, lo + EVENT_TILE)
        w = hi - lo
        for b in range(b_lo, b_hi):
            _copy(ub[:w], u[b, lo:hi])
            _copy(vb[:w], v[b, lo:hi])
            for i in range(k):
                if resets[i]:
                    ub[:w] = 0
                    vb[:w] = 0
                _sum_rows(sent[b - b_lo, i, :m[b - b_lo, i]], 0, n_in, wt, n, lo, acc_t[:w])
                spiked = RS[b, r0 + i, lo:hi] if RS.size > 0 and not packed else sb[:w]  # straight into the recording
                if e == 0:  # the sums are the input (lif_int wraps them into int32)
                    lif_int(ub[:w], vb[:w], acc_t[:w], bias[lo:hi], cur, volt, theta, spiked, no_v)
                else:
                    a[:w] = 0
                    _add_wrapped(acc_t[:w], e, a[:w])
                    lif_int(ub[:w], vb[:w], a[:w], bias[lo:hi], cur, volt, theta, spiked, no_v)
                if packed:
                    _pack_bits(spiked, RS[b, r0 + i, lo // 8:lo // 8 + (w + 7) // 8])
                if S.size > 0:
                    _copy(S[i, b, lo:hi], spiked)
                if RU.size > 0:
                    _copy(RU[b, r0 + i, lo:hi], ub[:w])
                if RV.size > 0:
                    _copy(RV[b, r0 + i, lo:hi], vb[:w])
            _copy(u[b, lo:hi], ub[:w])
            _copy(v[b, lo:hi], vb[:w])


@numba.njit(cache=True, nogil=True)
def _spiking_sources(src, b, sent, m):
    """Sample b's spiking sources at each row of ``src`` ``(k, B, n_in)`` into ``sent[i, :m[i]]``, ascending."""
    for i in range(src.shape[0]):
        k = 0  # branch-free, as in `_network_run`
        for j in range(src.shape[2]):
            sent[i, k] = j
            k += src[i, b, j]
        m[i] = k


def _network_run(spikes_in, b_lo, b_hi, synapses, weights, acc_like, pops, bias, u0, v0, S, U, V, packed):
    """Samples ``b_lo..b_hi-1``: every step t = 1..T of a whole network, in exact integers
    (`backends.emulator.network.CompiledNetwork`).

    ``spikes_in`` ``(B, T, N_in)`` bool: what the Inputs send at steps 1..T. Sources are
    numbered N_in input channels first, then the neurons of every population.
    ``synapses`` rows ``(source lo, hi, target lo, hi among neurons, offset of W.T in
    weights, weight_exp)``; ``weights`` the integer ``W.T`` of every synapse, flat;
    ``acc_like`` a ``(neurons,)`` array of the accumulator dtype (int32 or int64: every
    partial sum exact). ``pops`` rows ``(lo, hi, reset interval, reset offset, current
    factor, voltage factor, vth << 6, offset of s, u, v in S, U, V or -1: not recorded)``
    (interval 0: plain LIF); ``bias``, ``u0``, ``v0`` int32 per neuron. A population of n
    neurons records sample b, step t (1-based), neuron j at ``off + ((b * T) + t - 1) * n + j``
    of the flat ``S`` (int8), ``U``, ``V`` (int32): its ``(B, T, n)`` array, contiguous; ``packed``:
    ``S`` is uint8, each population's spikes ``(B, T, ceil(n / 8))`` eight to a byte (`_pack_bits`).

    The synaptic input ``a`` of a neuron is summed in int32, wrapping: the sum enters only
    as ``wrap32(a << 6)``, which depends on ``a`` modulo 2**26 alone, so the wrapped sum
    gives the integers of the exact one.
    """
    T = spikes_in.shape[1]
    n_in, n = spikes_in.shape[2], bias.shape[0]
    for b in numba.prange(b_lo, b_hi):
        u, v = u0.copy(), v0.copy()
        a, acc, spiked = np.empty(n, np.int32), np.empty_like(acc_like), np.zeros(n, np.bool_)
        no_v = np.empty(0, np.int32)  # the pre-reset v is not kept
        sent, m = np.empty(n_in + n, np.int64), 0  # the sources that spiked at the previous step
        for t in range(1, T + 1):
            a[:] = 0
            for q in range(synapses.shape[0]):
                slo, shi, dlo, dhi, off, e = synapses[q]
                width = dhi - dlo
                _add_synapse(sent[:m], slo, shi, weights[off:off + (shi - slo) * width], width, 0, e, acc[:width],
                             a[dlo:dhi])
            for p in range(pops.shape[0]):
                lo, hi, interval, offset, cur, volt, theta = pops[p, :7]
                if interval > 0 and t % interval == offset % interval:  # LIFReset: zeroed at the start of step t
                    u[lo:hi] = 0
                    v[lo:hi] = 0
                lif_int(u[lo:hi], v[lo:hi], a[lo:hi], bias[lo:hi], np.int32(cur), np.int32(volt), theta,
                        spiked[lo:hi], no_v)
                _record(pops[p, 7:], (b * T) + t - 1, spiked[lo:hi], u[lo:hi], v[lo:hi], S, U, V, packed)
            m = 0  # listed branch-free: every index written, the end advanced by the spike (no mispredicted branch)
            sending = spikes_in[b, t - 1]
            for j in range(n_in):
                sent[m] = j
                m += sending[j]
            for j in range(n):
                sent[m] = n_in + j
                m += spiked[j]


@_inlined
def _add_synapse(sent, slo, shi, wt, row_width, col_lo, e, acc, a):
    """``a += wrap32(shift(sum of W.T rows of the spiking sources))`` for the output columns
    ``col_lo .. col_lo + len(acc) - 1`` of one synapse (`fx.shift_by_weight_exp`: ``<< e``, or
    ``>> -e`` flooring, then the int32 wrap); arguments as `_sum_rows`, ``a`` those columns'
    input (int32, wrapping)."""
    _sum_rows(sent, slo, shi, wt, row_width, col_lo, acc)
    _add_wrapped(acc, e, a)


@_inlined
def _sum_rows(sent, slo, shi, wt, row_width, col_lo, acc):
    """``acc = sum of W.T rows of the spiking sources`` for the output columns ``col_lo ..
    col_lo + len(acc) - 1``. ``sent``: the sources that spiked (ascending); ``wt``: ``W.T`` flat,
    row j (``row_width`` weights) those of source ``slo + j``; ``acc``: exact for the sums. The
    rows are added eight at a time, then four, then one (a pass over ``acc`` per group)."""
    width = acc.shape[0]
    acc[:] = 0
    k = 0  # sources slo..shi-1 are one run of sent: sent[k:end]
    while k < sent.shape[0] and sent[k] < slo:
        k += 1
    end = k
    while end < sent.shape[0] and sent[end] < shi:
        end += 1
    while k + 8 <= end:
        _add_rows8(acc, _row(wt, sent[k] - slo, row_width, col_lo, width),
                   _row(wt, sent[k + 1] - slo, row_width, col_lo, width),
                   _row(wt, sent[k + 2] - slo, row_width, col_lo, width),
                   _row(wt, sent[k + 3] - slo, row_width, col_lo, width),
                   _row(wt, sent[k + 4] - slo, row_width, col_lo, width),
                   _row(wt, sent[k + 5] - slo, row_width, col_lo, width),
                   _row(wt, sent[k + 6] - slo, row_width, col_lo, width),
                   _row(wt, sent[k + 7] - slo, row_width, col_lo, width))
        k += 8
    while k + 4 <= end:
        _add_rows4(acc, _row(wt, sent[k] - slo, row_width, col_lo, width), _row(wt, sent[k + 1] - slo, row_width,
                   col_lo, width), _row(wt, sent[k + 2] - slo, row_width, col_lo, width),
                   _row(wt, sent[k + 3] - slo, row_width, col_lo, width))
        k += 4
    for q in range(k, end):
        _add_row(acc, _row(wt, sent[q] - slo, row_width, col_lo, width))


@_inlined
def _add_wrapped(acc, e, a):
    """``a += wrap32(shift(acc))`` (`fx.shift_by_weight_exp`); ``e = 0`` adds ``acc`` as it is."""
    if e == 0:
        for o in range(acc.shape[0]):
            a[o] += acc[o]
    else:
        for o in range(acc.shape[0]):
            y = np.int64(acc[o])
            a[o] += wrap32(y << e if e >= 0 else y >> -e)


@numba.njit(cache=True, nogil=True, inline="always")
def _row(wt, j, row_width, col_lo, width):
    """Columns ``col_lo .. col_lo + width - 1`` of row j of the flat ``W.T``."""
    start = j * row_width + col_lo
    return wt[start:start + width]


@_inlined
def _add_row(acc, w):
    """``acc += w`` (a loop over two views: LLVM vectorises it, widening narrow weights)."""
    for o in range(acc.shape[0]):
        acc[o] += w[o]


@_inlined
def _add_rows8(acc, w0, w1, w2, w3, w4, w5, w6, w7):
    """``acc += w0 + ... + w7``: exact in acc's dtype, which holds every partial sum."""
    for o in range(acc.shape[0]):
        acc[o] += ((w0[o] + w1[o]) + (w2[o] + w3[o])) + ((w4[o] + w5[o]) + (w6[o] + w7[o]))


@_inlined
def _add_rows4(acc, w0, w1, w2, w3):
    """``acc += w0 + w1 + w2 + w3``: exact in acc's dtype, which holds every partial sum."""
    for o in range(acc.shape[0]):
        acc[o] += (w0[o] + w1[o]) + (w2[o] + w3[o])


@_inlined
def _record(offsets, row, spiked, u, v, S, U, V, packed):
    """Row ``row`` (sample b, step t: ``b * T + t - 1``) of a population's s, u, v into the flat
    recordings whose offset is not -1 (s eight to a byte when ``packed``)."""
    width = spiked.shape[0]
    at = row * width
    if offsets[0] >= 0 and packed:
        nb = (width + 7) // 8
        _pack_bits(spiked, S[offsets[0] + row * nb:offsets[0] + (row + 1) * nb])
    elif offsets[0] >= 0:
        _copy(S[offsets[0] + at:offsets[0] + at + width], spiked)
    if offsets[1] >= 0:
        _copy(U[offsets[1] + at:offsets[1] + at + width], u)
    if offsets[2] >= 0:
        _copy(V[offsets[2] + at:offsets[2] + at + width], v)


@_inlined
def _pack_bits(bits, out):
    """``out[q] = sum of bits[8q + i] << i``: 0/1 ``bits`` packed eight to a byte, least significant
    first (`backends.recording.pack_spikes`). Eight bits at a time: their bytes as one uint64 (LLVM
    reads them with one load), times a constant that gathers each byte's low bit into the top byte
    (no two partial products meet there)."""
    whole = bits.shape[0] // 8
    for q in range(whole):
        word = np.uint64(0)
        for i in range(8):
            word |= np.uint64(bits[8 * q + i]) << np.uint64(8 * i)
        out[q] = (word * np.uint64(0x0102040810204080)) >> np.uint64(56)
    if out.shape[0] > whole:
        byte = 0
        for j in range(8 * whole, bits.shape[0]):
            byte |= np.int64(bits[j]) << (j - 8 * whole)
        out[whole] = byte


@_inlined
def _copy(dst, src):
    """``dst[:] = src`` (casting) as a loop: numba's slice assignment checks whether the two
    overlap and copies through a temporary, which costs more than a short row itself."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


def _serial_and_parallel(py_func):
    """(serial, parallel) compilations of a kernel whose sample loop is a ``prange``.

    numba names a function's on-disk cache after its module and ``__qualname__`` only, not its
    flags: two dispatchers of one function share one cache, and each loads what the other
    stored (the parallel one then ran the serial code, after `make install`'s warm-up, at
    half the speed). The parallel one compiles a copy named ``<name>_parallel``."""
    twin = types.FunctionType(py_func.__code__, py_func.__globals__, py_func.__name__ + "_parallel",
                              py_func.__defaults__, py_func.__closure__)
    twin.__qualname__, twin.__doc__ = py_func.__qualname__ + "_parallel", py_func.__doc__
    return (numba.njit(cache=True, nogil=True)(py_func),
            numba.njit(cache=True, nogil=True, parallel=True)(twin))


PARALLEL_WORK = 1 << 17  # neuron-steps per call from which numba's threads share the samples (~0.1 ms of work)
_LIF_BLOCK, _EVENT_LIF_BLOCK = _serial_and_parallel(_lif_fixed_block), _serial_and_parallel(_event_lif_block)
_NETWORK_RUN = _serial_and_parallel(_network_run)


def network_run(spikes_in, b_lo, b_hi, *args):
    """`_network_run`, on numba's threads when its samples have `PARALLEL_WORK` neuron-steps."""
    neurons = args[4].shape[0]  # bias
    work = (b_hi - b_lo) * spikes_in.shape[1] * neurons
    _NETWORK_RUN[work >= PARALLEL_WORK and b_hi - b_lo > 1](spikes_in, b_lo, b_hi, *args)


def lif_fixed_block(u, v, a, *args):
    """`_lif_fixed_block`, on numba's threads when the block has `PARALLEL_WORK` neuron-steps."""
    S = args[5]
    _LIF_BLOCK[S.size >= PARALLEL_WORK and S.shape[1] > 1](u, v, a, *args)


def event_lif_block(src, wt, weight_exp, acc, u, v, cur, volt, bias, theta, resets, S, RS, RU, RV, r0, packed):
    """`_event_lif_block`, on numba's threads when the block has `PARALLEL_WORK` neuron-steps."""
    work = src.shape[0] * u.size  # neuron-steps
    _EVENT_LIF_BLOCK[work >= PARALLEL_WORK and u.shape[0] > 1](
        src, wt.reshape(-1), weight_exp, acc, u, v, np.int32(cur), np.int32(volt), bias, int(theta), resets, S,
        RS, RU, RV, r0, bool(packed))


@numba.njit(cache=True, nogil=True)
def event_sums(src, wt, acc, scale, floor_it, may_wrap, out):
    """``out[r] = shift(sum of wt[j] over the j with src[r, j])`` for each row r.

    ``src``: ``(R, n_in)`` bool spikes; ``wt``: ``(n_in, n_out)`` integer weights
    (``W.T``); ``acc``: ``(n_out,)`` integer scratch whose dtype holds every partial
    sum exactly (`accumulator_dtype`); the shift is ``* scale`` (``2**weight_exp``),
    floored when ``floor_it`` (a negative exponent), then wrapped into int32 when
    ``may_wrap``: `fx.shift_by_weight_exp`. ``out``: ``(R, n_out)`` float64.
    """
    for r in range(src.shape[0]):
        _event_row(src[r], wt, acc, scale, floor_it, may_wrap, out[r])


@numba.njit(cache=True, nogil=True)
def _event_row(spikes, wt, acc, scale, floor_it, may_wrap, out):
    """One output row of `event_sums`: the weight rows of the spiking sources, summed, shifted."""
    _accumulate_row(spikes, wt, acc)
    out[:] = 0.0
    _add_shifted(acc, scale, floor_it, may_wrap, out)


@numba.njit(cache=True, nogil=True)
def _accumulate_row(spikes, wt, acc):
    """``acc = sum of wt[j] over the j with spikes[j]`` (integers: exact in acc's dtype)."""
    acc[:] = 0
    for j in range(spikes.shape[0]):
        if spikes[j]:
            w = wt[j]
            for o in range(acc.shape[0]):
                acc[o] += w[o]


@numba.njit(cache=True, nogil=True)
def _add_shifted(acc, scale, floor_it, may_wrap, out):
    """``out += shift(acc)``: `fx.shift_by_weight_exp` of the summed products (``* scale``,
    floored when ``floor_it``, wrapped into int32 when ``may_wrap``)."""
    for o in range(acc.shape[0]):
        y = acc[o] * scale
        if floor_it:
            y = np.floor(y)
        if may_wrap:
            y = _wrap_int32(y)
        out[o] += y


@numba.njit(cache=True, nogil=True)
def _lif_row(ub, vb, ab, cur, volt, bias, theta, sb, xs, ys):
    """One sample's step of `lif_fixed_block` (``ub``, ``vb`` in place; ``xs``, ``ys``
    scratch of `CHUNK` values).

    Each chunk of neurons is computed first without the int32 wraps, which change
    nothing while no pre-wrap value leaves int32 (the correction of u and the
    saturation of v as selects); a chunk where one does is computed again from its
    old state with every rule.
    """
    n = ub.shape[0]
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        out_of_int32 = False
        for j in range(lo, hi):
            scaled = ab[j] * 64.0
            x = np.trunc(ub[j] * cur) + scaled
            x2 = x - _SPAN * (x > _U_MAX) + _SPAN * (x <= -_U_MAX)
            y = np.trunc(vb[j] * volt) + x2 + bias[j]
            out_of_int32 |= (abs(scaled) > _I32_MAX) | (abs(x) > _I32_MAX) | (abs(y) > _I32_MAX)
            y = min(max(y, -_V_SAT), _V_SAT)
            s = y > theta
            xs[j - lo], ys[j - lo], sb[j] = x2, 0.0 if s else y, s
        if out_of_int32:
            _lif_all_rules(ub[lo:hi], vb[lo:hi], ab[lo:hi], cur, volt, bias[lo:hi], theta, sb[lo:hi])
        else:
            _copy(ub[lo:hi], xs[:hi - lo])
            _copy(vb[lo:hi], ys[:hi - lo])


@numba.njit(cache=True, nogil=True)
def _lif_all_rules(ub, vb, ab, cur, volt, bias, theta, sb):
    """`_lif_row` with every rule of `fx.lif_fixed_update` checked, in place."""
    for j in range(len(ub)):
        x = np.trunc(ub[j] * cur) + _wrap_int32(ab[j] * 64.0)
        x = _wrap_int32(x)
        x = x - _SPAN * (x > _U_MAX) + _SPAN * (x <= -_U_MAX)
        y = _wrap_int32(np.trunc(vb[j] * volt) + x + bias[j])
        y = min(max(y, -_V_SAT), _V_SAT)
        s = y > theta
        ub[j], vb[j], sb[j] = x, 0.0 if s else y, s


@numba.njit(cache=True, nogil=True)
def spike_counts(src):
    """(spikes in all, most spikes in one row) of ``src`` ``(R, n)`` bool, in one pass."""
    total = most = 0
    for r in range(src.shape[0]):
        m = 0
        for j in range(src.shape[1]):
            m += src[r, j]
        total += m
        most = max(most, m)
    return total, most


def lava_weights(w: np.ndarray, num_weight_bits: int, sign_mode) -> np.ndarray:
    """The weights Lava's fixed Dense uses (`fx.lava_weights` of ``w`` stored as int32), for
    integer ``w`` ``(n_out, n_in)``: in one compiled pass, laid out as ``W.T`` (``out.T`` is
    C-contiguous: the rows of the sources the event path adds) and in the narrowest of
    int8/int16 that holds them (every Lava weight lies within +-256). ``sign_mode`` None
    (or 0, NULL): inferred from the stored weights, as Lava does."""
    if sign_mode:
        mode = fx.SignMode(sign_mode)
    else:
        mode = fx.infer_sign_mode(w.astype(np.int32))
    lo, hi = fx.weight_clip_range(mode)
    sign = -1 if mode == fx.SignMode.INHIBITORY else 1
    wt = np.empty(w.shape[::-1], np.int16)
    _LAVA_WEIGHTS_INTO[w.size >= PARALLEL_WORK](w, lo, hi, fx.dropped_lsbs(num_weight_bits, mode), sign, wt)
    if fx.max_abs(wt) <= np.iinfo(np.int8).max:
        wt = wt.astype(np.int8)
    return wt.T


def _lava_weights_into(w, lo, hi, lsbs, sign, out):
    """``out[:] = fixed_kernel.lava_weight(w).T``, in tiles of 64 rows of ``w`` (shared out among
    numba's threads): each output row's stretch is written contiguously while the tile's rows of
    ``w`` stay in cache."""
    rows, cols = w.shape
    for tile in numba.prange(-(-rows // 64)):
        i0 = 64 * tile
        for j in range(cols):
            for i in range(i0, min(rows, i0 + 64)):
                out[j, i] = fixed_kernel.lava_weight(w[i, j], lo, hi, lsbs, sign)


_LAVA_WEIGHTS_INTO = _serial_and_parallel(_lava_weights_into)


def integer_weights(wt: np.ndarray) -> np.ndarray:
    """``wt`` (exact integers) in the smallest integer dtype that holds it, for `event_sums`."""
    max_w = fx.max_abs(wt)
    wdtype = next(d for d in (np.int8, np.int16, np.int32, np.int64) if max_w <= np.iinfo(d).max)
    if not wt.flags.c_contiguous and wt.T.flags.c_contiguous:  # W.T as a view of W (numpy's strided cast is slow)
        out = np.empty(wt.shape, wdtype)
        _transpose_into(wt.T, out)
        return out
    return np.ascontiguousarray(wt, wdtype)


@numba.njit(cache=True, nogil=True)
def _transpose_into(w, out):
    """``out[:] = w.T`` (exact integers, cast), in 64 x 64 tiles: both sides stay in cache."""
    rows, cols = w.shape
    for i0 in range(0, rows, 64):
        for j0 in range(0, cols, 64):
            for i in range(i0, min(rows, i0 + 64)):
                for j in range(j0, min(cols, j0 + 64)):
                    out[j, i] = w[i, j]


def accumulator_dtype(max_w: float, most_spikes: int):
    """The narrowest integer dtype that holds every partial sum of up to ``most_spikes``
    weights of magnitude <= ``max_w`` exactly (int16 adds twice as many lanes as int32)."""
    bound = max_w * most_spikes
    return next(d for d in (np.int16, np.int32, np.int64) if bound <= np.iinfo(d).max)


kernel_cache.depend_on(globals(), fixed_kernel.__file__, fx.__file__)  # lif_int is inlined, fx's constants compiled in
