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

_U_MAX, _V_SAT, _SPAN = np.int64(fx.U_MAX), np.int64(fx.V_SAT), np.int64(1 << 24)


@numba.njit(cache=True, nogil=True)
def wrap32(x):
    """`fx.wrap_int32` of an int64: two's-complement truncation to int32."""
    return np.int64(np.int32(x))


@numba.njit(cache=True, nogil=True)
def decay_int(x, factor):
    """`fx.decay` in integers: ``x * factor / 4096`` rounded toward zero, for int32 ``x`` and
    ``factor`` (Lava's are 0..4096). The int64 product is exact (``|x * factor| <= 2**62``);
    adding 4095 to a negative product before the arithmetic shift by 12 turns its floor
    into its ceiling, i.e. rounds toward zero as float64 ``trunc(x * (factor / 4096))``
    does (that product is exact as well while ``|x * factor| < 2**53``)."""
    p = np.int64(x) * np.int64(factor)
    return (p + ((p >> 63) & 4095)) >> 12


@numba.njit(cache=True, nogil=True)
def lif_int(u, v, a, bias, cur, volt, theta, spiked, v_pre):
    """One step of a LIF population, every rule of `fx.lif_fixed_update` in integers, in place:
    ``a << 6`` and the current sum wrapped into int32, the single +-2**24 correction of u,
    the voltage sum wrapped, v saturated at +-(2**23 - 1); then a spike when v > ``theta``
    (vth << 6), v = 0 after it. ``u``, ``v``, ``bias`` int32, ``a`` the synaptic input in
    Lava's units (before ``<< 6``; int32, wrapped or exact), ``cur``, ``volt`` the decay
    factors, ``spiked`` bool (or float) out; ``v_pre`` receives v before the reset, or has
    size 0."""
    keep_pre = v_pre.shape[0] > 0
    for j in range(u.shape[0]):
        x = wrap32(decay_int(u[j], cur) + wrap32(np.int64(a[j]) << 6))
        x = x - _SPAN * (x > _U_MAX) + _SPAN * (x <= -_U_MAX)
        y = wrap32(decay_int(v[j], volt) + x + bias[j])
        y = min(max(y, -_V_SAT), _V_SAT)
        s = y > theta
        u[j] = x
        v[j] = 0 if s else y
        spiked[j] = s
        if keep_pre:
            v_pre[j] = y
