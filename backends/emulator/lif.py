"""LIF and LIFReset populations on the emulator (Lava ``PyLifModelBitAcc`` / ``PyLifModelFloat``).

`LIFPopulation` is registered for `toolchain.ir.LIF` (and so `LIFReset`): it
runs a block of steps on ``(B, n)`` arrays written straight into time-major
block rows. Its arithmetic, in two variants chosen by the run's mode:

* `FixedLIF` (Lava ``fixed_pt``, bit for bit): Lava's stored constants
  (`neuron_params`: int16 ``bias_mant``/``bias_exp``, int32 u, v, ``vth << 6``),
  the full sub-threshold step (`step_rule`: `models.fixed_point.lif_fixed_subthreshold`)
  and, for a block whose input is known in advance, a plan (`plan_block`) that
  scales the whole block's input at once and keeps only the wraps its bounds
  say can fire;
* `FloatLIF` (Lava ``floating_pt``, float64): `models.fixed_point.lif_float_subthreshold`.

The spike test and reset are shared (`spike_and_reset`). The op's own step rule
(`toolchain.ir.ops.lif.LIF.step`) is the reference this is tested against.
Time: steps t = 1..T; recorded v is post-reset.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from backends.emulator import memory, paths
from backends.emulator.arith import lava_var
from backends.emulator.populations import Population, record_block, register
from backends.recording import is_packed
from models import fixed_point as fx
from toolchain import ir as irm


@dataclass
class NeuronParams:
    """Constants of one neuron population, in the variant's units."""

    du: float
    dv: float
    theta: float  # v must strictly exceed this to spike
    bias: np.ndarray  # (n,) effective bias, added to v every step
    u0: np.ndarray  # (n,) initial current
    v0: np.ndarray  # (n,) initial voltage
    reset: Optional[tuple[int, int]]  # LIFReset (interval, offset), else None
    max_abs_bias: float = field(init=False)

    def __post_init__(self):
        self.max_abs_bias = fx.max_abs(self.bias)

    def resets_at(self, step: int) -> bool:
        """LIFReset: whether u and v are zeroed at the start of 1-based ``step``."""
        return self.reset is not None and fx.reset_interval_hits(step, *self.reset)


def spike_and_reset(v: np.ndarray, theta: float, s_out: np.ndarray, keep: Optional[np.ndarray] = None) -> None:
    """``s = v > theta`` (strict) into ``s_out``, then ``v = 0`` where it spiked (in place).

    ``keep``: a float64 scratch array shaped like v. With it the reset is
    ``v *= (v <= theta)``, which has no branch (numpy's putmask mispredicts one
    per element at the spike rates of a hidden layer and costs several times
    more); exact for finite v, the fixed-point state. Without it, ``putmask``,
    exact for any v (a float state that overflowed to inf).
    """
    np.greater(v, theta, out=s_out)
    if keep is None:
        np.putmask(v, s_out, 0.0)
    else:
        np.less_equal(v, theta, out=keep)
        np.multiply(v, keep, out=v)


def _reset_of(op: irm.LIF) -> Optional[tuple[int, int]]:
    if isinstance(op, irm.LIFReset):
        return int(op.reset_interval), int(op.reset_offset)
    return None


class FixedLIF:
    """Lava ``PyLifModelBitAcc``, bit for bit: constants, the sub-threshold step, block plans."""

    @staticmethod
    def plan_block(p: NeuronParams, u: np.ndarray, v: np.ndarray, a: Optional[np.ndarray], out: np.ndarray):
        """(input per step, step rule) for a block of ``len(out)`` steps starting from state u, v.

        The input ``a`` (k, B, n) is scaled (``<< 6``, int32) into ``out`` at once;
        the rule is `fx.lif_fixed_update` with the wraps `fx.lif_scan_wraps` proves
        can fire over the block (skipping one that cannot fire changes nothing).
        """
        cur, volt = fx.current_factor(p.du), fx.voltage_factor(p.dv)
        bound = 0.0 if a is None else fx.max_abs(a) * (1 << fx.ACT_SHIFT)  # exact unless it wraps
        scaled = None if a is None else fx.scaled_input(a, out=out, may_wrap=bound > fx.INT32_MAX)
        if bound > fx.INT32_MAX:
            bound = fx.max_abs(scaled)
        wraps = fx.lif_scan_wraps(fx.max_abs(u), fx.max_abs(v), bound, p.max_abs_bias, cur, volt, len(out))
        return scaled, functools.partial(fx.lif_fixed_update, cur_factor=cur, volt_factor=volt, bias=p.bias,
                                         wraps=wraps)

    @staticmethod
    def step_rule(p: NeuronParams) -> Callable:
        """The full sub-threshold step ``rule(u, v, a_in, out=(u_out, v_out))`` for an input
        known only one step ahead (in a recurrent loop): every rule checked every step."""
        return functools.partial(fx.lif_fixed_subthreshold, du=p.du, dv=p.dv, bias=p.bias)

    @staticmethod
    def neuron_params(op: irm.LIF) -> NeuronParams:
        """Lava's stored values: int16 ``bias_mant``/``bias_exp``, int32 u, v; ``vth << 6``."""
        f = op.fixed
        bias = fx.wrap_int32(fx.effective_bias(lava_var(f.bias_mant, np.int16), lava_var(f.bias_exp, np.int16)))
        return NeuronParams(du=f.du, dv=f.dv, theta=fx.effective_threshold(f.vth),
                            bias=np.broadcast_to(bias, (op.n,)).copy(),
                            u0=lava_var(f.u, np.int32), v0=lava_var(f.v, np.int32), reset=_reset_of(op))


class FloatLIF:
    """Lava ``PyLifModelFloat`` (float64): constants and the sub-threshold step."""

    @staticmethod
    def plan_block(p: NeuronParams, u: np.ndarray, v: np.ndarray, a: Optional[np.ndarray], out: np.ndarray):
        """(input per step, step rule) for a block: the input as it is, `fx.lif_float_subthreshold`."""
        return a, FloatLIF.step_rule(p)

    @staticmethod
    def step_rule(p: NeuronParams) -> Callable:
        """``rule(u, v, a_in, out=(u_out, v_out))``: `fx.lif_float_subthreshold`."""
        return functools.partial(fx.lif_float_subthreshold, du=p.du, dv=p.dv, bias=p.bias)

    @staticmethod
    def neuron_params(op: irm.LIF) -> NeuronParams:
        """Float parameters; ``bias_exp`` does not exist here and u, v start at 0."""
        zeros = np.zeros(op.n)
        return NeuronParams(du=op.du, dv=op.dv, theta=op.vth, bias=np.broadcast_to(op.bias, (op.n,)).copy(),
                            u0=zeros, v0=zeros, reset=_reset_of(op))


LIF_ARITHMETIC = {"fixed": FixedLIF, "float": FloatLIF}
_NO_INPUT = np.zeros((0, 0, 0))  # the kernels' "no synaptic input" and "u, v not recorded"
_NO_SPIKES, _NO_STATE = np.zeros((0, 0, 0), np.int8), np.zeros((0, 0, 0), np.int32)  # the event kernel's "not recorded"
_NO_BLOCK = np.zeros((0, 0, 0), bool)  # the event kernel's "no synapse reads the block's spikes"


@register(irm.LIF)
class LIFPopulation(Population):
    """A LIF/LIFReset population (Lava ``PyLifModelBitAcc`` / ``PyLifModelFloat``), block-planned.

    The block's states are kept time-major, ``U``, ``V`` and ``S`` ``(block, B, n)``:
    step i of a block computes straight into row i, and `end_block` copies what is
    recorded into ``record`` ("s", "u", "v" -> ``(B, T, n)`` arrays; absent: not kept).
    A fixed-mode block whose input is known runs as one compiled loop
    (`backends.emulator.kernels.lif_fixed_block`, which writes u and v rows only
    when they are recorded), or, on the numpy reference path
    (`backends.emulator.paths`), is scaled at once and runs only the wraps its
    bounds say can fire (`FixedLIF.plan_block`). An event-fed block
    (`run_events`) records into ``record`` from its kernel: no `end_block`.
    """

    takes_events = True

    @staticmethod
    def prepare(op: irm.LIF, arithmetic):
        return LIF_ARITHMETIC[arithmetic.name].neuron_params(op)

    @staticmethod
    def size(constants) -> int:
        return len(constants.bias)

    def __init__(self, params, arithmetic, batch: int, block: int, record: dict):
        self.p = params  # `NeuronParams`
        self.arith = LIF_ARITHMETIC[arithmetic.name]
        self.rule = self.arith.step_rule(self.p)
        shape = (batch, len(params.bias))
        self.u = np.broadcast_to(self.p.u0, shape).copy()
        self.v = np.broadcast_to(self.p.v0, shape).copy()
        self.zeros = np.zeros(shape)
        self.S = memory.empty((block, *shape), bool)
        self.block_shape = (block, *shape)  # of U, V and A, made on first use (`_block_array`)
        self.keep = np.empty(shape) if arithmetic.name == "fixed" else None  # scratch of the branch-free reset
        self.record = record
        self.compiled = self.accepts_events = arithmetic.name == "fixed" and paths.fast("neuron")
        self.resets = np.zeros(block, bool)
        self._bias32 = None  # the event kernel's int32 bias, made on first use

    # the block's u, v (float64, time-major) and summed synaptic input: a compiled block
    # writes U and V only when they are recorded, and an event-fed one never sums its input
    U = property(lambda self: self._block_array("U"))
    V = property(lambda self: self._block_array("V"))
    A = property(lambda self: self._block_array("A"))

    def _block_array(self, name: str) -> np.ndarray:
        if name not in self.__dict__:
            self.__dict__[name] = memory.empty(self.block_shape, np.float64)
        return self.__dict__[name]

    def run(self, a, t0: int, k: int) -> None:
        """Steps ``t0 .. t0+k-1`` with synaptic input ``a`` ``(k, B, n)`` (None: no input)."""
        if self.compiled:
            self._run_compiled(a, t0, k)
            return
        a, rule = self.arith.plan_block(self.p, self.u, self.v, a, self.A[:k])
        for i in range(k):
            self.step(i, t0 + i, 0.0 if a is None else a[i], rule)
        self.end_block(t0, k)

    def _run_compiled(self, a, t0: int, k: int) -> None:
        """`run` as one compiled loop over the block (fixed mode; state updated in place)."""
        from backends.emulator import kernels

        a = _NO_INPUT if a is None else np.ascontiguousarray(a, np.float64)
        kernels.lif_fixed_block(self.u, self.v, a, *self._compiled_args(t0, k))
        self.end_block(t0, k)

    def run_events(self, block, t0: int, k: int) -> None:
        """`run` fed by one binary synapse's `backends.emulator.nodes.EventBlock`: its outputs
        are computed where they are used (`backends.emulator.kernels.event_lif_block`)."""
        from backends.emulator import kernels

        if self._bias32 is None:
            self._bias32 = self.p.bias.astype(np.int32)  # Lava's int32 effective bias (exact integers)
        s, u, v = (self.record.get(var, none) for var, none in (("s", _NO_SPIKES), ("u", _NO_STATE), ("v", _NO_STATE)))
        kernels.event_lif_block(block.src, block.weights, block.weight_exp, block.acc, self.u, self.v,
                                fx.current_factor(self.p.du), fx.voltage_factor(self.p.dv), self._bias32,
                                self.p.theta, self._resets(t0, k), self.S[:k] if self.spikes_read else _NO_BLOCK,
                                s, u, v, t0 - 1, is_packed(s))  # it records too

    def _compiled_args(self, t0: int, k: int) -> tuple:
        """The kernels' arguments after the input: decays, bias, threshold, resets, outputs."""
        record_uv = "u" in self.record or "v" in self.record
        U, V = (self.U[:k], self.V[:k]) if record_uv else (_NO_INPUT, _NO_INPUT)
        return (fx.current_factor(self.p.du) / fx.DECAY_UNITY, fx.voltage_factor(self.p.dv) / fx.DECAY_UNITY,
                self.p.bias, self.p.theta, self._resets(t0, k), self.S[:k], U, V, record_uv)

    def _resets(self, t0: int, k: int) -> np.ndarray:
        """``(k,)`` bool: LIFReset zeroes u and v at the start of block row i."""
        if self.p.reset is not None:
            for i in range(k):
                self.resets[i] = self.p.resets_at(t0 + i)
        return self.resets[:k]

    def step(self, i: int, t: int, a, rule=None) -> None:
        """Step ``t`` (block row ``i``): LIFReset zeroing, u/v update, spike, reset.

        ``rule``: a block plan's step rule for its prepared input ``a``; None applies
        the variant's full sub-threshold step to the synaptic input ``a``.
        """
        u, v = (self.zeros, self.zeros) if self.p.resets_at(t) else (self.u, self.v)
        self.u, self.v = (rule or self.rule)(u, v, a, out=(self.U[i], self.V[i]))
        spike_and_reset(self.v, self.p.theta, self.S[i], self.keep)

    def end_block(self, t0: int, k: int) -> None:
        """Record the block's spikes and states (steps ``t0 .. t0+k-1``)."""
        record_block(self.record, {var: self.S if var == "s" else getattr(self, var.upper()) for var in self.record},
                     t0, k)
