"""The emulator's two arithmetic variants for synapses: Lava ``fixed_pt`` and ``floating_pt``.

One scheduler (`backends.emulator.engine`) drives both. A variant says which
weights a synapse uses (`weights`, `weight_exp`), in which dtype its products
are exact (`matmul_dtype`) and how the summed products become the synapse's
output (`synapse_output`); ``name`` is the mode ("fixed" | "float") neuron
populations are told, ``state_dtype`` the dtype recorded state is returned in,
``integer_inputs`` whether graded inputs must be integers. Neuron arithmetic
lives with each neuron's population (`backends.emulator.lif` for LIF).

Every rule is a function of `models.fixed_point`, the one definition of
Lava's integer arithmetic. Fixed-mode values are float64 arrays holding exact
integers (Lava's units); float mode holds the IR's float units. Time: steps
t = 1..T.
"""
from __future__ import annotations

import numpy as np

from backends.emulator import paths
from models import fixed_point as fx
from toolchain import ir as irm

FLOAT32_EXACT = float(1 << 24)  # integer partial sums below this are exact in float32


def lava_var(values, dtype) -> np.ndarray:
    """``values`` as a Lava ndarray Var stores them (cast into ``dtype``), back in float64.

    Lava makes ``np.ndarray(shape, dtype)`` and assigns the init into it, so
    out-of-range integers wrap: int16 ``bias_mant`` 40000 becomes -25536.
    """
    return np.asarray(values).astype(dtype).astype(np.float64)


class FixedArith:
    """Lava ``fixed_pt`` (``PyLifModelBitAcc``, ``PyDenseModelBitAcc``), bit for bit."""

    name = "fixed"
    state_dtype = np.int32  # recorded u, v: the dtype of Lava's fixed_pt Vars (24-bit values)
    integer_inputs = True  # graded input values must be int32 integers

    @staticmethod
    def weights(op: irm.Dense) -> np.ndarray:
        """The weights Lava's fixed Dense uses: int32 storage, then ``fx.lava_weights`` (a new
        array: a prepared program is a snapshot of its IR). Once the compiled kernels are loaded
        (`paths.loaded`), in one compiled pass (`kernels.lava_weights`: int8 or int16, ``W.T``
        contiguous); before, in numpy (int32), so a one-off small run loads no numba.

        ``sign_mode`` 0 (NULL) is falsy, so Lava infers the mode; so does this.
        """
        f = op.fixed
        bits, mode = int(f.num_weight_bits), int(f.sign_mode) or None
        if paths.loaded():
            from backends.emulator import kernels

            return kernels.lava_weights(np.asarray(f.weights), bits, mode)
        stored = np.asarray(f.weights).astype(np.int32)  # as `lava_var` stores them, kept in integers
        return fx.lava_weights(stored, bits, mode)

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


class FloatArith:
    """Lava ``floating_pt`` (``PyLifModelFloat``, ``PyDenseModelFloat``), float64."""

    name = "float"
    state_dtype = np.float64
    integer_inputs = False

    @staticmethod
    def weights(op: irm.Dense) -> np.ndarray:
        """The IR's float weights, copied: a prepared program is a snapshot of its IR."""
        return np.array(op.weight, np.float64)

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


ARITHMETIC = {"fixed": FixedArith, "float": FloatArith}


def absmax(a: np.ndarray) -> float:
    """max |a| (0 for an empty array)."""
    return max(float(a.max()), -float(a.min())) if a.size else 0.0
