"""The fixed-point QIF step, one definition for every array type (numpy and torch).

Units are the deployed integers of `toolchain.ir.ops.qif` (``X = x 2**frac``, Lava's
24-bit current ``u``); values are float64 arrays or tensors holding exact integers
(``X * X`` < 2**46 is exact in float64). One step t, in the order Loihi 2 microcode
would run it::

    u[t] = rtz(u[t-1] (4095 - du) / 4096) + (a_in[t] << 6)      (Lava LIF's current, int32)
    X[t] = X[t-1] + floor(X[t-1]**2 / 2**(frac + k)) + bias + floor(u[t] / 2**u_shift)
    s[t] = X[t] >= x_th;   X[t] = x_reset where s[t]

The emulator's step rule (`toolchain.ir.ops.qif.QIF.step`) and the torch fixed mode of
deployed theta networks (`toolchain.methods.smooth.fixed`) both call these functions, so
the two cannot drift apart; range checks (24-bit registers) are the callers'.
"""
from __future__ import annotations

from models import fixed_point as fx


def current(u, a_in, du: int):
    """``u[t]`` from ``u[t-1]`` and this step's summed synaptic input ``a_in`` (Lava units)."""
    return fx.wrap_int32(fx.decay(u, fx.current_factor(du)) + fx.scaled_input(a_in))


def voltage(x, u, bias, k: int, frac: int, u_shift: int):
    """``X[t]`` before the spike test, from ``X[t-1]`` and ``u[t]`` (flooring shifts)."""
    return x + fx.floor(x * x / 2.0 ** (frac + k)) + bias + fx.floor(u / 2.0 ** u_shift)


def fire(x, x_th: int, x_reset: int):
    """(spikes ``X >= x_th``, ``X`` after reset to ``x_reset`` where it spiked)."""
    s = x >= x_th
    return s, x - (x - x_reset) * s
