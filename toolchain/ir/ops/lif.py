"""The current-based LIF neuron (Lava ``lava.proc.lif.LIF``) and `LIFReset`.

Float meaning per step t (Lava ``floating_pt``)::

    u[t] = u[t-1] (1 - du) + a_in[t]
    v[t] = v[t-1] (1 - dv) + u[t] + bias
    s[t] = v[t] > vth;   v[t] = 0 where s[t]      (u keeps its value)

Fixed meaning (Lava ``fixed_pt``, bit for bit; `models.fixed_point`): integer u, v on
the ``<< 6`` scale, decays ``x (4096 - d) / 4096`` rounded toward zero, input
``a_in << 6`` (int32 wrap), the single 2**24 correction of u, saturation of v at
``+-(2**23 - 1)``, bias ``bias_mant << bias_exp``, threshold ``vth << 6``.
`LIFReset` zeroes u and v at the start of every step with
``t % reset_interval == reset_offset``.

State variables: ``u`` (synaptic current), ``v`` (membrane voltage, recorded after
reset), in that order. Parameter ranges: the fixed record's are Loihi 2's
(`LIF.check_fixed`); the float ones (`LIF.check_float`) are what Lava's
``floating_pt`` equations above mean: ``du`` and ``dv`` are the fractions of u
and v lost per step, in [0, 1] (0 = no decay, 1 = nothing kept; outside it the
state would grow or flip sign every step, which no fixed-point decay can
express), ``vth`` >= 0 (the fixed threshold mantissa is unsigned), every value
finite. `LIFReset` needs ``reset_interval`` >= 1 in both arithmetics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from models import fixed_point as fx
from toolchain.ir.ops.base import Neuron, check_finite, check_range, floats, ints


@dataclass
class LIFFixed:
    """Fixed-point LIF parameters, as handed to Lava's ``LIF`` (fixed_pt)."""

    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray  # (n,) int64
    bias_exp: np.ndarray  # (n,) int64
    u: np.ndarray  # (n,) initial current, int64
    v: np.ndarray  # (n,) initial voltage, int64

    def __post_init__(self):
        for name in ("bias_mant", "bias_exp", "u", "v"):
            setattr(self, name, ints(getattr(self, name), name))
        self.du, self.dv, self.vth = (int(ints(getattr(self, k), k)) for k in ("du", "dv", "vth"))

    def lava_kwargs(self) -> dict:
        return dict(du=self.du, dv=self.dv, vth=self.vth, bias_mant=self.bias_mant,
                    bias_exp=self.bias_exp, u=self.u, v=self.v)


@dataclass
class LIF(Neuron):
    """Current-based LIF (Lava ``lava.proc.lif.LIF``); equations in the module docstring."""

    state_vars: ClassVar[tuple[str, ...]] = ("u", "v")
    n: int
    du: float
    dv: float
    vth: float
    bias: np.ndarray = None  # (n,) float64
    fixed: Optional[LIFFixed] = None

    def __post_init__(self):
        self.bias = floats(self.bias if self.bias is not None else np.zeros(self.n))
        self.du, self.dv, self.vth = float(self.du), float(self.dv), float(self.vth)

    def lava_kwargs(self) -> dict:
        return self.fixed.lava_kwargs()

    def check_float(self, name: str) -> None:
        """Lava floating_pt meanings (module docstring): du, dv in [0, 1] (fraction lost per step),
        vth in [0, inf) (same units as v), bias finite (v units per step)."""
        check_range(name, "du", self.du, 0, 1, " (float: fraction of u lost per step)")
        check_range(name, "dv", self.dv, 0, 1, " (float: fraction of v lost per step)")
        check_finite(name, "vth", self.vth)
        if np.isfinite(self.vth):  # a NaN or infinite one is reported once, above
            check_range(name, "vth", self.vth, 0, np.inf, " (float threshold)")
        check_finite(name, "bias", self.bias)

    def check_fixed(self, name: str) -> None:
        """Loihi 2 ranges: 12-bit du/dv (du = -1: no current decay), 17-bit vth, 13-bit bias
        mantissa with a 3-bit exponent, 24-bit u and v."""
        f = self.fixed
        check_range(name, "du", f.du, *fx.DU_RANGE, " (12 bits; -1 = no current decay)")
        check_range(name, "dv", f.dv, *fx.DV_RANGE, " (12 bits)")
        check_range(name, "vth", f.vth, *fx.VTH_RANGE, " (17 bits)")
        check_range(name, "bias_mant", f.bias_mant, *fx.BIAS_MANT_RANGE, " (13 bits)")
        check_range(name, "bias_exp", f.bias_exp, *fx.BIAS_EXP_RANGE, " (3 bits)")
        check_range(name, "u", f.u, -fx.U_MAX + 1, fx.U_MAX, " (24 bits)")
        check_range(name, "v", f.v, -fx.V_SAT, fx.V_SAT, " (24 bits)")

    # ------------------------------------------------------------ step rule
    def initial_state(self, mode: str) -> dict:
        """Fixed: the record's u, v (Lava integers). Float: 0 (Lava's float model starts there)."""
        if mode == "fixed":
            return {"u": self.fixed.u.astype(np.float64), "v": self.fixed.v.astype(np.float64)}
        return {"u": np.zeros(self.n), "v": np.zeros(self.n)}

    def resets_at(self, t: int) -> bool:
        """Whether u and v are zeroed at the start of step t (never, for a plain LIF)."""
        return False

    def step(self, state: dict, a_in, t: int, mode: str):
        """The module docstring's equations for one step t; see `Neuron.step`."""
        u, v = state["u"], state["v"]
        if self.resets_at(t):
            u, v = np.zeros_like(u), np.zeros_like(v)
        if mode == "fixed":
            f = self.fixed
            bias = fx.effective_bias(f.bias_mant.astype(np.float64), f.bias_exp.astype(np.float64))
            u, v = fx.lif_fixed_subthreshold(u, v, a_in, f.du, f.dv, bias)
            theta = fx.effective_threshold(f.vth)
        else:
            u, v = fx.lif_float_subthreshold(u, v, a_in, self.du, self.dv, self.bias)
            theta = self.vth
        s = v > theta
        return s, {"u": u, "v": np.where(s, 0.0, v)}


@dataclass
class LIFReset(LIF):
    """LIF whose u and v are zeroed when ``step % reset_interval == reset_offset``."""

    reset_interval: int = 1
    reset_offset: int = 0

    def lava_kwargs(self) -> dict:
        kw = super().lava_kwargs()
        kw.update(reset_interval=int(self.reset_interval), reset_offset=int(self.reset_offset))
        return kw

    def check_float(self, name: str) -> None:
        """`LIF.check_float`, and ``reset_interval`` >= 1 steps (it is a modulus, in both arithmetics)."""
        super().check_float(name)
        check_range(name, "reset_interval", self.reset_interval, 1, np.inf, " (steps)")

    def check_fixed(self, name: str) -> None:
        """`LIF.check_fixed`; ``reset_interval`` is checked by `check_float` (both arithmetics)."""
        super().check_fixed(name)

    def resets_at(self, t: int) -> bool:
        return fx.reset_interval_hits(t, int(self.reset_interval), int(self.reset_offset))
