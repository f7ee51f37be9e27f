"""The emulator's two arithmetic variants: Lava ``fixed_pt`` and Lava ``floating_pt``.

One scheduler (`backends.emulator.engine`) drives both. A variant says

* which weights a synapse uses (`weights`, `weight_exp`), in which dtype its
  products are exact (`matmul_dtype`) and how the summed products become the
  synapse's output (`synapse_output`);
* a neuron population's constants (`neuron_params`) and its sub-threshold
  step (`step_rule`: ``fx.lif_fixed_subthreshold`` or
  ``fx.lif_float_subthreshold``), also as a plan for a block of steps whose
  input is known in advance (`plan_block`: fixed mode scales the whole
  block's input at once and keeps only the wraps that its bounds say can
  fire). The spike test and reset are shared (`spike_and_reset`; `finite_state`
  says whether the branch-free reset is exact).

Every rule is a function of `models.fixed_point`, the one definition of
Lava's integer arithmetic. Fixed-mode values are float64 arrays holding exact
integers (Lava's units: state on the ``<< 6`` scale); float mode holds the
IR's float units. Time: steps t = 1..T.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from models import fixed_point as fx
from toolchain import ir as irm

FLOAT32_EXACT = float(1 << 24)  # integer partial sums below this are exact in float32


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


def lava_var(values, dtype) -> np.ndarray:
    """``values`` as a Lava ndarray Var stores them (cast into ``dtype``), back in float64.

    Lava makes ``np.ndarray(shape, dtype)`` and assigns the init into it, so
    out-of-range integers wrap: int16 ``bias_mant`` 40000 becomes -25536.
    """
    return np.asarray(values).astype(dtype).astype(np.float64)


def _reset_of(op: irm.LIF) -> Optional[tuple[int, int]]:
    if isinstance(op, irm.LIFReset):
        return int(op.reset_interval), int(op.reset_offset)
    return None


class FixedArith:
    """Lava ``fixed_pt`` (``PyLifModelBitAcc``, ``PyDenseModelBitAcc``), bit for bit."""

    name = "fixed"
    state_dtype = np.int32  # recorded u, v: the dtype of Lava's fixed_pt Vars (24-bit values)
    integer_inputs = True  # graded input values must be int32 integers
    finite_state = True  # u, v are bounded integers

    @staticmethod
    def weights(op: irm.Dense) -> np.ndarray:
        """The weights Lava's fixed Dense uses: int32 storage, then ``fx.lava_weights``.

        ``sign_mode`` 0 (NULL) is falsy, so Lava infers the mode; so does this.
        """
        f = op.fixed
        return fx.lava_weights(lava_var(f.weights, np.int32), int(f.num_weight_bits), int(f.sign_mode) or None)

    @staticmethod
    def weight_exp(op: irm.Dense) -> int:
        return int(op.fixed.weight_exp)

    @staticmethod
    def matmul_dtype(max_w: float, fan_in: int, max_x: float):
        """Cheapest dtype in which every partial sum of the products is exact."""
        if max_w * fan_in * max_x < FLOAT32_EXACT:
            return np.float32
        if fx.exact_matmul_bound(max_w, fan_in, max_x):
            return np.float64
        return np.int64

    @staticmethod
    def synapse_output(acc: np.ndarray, weight_exp: int, int32_accumulator: bool, out: np.ndarray,
                       may_wrap: bool = True) -> np.ndarray:
        """``out`` = `fx.shift_by_weight_exp` of the exact summed products ``acc``.

        ``int32_accumulator``: Lava sums in int32 before shifting (a graded
        Dense/Sparse ``W.dot(s)``), so the sum wraps first. ``may_wrap=False``:
        the caller proved from the weights that no int32 wrap can fire.
        """
        if int32_accumulator and may_wrap:
            acc = fx.wrap_int32(acc)
        return fx.shift_by_weight_exp(acc, weight_exp, out=out, may_wrap=may_wrap)

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


class FloatArith:
    """Lava ``floating_pt`` (``PyLifModelFloat``, ``PyDenseModelFloat``), float64."""

    name = "float"
    state_dtype = np.float64
    integer_inputs = False
    finite_state = False  # a float state can overflow to inf

    @staticmethod
    def weights(op: irm.Dense) -> np.ndarray:
        return op.weight

    @staticmethod
    def weight_exp(op: irm.Dense) -> int:
        return 0

    @staticmethod
    def matmul_dtype(max_w: float, fan_in: int, max_x: float):
        return np.float64

    @staticmethod
    def synapse_output(acc: np.ndarray, weight_exp: int, int32_accumulator: bool, out: np.ndarray,
                       may_wrap: bool = True) -> np.ndarray:
        np.copyto(out, acc)
        return out

    @staticmethod
    def plan_block(p: NeuronParams, u: np.ndarray, v: np.ndarray, a: Optional[np.ndarray], out: np.ndarray):
        """(input per step, step rule) for a block: the input as it is, `fx.lif_float_subthreshold`."""
        return a, FloatArith.step_rule(p)

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


ARITHMETIC = {"fixed": FixedArith, "float": FloatArith}


def absmax(a: np.ndarray) -> float:
    """max |a| (0 for an empty array)."""
    return max(float(a.max()), -float(a.min())) if a.size else 0.0
