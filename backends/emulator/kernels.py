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
  dtype), then Lava's ``weight_exp`` shift (`fx.shift_by_weight_exp`).

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

@numba.njit(cache=True, nogil=True, inline="always")
def _wrap_int32(x):
    """`fx.wrap_int32` of one exact integer held in a float64."""
    if x > _I32_MAX or x < _I32_MIN:
        return (x - _I32_MIN) % _I32_SPAN + _I32_MIN
    return x


@numba.njit(cache=True, nogil=True)
def lif_fixed_block(u, v, a, cur, volt, bias, theta, resets, S, U, V, record_uv):
    """k steps of Lava ``fixed_pt`` LIF, in place.

    ``u``, ``v``: ``(B, n)`` float64 state (exact integers), updated in place to the
    state after the last step. ``a``: ``(k, B, n)`` float64 synaptic input in Lava's
    units (before ``<< 6``), or an array of size 0 for no input. ``cur``, ``volt``:
    the decay numerators over 4096 (``current_factor(du) / 4096``, ``voltage_factor(dv)
    / 4096``); ``bias``: ``(n,)`` effective bias; ``theta``: ``vth << 6``; ``resets``:
    ``(k,)`` bool, LIFReset zeroes u and v at the start of that row's step.
    Writes spikes into ``S`` ``(k, B, n)`` bool and, if ``record_uv``, u and the
    post-reset v into ``U``, ``V`` ``(k, B, n)``.

    Each row (one sample, one step) is first computed without the int32 wraps, which
    change nothing while no pre-wrap value leaves int32; a row where one does is
    computed again from its old state with every rule (`_lif_row_all_rules`).
    """
    k, B, n = S.shape
    has_input = a.size > 0
    xs, ys = np.empty(n), np.empty(n)
    zeros = np.zeros(n)
    for i in range(k):
        if resets[i]:
            u[:] = 0.0
            v[:] = 0.0
        for b in range(B):
            ub, vb, sb = u[b], v[b], S[i, b]
            ab = a[i, b] if has_input else zeros
            out_of_int32 = False
            for j in range(n):
                scaled = ab[j] * 64.0
                x = np.trunc(ub[j] * cur) + scaled
                x2 = x - _SPAN * (x > _U_MAX) + _SPAN * (x <= -_U_MAX)
                y = np.trunc(vb[j] * volt) + x2 + bias[j]
                out_of_int32 |= (abs(scaled) > _I32_MAX) | (abs(x) > _I32_MAX) | (abs(y) > _I32_MAX)
                y = min(max(y, -_V_SAT), _V_SAT)
                s = y > theta
                xs[j], ys[j], sb[j] = x2, 0.0 if s else y, s
            if out_of_int32:
                _lif_row_all_rules(ub, vb, ab, cur, volt, bias, theta, sb)
            else:
                ub[:] = xs
                vb[:] = ys
            if record_uv:
                U[i, b] = ub
                V[i, b] = vb


@numba.njit(cache=True, nogil=True)
def _lif_row_all_rules(ub, vb, ab, cur, volt, bias, theta, sb):
    """One row of `lif_fixed_block` with every rule of `fx.lif_fixed_update` checked, in place."""
    for j in range(len(ub)):
        x = np.trunc(ub[j] * cur) + _wrap_int32(ab[j] * 64.0)
        x = _wrap_int32(x)
        x = x - _SPAN * (x > _U_MAX) + _SPAN * (x <= -_U_MAX)
        y = _wrap_int32(np.trunc(vb[j] * volt) + x + bias[j])
        y = min(max(y, -_V_SAT), _V_SAT)
        s = y > theta
        ub[j], vb[j], sb[j] = x, 0.0 if s else y, s


@numba.njit(cache=True, nogil=True)
def event_sums(src, wt, acc, scale, floor_it, may_wrap, out):
    """``out[r] = shift(sum of wt[j] over the j with src[r, j])`` for each row r.

    ``src``: ``(R, n_in)`` bool spikes; ``wt``: ``(n_in, n_out)`` integer weights
    (``W.T``); ``acc``: ``(n_out,)`` integer scratch whose dtype holds every partial
    sum exactly; the shift is ``* scale`` (``2**weight_exp``), floored when
    ``floor_it`` (a negative exponent), then wrapped into int32 when ``may_wrap``:
    `fx.shift_by_weight_exp`. ``out``: ``(R, n_out)`` float64.
    """
    rows, n_in = src.shape
    n_out = wt.shape[1]
    for r in range(rows):
        acc[:] = 0
        for j in range(n_in):
            if src[r, j]:
                w = wt[j]
                for o in range(n_out):
                    acc[o] += w[o]
        o_r = out[r]
        for o in range(n_out):
            y = acc[o] * scale
            if floor_it:
                y = np.floor(y)
            if may_wrap:
                y = _wrap_int32(y)
            o_r[o] = y


def integer_weights(wt: np.ndarray, fan_in: int):
    """(``wt`` in the smallest integer dtype that holds it, the accumulator dtype in which
    every partial sum of up to ``fan_in`` terms is exact), for `event_sums`."""
    max_w = fx.max_abs(wt)
    wdtype = next(d for d in (np.int8, np.int16, np.int32, np.int64) if max_w <= np.iinfo(d).max)
    acc = np.int32 if max_w * fan_in <= fx.INT32_MAX else np.int64
    return np.ascontiguousarray(wt.astype(wdtype)), acc
