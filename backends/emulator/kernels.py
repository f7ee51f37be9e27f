"""The emulator's compiled kernels (numba): a fused fixed-point LIF block and event-driven synapses.

Both compute exactly what the numpy reference computes (the same float64
operations on exact integers, in the same order where order matters), only
without the temporaries and passes of numpy:

* `lif_fixed_block`: k steps of a Lava ``fixed_pt`` LIF population on
  time-major ``(k, B, n)`` input, the rule of `models.fixed_point.lif_fixed_update`
  followed by the spike test and reset (`backends.emulator.lif.spike_and_reset`).
  A row runs branch-free (the correction of u and the saturation of v as
  selects) and is redone with every rule checked only where a value left int32.
* `event_sums`: a binary synapse's output for rows of source spikes, adding
  the weight row of each spiking source (integers, exact in the accumulator's
  dtype), then Lava's ``weight_exp`` shift (`fx.shift_by_weight_exp`);
* `event_lif_block`: both fused, for a LIF population whose one input is such a
  synapse: each output row is used where it is computed, never stored.

Which path runs is decided per block from measured activity
(`backends.emulator.nodes`) or per run (`backends.emulator.lif`);
`backends.emulator.paths.forced` pins a path for the tests that hold the
paths bit-identical. This module is imported on first use (numba's import
costs about 0.4 s).
Time: steps t = 1..T; block row i is step ``t0 + i``.
"""
from __future__ import annotations

import numba
import numpy as np

from models import fixed_point as fx

_U_MAX, _V_SAT, _SPAN = float(fx.U_MAX), float(fx.V_SAT), float(1 << 24)
_I32_MIN, _I32_MAX, _I32_SPAN = float(fx.INT32_MIN), float(fx.INT32_MAX), float(1 << 32)


@numba.njit(cache=True, nogil=True)
def _wrap_int32(x):
    """`fx.wrap_int32` of one exact integer held in a float64."""
    if x > _I32_MAX or x < _I32_MIN:
        return (x - _I32_MIN) % _I32_SPAN + _I32_MIN
    return x


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


def _event_lif_block(src, wt, acc, scale, floor_it, may_wrap, u, v, cur, volt, bias, theta, resets, S, U, V,
                    record_uv):
    """`lif_fixed_block` fed by a binary synapse, event-driven: per step and sample the
    synaptic input is `event_sums`' row (the weight rows of the spiking sources, shifted)
    for the source spikes ``src`` ``(k, B, n_in)``, computed where it is used (``acc``:
    an accumulator of the dtype `accumulator_dtype` chooses; each thread makes its own)."""
    k, B, n = S.shape
    for b in numba.prange(B):
        xs, ys, a, acc_b = np.empty(CHUNK), np.empty(CHUNK), np.empty(n), np.empty_like(acc)
        ub, vb = u[b], v[b]
        for i in range(k):
            if resets[i]:
                ub[:] = 0.0
                vb[:] = 0.0
            _event_row(src[i, b], wt, acc_b, scale, floor_it, may_wrap, a)
            _lif_row(ub, vb, a, cur, volt, bias, theta, S[i, b], xs, ys)
            if record_uv:
                _copy(U[i, b], ub)
                _copy(V[i, b], vb)


def _network_run(spikes_in, synapses, weights, scale, floor_it, may_wrap, pops, decays, bias, u0, v0, S, U, V,
                 record_uv):
    """Every sample's T steps of a whole network (`backends.emulator.network.CompiledNetwork`).

    ``spikes_in`` ``(B, T, N_in)`` bool: what the Inputs send at steps 1..T. The spike
    vector of a step holds the N_in input channels, then the neurons of every
    population. ``synapses`` rows ``(source lo, hi in the spike vector, target lo, hi
    among neurons, offset of W.T in weights)``, ``weights`` (int32 or int64: the dtype of
    the sums, exact), and per synapse
    ``scale`` (2**weight_exp), ``floor_it``, ``may_wrap`` (`event_sums`). ``pops`` rows
    ``(lo, hi, reset interval, reset offset)`` (interval 0: plain LIF), ``decays`` rows
    ``(cur, volt, theta)`` (`lif_fixed_block`); ``bias``, ``u0``, ``v0`` per neuron.
    Writes spikes ``S`` ``(B, T, N)`` and, if ``record_uv``, ``U``, ``V``.
    """
    B, T, n_in = spikes_in.shape
    n = bias.shape[0]
    for b in numba.prange(B):
        u, v = u0.copy(), v0.copy()
        sent, a, acc = np.zeros(n_in + n, np.bool_), np.empty(n), np.empty(n, weights.dtype)
        s_row, xs, ys = np.zeros(n, np.bool_), np.empty(CHUNK), np.empty(CHUNK)
        for t in range(1, T + 1):
            a[:] = 0.0
            for q in range(synapses.shape[0]):
                slo, shi, dlo, dhi, off = synapses[q]
                wt = weights[off:off + (shi - slo) * (dhi - dlo)].reshape(shi - slo, dhi - dlo)
                _accumulate_row(sent[slo:shi], wt, acc[dlo:dhi])
                _add_shifted(acc[dlo:dhi], scale[q], floor_it[q], may_wrap[q], a[dlo:dhi])
            for p in range(pops.shape[0]):
                lo, hi, interval, offset = pops[p]
                if interval > 0 and t % interval == offset % interval:
                    u[lo:hi] = 0.0
                    v[lo:hi] = 0.0
                _lif_row(u[lo:hi], v[lo:hi], a[lo:hi], decays[p, 0], decays[p, 1], bias[lo:hi], decays[p, 2],
                         s_row[lo:hi], xs, ys)
            _copy(S[b, t - 1], s_row)
            if record_uv:
                _copy(U[b, t - 1], u)
                _copy(V[b, t - 1], v)
            _copy(sent[:n_in], spikes_in[b, t - 1])
            _copy(sent[n_in:], s_row)


@numba.njit(cache=True, nogil=True)
def _copy(dst, src):
    """``dst[:] = src`` (casting) as a loop: numba's slice assignment checks whether the two
    overlap and copies through a temporary, which costs more than a short row itself."""
    for j in range(dst.shape[0]):
        dst[j] = src[j]


def _serial_and_parallel(py_func):
    """(serial, parallel) compilations of a kernel whose sample loop is a ``prange``."""
    return (numba.njit(cache=True, nogil=True)(py_func),
            numba.njit(cache=True, nogil=True, parallel=True)(py_func))


PARALLEL_WORK = 1 << 17  # neuron-steps per call from which numba's threads share the samples (~0.1 ms of work)
_LIF_BLOCK, _EVENT_LIF_BLOCK = _serial_and_parallel(_lif_fixed_block), _serial_and_parallel(_event_lif_block)
_NETWORK_RUN = _serial_and_parallel(_network_run)


def network_run(spikes_in, *args):
    """`_network_run`, on numba's threads when the run has `PARALLEL_WORK` neuron-steps."""
    S = args[10]
    _NETWORK_RUN[S.size >= PARALLEL_WORK and S.shape[0] > 1](spikes_in, *args)


def lif_fixed_block(u, v, a, *args):
    """`_lif_fixed_block`, on numba's threads when the block has `PARALLEL_WORK` neuron-steps."""
    S = args[5]
    _LIF_BLOCK[S.size >= PARALLEL_WORK and S.shape[1] > 1](u, v, a, *args)


def event_lif_block(src, *args):
    """`_event_lif_block`, on numba's threads when the block has `PARALLEL_WORK` neuron-steps."""
    S = args[12]
    _EVENT_LIF_BLOCK[S.size >= PARALLEL_WORK and S.shape[1] > 1](src, *args)


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


def integer_weights(wt: np.ndarray) -> np.ndarray:
    """``wt`` (exact integers) in the smallest integer dtype that holds it, for `event_sums`."""
    max_w = fx.max_abs(wt)
    wdtype = next(d for d in (np.int8, np.int16, np.int32, np.int64) if max_w <= np.iinfo(d).max)
    return np.ascontiguousarray(wt.astype(wdtype))


def accumulator_dtype(max_w: float, most_spikes: int):
    """The narrowest integer dtype that holds every partial sum of up to ``most_spikes``
    weights of magnitude <= ``max_w`` exactly (int16 adds twice as many lanes as int32)."""
    bound = max_w * most_spikes
    return next(d for d in (np.int16, np.int32, np.int64) if bound <= np.iinfo(d).max)
