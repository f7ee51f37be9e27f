"""The QIF neuron with the gate synapse's charge as a graded spike (Huh & Sejnowski), in fixed point.

The neuron of `toolchain.ir.ops.qif` (current u as Lava's LIF current, x stepped by Euler)
whose output each step is the gate charge of that step instead of a binary spike. One
step t, with ``h = dt / tau_v`` and the gate zone ``[x_a, x_a + width]``::

    u[t] = u[t-1] (1 - du) + a_in[t]
    xh   = x[t-1] + h x[t-1]**2 + bias + gain u[t]
    q[t] = G(min(xh, x_a + width)) - G(x[t-1])         G(x) = clip((x - x_a) / width, 0, 1)
    x[t] = x_reset if xh >= x_th else xh                (x_reset < x_a: G(x_reset) = 0)

A full passage through the zone sends one unit of charge in total, spread over the steps
it takes; a partial one a graded amount (negative when x falls back). What the neuron sends
(``s``) is q: synapses from it must be graded (``num_message_bits > 0``).

Fixed point (integer add, shift, compare only; the ``fixed`` record)::

    u  = Lava LIF's u update (as in the QIF op; `models.qif_fixed.current`)
    XH = X + ((X * X) >> (frac + k)) + bias + (u >> u_shift)   (`models.qif_fixed.voltage`)
    Q(X) = clip(X - x_a, 0, 2**(payload_bits + gate_shift)) >> gate_shift
    q  = Q(min(XH, x_a + 2**(payload_bits + gate_shift))) - Q(X_prev)
    X  = x_reset if XH >= x_th else XH

so a full passage is exactly ``2**payload_bits`` (``width 2**frac = 2**(payload_bits +
gate_shift)``). ``payload_bits <= 6`` keeps |q| <= 64: every engine records ``s`` as int8, so
the payload is recorded exactly; ``q`` is also a state variable (int32 in fixed mode, float in
float mode, where it is the charge in units of one passage). X's 24-bit range and u's are
refused at run time as in the QIF op (never wrapped or saturated).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from toolchain.ir.ops.base import Neuron, check_range, floats, ints
from toolchain.ir.ops.qif import QIF, fixed_drive

MAX_PAYLOAD_BITS = 6  # |q| <= 2**6 = 64 fits the int8 spike recordings of every engine


@dataclass
class GateQIFFixed:
    """Fixed-point gate QIF parameters (integers, the module docstring's names)."""

    k: int
    frac: int
    du: int
    u_shift: int
    x_th: int
    x_reset: int
    x_a: int  # gate zone start, X units
    gate_shift: int
    payload_bits: int
    bias: np.ndarray
    x: np.ndarray
    u: np.ndarray

    def __post_init__(self):
        for name in ("bias", "x", "u"):
            setattr(self, name, ints(getattr(self, name), name))
        for name in ("k", "frac", "du", "u_shift", "x_th", "x_reset", "x_a", "gate_shift", "payload_bits"):
            setattr(self, name, int(ints(getattr(self, name), name)))

    @property
    def zone(self) -> int:
        """Zone width in X units, 2**(payload_bits + gate_shift)."""
        return 1 << (self.payload_bits + self.gate_shift)


@dataclass
class GateQIF(Neuron):
    """Gate QIF population; float equations and fixed record in the module docstring."""

    state_vars: ClassVar[tuple[str, ...]] = ("u", "x", "q")
    graded: ClassVar[bool] = True  # sends values, not spikes
    n: int
    h: float
    du: float
    gain: float
    x_th: float
    x_reset: float
    x_a: float
    width: float
    bias: np.ndarray = None
    x: np.ndarray = None
    fixed: Optional[GateQIFFixed] = None

    def __post_init__(self):
        self.bias = floats(self.bias if self.bias is not None else np.zeros(self.n))
        self.x = floats(self.x if self.x is not None else np.full(self.n, float(self.x_reset)))
        for name in ("h", "du", "gain", "x_th", "x_reset", "x_a", "width"):
            setattr(self, name, float(getattr(self, name)))

    def check_float(self, name: str) -> None:
        """QIF's ranges, and x_reset < x_a < x_a + width <= x_th."""
        super().check_float(name)
        check_range(name, "h", self.h, np.nextafter(0, 1), 1, " (dt / tau)")
        check_range(name, "du", self.du, 0, 1, " (fraction of u lost per step)")
        check_range(name, "x_a", self.x_a, np.nextafter(self.x_reset, np.inf), np.inf, " (above x_reset)")
        check_range(name, "width", self.width, np.nextafter(0, 1), self.x_th - self.x_a, " (zone ends at or below x_th)")

    def check_fixed(self, name: str) -> None:
        """QIF's 24-bit ranges; the zone inside (x_reset, x_th]; payload_bits <= 6."""
        f = self.fixed
        QIF.check_fixed(self, name)
        check_range(name, "payload_bits", f.payload_bits, 0, MAX_PAYLOAD_BITS, " (|q| <= 64: int8 recordings)")
        check_range(name, "gate_shift", f.gate_shift, 0, 23, " (bits)")
        check_range(name, "x_a", f.x_a, f.x_reset + 1, f.x_th - f.zone, " (zone inside (x_reset, x_th])")

    # ------------------------------------------------------------ step rule
    def initial_state(self, mode: str) -> dict:
        if mode == "fixed":
            f = self.fixed
            return {"u": f.u.astype(np.float64), "x": f.x.astype(np.float64), "q": np.zeros(self.n)}
        return {"u": np.zeros(self.n), "x": self.x.copy(), "q": np.zeros(self.n)}

    def step(self, state: dict, a_in, t: int, mode: str):
        """The module docstring's step t: (payload q, new state); see `Neuron.step`."""
        x = state["x"]
        if mode == "fixed":
            f = self.fixed
            u, xh = fixed_drive(self.source, f, state, a_in, t)
            top = f.x_a + f.zone
            q = (self._charge_fixed(np.minimum(xh, top), f) - self._charge_fixed(x, f))
            th, reset = f.x_th, f.x_reset
        else:
            u = state["u"] * (1 - self.du) + a_in
            xh = x + self.h * x * x + self.bias + self.gain * u
            top = self.x_a + self.width
            q = self._charge(np.minimum(xh, top)) - self._charge(x)
            th, reset = self.x_th, self.x_reset
        s = xh >= th
        return q, {"u": u, "x": np.where(s, float(reset), xh), "q": q}

    def _charge(self, x):
        return np.clip((x - self.x_a) / self.width, 0.0, 1.0)

    @staticmethod
    def _charge_fixed(X, f: GateQIFFixed):
        return np.floor(np.clip(X - f.x_a, 0, f.zone) / 2.0 ** f.gate_shift)

    def max_payload(self, mode: str) -> float:
        """The largest |q| one step can send."""
        return float(2 ** self.fixed.payload_bits) if mode == "fixed" else 1.0
