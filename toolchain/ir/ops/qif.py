"""The quadratic integrate-and-fire neuron (QIF), stepped in fixed point as Loihi 2 microcode could.

State ``x = V - 1/2`` (the theta neuron's voltage shifted so that its parabola is
``x**2 + c``) and a current ``u``. One step t, with ``h = dt / tau``::

    u[t] = u[t-1] (1 - du) + a_in[t]                  (Lava LIF's current, unchanged)
    x[t] = x[t-1] + h x[t-1]**2 + bias + g u[t]        (Euler step of tau dx/dt = x**2 + c + ...)
    s[t] = x[t] >= x_th;   x[t] = x_reset where s[t]

``bias = h c`` is the constant drive per step. ``g`` sets how the current enters:
``du = 1, g = 1`` makes ``u[t] = a_in[t]`` a voltage jump (delta-pulse synapses, the
theta network of Klos & Memmesheimer); ``g = h`` is the current-based QIF. The finite
``x_th`` and ``x_reset`` stand in for +inf and -inf.

Fixed point (the ``fixed`` record; only integer add, multiply, shift and compare)::

    u = Lava LIF's u update: rtz(u (4095 - du) / 4096) + (a_in << 6), int32/24-bit rules
    X = X + ((X * X) >> (frac + k)) + bias + (u >> u_shift)
    s = X >= x_th;   X = x_reset where s

with ``X = x 2**frac``, ``h = 2**-k`` and arithmetic (flooring) right shifts. ``X * X`` needs
46 bits (int64 in the CPU models). The register X holds 24 bits: after the spike test it
is ``x_reset`` or below ``x_th`` (<= 2**23 - 1); a step that would take it below
``-2**23``, or a current u beyond Lava's 24-bit range (where Lava's LIF would wrap it), is
refused at run time by the emulator (`QIF.step`), never wrapped or saturated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from models import fixed_point as fx
from models import qif_fixed
from models.errors import SpikeportError
from toolchain.ir.ops.base import Neuron, check_range, floats, ints

X_MIN, X_MAX = -(1 << 23), (1 << 23) - 1  # the 24-bit register


@dataclass
class QIFFixed:
    """Fixed-point QIF parameters (integers, the module docstring's names)."""

    k: int  # h = 2**-k
    frac: int  # X = x * 2**frac
    du: int  # Lava LIF's current decay (4095: u holds one step's input)
    u_shift: int  # X += u >> u_shift
    x_th: int
    x_reset: int
    bias: np.ndarray  # (n,) int64, per step
    x: np.ndarray  # (n,) initial X
    u: np.ndarray  # (n,) initial u

    def __post_init__(self):
        for name in ("bias", "x", "u"):
            setattr(self, name, ints(getattr(self, name), name))
        for name in ("k", "frac", "du", "u_shift", "x_th", "x_reset"):
            setattr(self, name, int(ints(getattr(self, name), name)))


def fixed_drive(source: str, f, state: dict, a_in, t: int) -> tuple:
    """Fixed-point step t before firing, shared by every QIF-based op: the new current u and
    voltage x (each checked against its 24-bit register; ``f``: the op's fixed record)."""
    u = qif_fixed.current(state["u"], a_in, f.du)
    check_current(source, u, t)
    x = qif_fixed.voltage(state["x"], u, f.bias, f.k, f.frac, f.u_shift)
    check_state(source, x, t)
    return u, x


@dataclass
class QIF(Neuron):
    """QIF neuron population; float equations and fixed record in the module docstring."""

    state_vars: ClassVar[tuple[str, ...]] = ("u", "x")
    n: int
    h: float  # dt / tau
    du: float  # fraction of u lost per step
    gain: float  # g: x per unit of u per step
    x_th: float
    x_reset: float
    bias: np.ndarray = None  # (n,) x units per step
    x: np.ndarray = None  # (n,) initial x
    fixed: Optional[QIFFixed] = None

    def __post_init__(self):
        self.bias = floats(self.bias if self.bias is not None else np.zeros(self.n))
        self.x = floats(self.x if self.x is not None else np.zeros(self.n))
        for name in ("h", "du", "gain", "x_th", "x_reset"):
            setattr(self, name, float(getattr(self, name)))

    def check_float(self, name: str) -> None:
        """h in (0, 1] (Euler step per tau), du in [0, 1], x_reset < x_th, every value finite."""
        super().check_float(name)
        check_range(name, "h", self.h, np.nextafter(0, 1), 1, " (dt / tau)")
        check_range(name, "du", self.du, 0, 1, " (fraction of u lost per step)")
        if np.isfinite(self.x_th):
            check_range(name, "x_reset", self.x_reset, -np.inf, np.nextafter(self.x_th, -np.inf), " (below x_th)")

    def check_fixed(self, name: str) -> None:
        """24-bit X, u and bias; shifts that keep X * X within 46 bits; Lava LIF's du range."""
        f = self.fixed
        check_range(name, "k", f.k, 0, 23, " (h = 2**-k)")
        check_range(name, "frac", f.frac, 0, 23, " (X = x 2**frac)")
        check_range(name, "u_shift", f.u_shift, 0, 23, " (bits)")
        check_range(name, "du", f.du, *fx.DU_RANGE, " (12 bits; -1 = no current decay)")
        check_range(name, "x_th", f.x_th, 1, X_MAX, " (24 bits)")
        check_range(name, "x_reset", f.x_reset, X_MIN, f.x_th - 1, " (24 bits, below x_th)")
        check_range(name, "x", f.x, X_MIN, f.x_th - 1, " (24 bits, below x_th)")
        check_range(name, "bias", f.bias, X_MIN, X_MAX, " (24 bits)")
        check_range(name, "u", f.u, -fx.U_MAX + 1, fx.U_MAX, " (24 bits)")

    # ------------------------------------------------------------ step rule
    def initial_state(self, mode: str) -> dict:
        if mode == "fixed":
            return {"u": self.fixed.u.astype(np.float64), "x": self.fixed.x.astype(np.float64)}
        return {"u": np.zeros(self.n), "x": self.x.copy()}

    def step(self, state: dict, a_in, t: int, mode: str):
        """The module docstring's step t in ``mode``; see `Neuron.step`."""
        x = state["x"]
        if mode == "fixed":
            f = self.fixed
            u, x = fixed_drive(self.source, f, state, a_in, t)
            s, x = qif_fixed.fire(x, f.x_th, f.x_reset)
            return s, {"u": u, "x": x}
        u = state["u"] * (1 - self.du) + a_in
        x = x + self.h * x * x + self.bias + self.gain * u
        s = x >= self.x_th
        return s, {"u": u, "x": np.where(s, self.x_reset, x)}


def check_current(source, u, t: int) -> None:
    """Refuse a current beyond Lava's 24-bit u at step t (Lava's LIF would wrap it)."""
    _check_register(source, "u", u, -fx.U_MAX + 1, fx.U_MAX, fx.U_MAX, t, "24-bit current; one step's input beyond it")


def check_state(source, x, t: int) -> None:
    """Refuse a state X below the 24-bit register at step t (above it, the spike test resets it)."""
    _check_register(source, "x", x, X_MIN, np.inf, X_MAX, t, "24-bit state; inhibition beyond the fixed-point range")


def _check_register(source, var: str, values, lo, hi, top, t: int, why: str) -> None:
    """Refuse (never wrap or saturate) a register value outside [lo, hi] at step t (numpy or torch)."""
    if 0 in tuple(values.shape):
        return
    low, high = float(values.min()), float(values.max())
    if low < lo or high > hi:
        bad = low if low < lo else high
        raise SpikeportError(f"{source or 'QIF'}: {var}={int(bad)} at step {t} is outside "
                             f"[{int(lo)}, {int(top)}] ({why})")
