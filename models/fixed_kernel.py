"""Lava's ``fixed_pt`` LIF step in integers, as numba functions: one definition for the
emulator's compiled loops (`backends.emulator.kernels`) and the training scan's fixed
forward (`models.lif_kernel`).

The rules are `models.fixed_point`'s (docs/fixed-point.md), every one applied every step
(each is the identity where it cannot fire); docs/emulator-paths.md proves the integer
decay equal to the float64 rule and why an input summed in int32 with wrapping gives
the same integers. Time: one call is one step t; ``a`` is the input delivered at t.
"""
from __future__ import annotations

import numba
import numpy as np

from models import fixed_point as fx
from models import kernel_cache

_U_MAX, _V_SAT, _SPAN = np.int32(fx.U_MAX), np.int32(fx.V_SAT), np.int32(1 << 24)
_I32 = np.int32


@numba.njit(cache=True, nogil=True)
def wrap32(x):
    """`fx.wrap_int32` of an int64: two's-complement truncation to int32."""
    return np.int64(np.int32(x))


@numba.njit(cache=True, nogil=True, inline="always")
def decay_int(x, factor):
    """`fx.decay` of an int32 ``x`` with a decay factor 0..4096 (Lava's), as int32:
    ``trunc(x * (factor / 4096))`` in float64, Lava's own rule. ``factor / 4096`` is dyadic
    and ``|x * factor| <= 2**43 < 2**53``, so the product is exact and the conversion to
    int32 (which truncates toward zero, and fits: the result is at most ``|x|``) rounds the
    exact quotient toward zero, as Lava's ``sign(x*f) * (|x*f| >> 12)`` does. On AVX2 this
    is 4 float64 lanes converted in and out, cheaper than 64-bit integer products (which
    AVX2 lacks) or an int32 split of the product."""
    return _I32(x * (factor / 4096.0))


@numba.njit(cache=True, nogil=True, inline="always")
def lava_weight(w, lo, hi, lsbs, sign):
    """`fx.lava_weights` of one stored weight, as int32: ``w`` wrapped into int32 (Lava stores
    int32), clipped to the sign mode's ``[lo, hi]`` (`fx.weight_clip_range`), then ``lsbs``
    LSBs floored away (`fx.dropped_lsbs`) of ``sign * w``: ``sign`` is -1 for INHIBITORY
    (Lava floors the magnitude), else 1. An arithmetic right shift floors, as
    ``floor(w / 2**lsbs)`` does; branch-free, so a loop over weights vectorises."""
    x = _I32(min(max(_I32(w), _I32(lo)), _I32(hi)) * _I32(sign))
    return _I32(_I32(_I32(x >> _I32(lsbs)) << _I32(lsbs)) * _I32(sign))


@numba.njit(cache=True, nogil=True, inline="always")  # inlined into each loop: no reference counts on its views
def lif_int(u, v, a, bias, cur, volt, theta, spiked, v_pre):
    """One step of a LIF population, every rule of `fx.lif_fixed_update` in int32, in place:
    ``a << 6`` and the current sum wrapped into int32, the single +-2**24 correction of u,
    the voltage sum wrapped, v saturated at +-(2**23 - 1); then a spike when v > ``theta``
    (vth << 6), v = 0 after it. ``u``, ``v``, ``bias`` int32, ``a`` the synaptic input in
    Lava's units (before ``<< 6``; an integer array, wrapped or exact: only ``a`` modulo
    2**26 reaches u), ``cur``, ``volt`` the decay factors, ``spiked`` bool (or float) out;
    ``v_pre`` receives v before the reset, or has size 0. int32 additions and shifts wrap
    as `fx.wrap_int32`; v lies within +-(2**23 - 1), so ``v > theta`` is ``v > theta``
    clamped into int32."""
    keep_pre = v_pre.shape[0] > 0
    th = _I32(min(max(theta, fx.INT32_MIN), fx.INT32_MAX))
    for j in range(u.shape[0]):
        x = _I32(decay_int(u[j], cur) + _I32(_I32(a[j]) << _I32(6)))
        x = _I32(x - _SPAN * _I32(x > _U_MAX) + _SPAN * _I32(x <= -_U_MAX))
        y = _I32(_I32(decay_int(v[j], volt) + x) + _I32(bias[j]))
        y = min(max(y, -_V_SAT), _V_SAT)
        s = y > th
        u[j] = x
        v[j] = _I32(0) if s else y
        spiked[j] = s
        if keep_pre:
            v_pre[j] = y


kernel_cache.depend_on(globals(), fx.__file__)  # its constants are compiled in
