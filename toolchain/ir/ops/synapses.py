"""Synapse ops: `Dense`, `Sparse`, `DelayDense`, and their fixed-point record `SynapseFixed`.

Float meaning (Lava ``floating_pt``): ``a[t] = W @ s_src[t - 1 - d]``, where d is the
synapse's delay (0 unless DelayDense), so every hop adds ``1 + d`` steps. Fixed meaning
(Lava ``fixed_pt``, `models.fixed_point`): the 8-bit weight mantissas of `SynapseFixed`,
summed, then shifted by ``weight_exp`` (see `models.fixed_point.shift_by_weight_exp`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from models import fixed_point as fx
from toolchain.ir.ops.base import Synapse, check_range, floats, ints


@dataclass
class SynapseFixed:
    """Fixed-point synapse parameters, as handed to Lava's ``Dense``/``Sparse``.

    ``weights`` are already a fixed point of Lava's weight quantisation for the
    given ``num_weight_bits`` and ``sign_mode`` (Lava changes nothing).
    """

    weights: np.ndarray  # (n_out, n_in) int64
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: int = 1  # models.fixed_point.SignMode

    def __post_init__(self):
        self.weights = ints(self.weights, "weights")

    def lava_kwargs(self) -> dict:
        return dict(weights=self.weights, weight_exp=int(self.weight_exp),
                    num_weight_bits=int(self.num_weight_bits), sign_mode=int(self.sign_mode))


@dataclass
class Dense(Synapse):
    """Dense synapse: ``a[t] = W @ s_src[t-1]`` (float) or Lava's fixed rule."""

    weight: np.ndarray  # (n_out, n_in) float64
    num_message_bits: int = 0
    fixed: Optional[SynapseFixed] = None

    def __post_init__(self):
        self.weight = floats(self.weight)

    def lava_kwargs(self) -> dict:
        """Fixed-point keyword arguments for the Lava process."""
        kw = self.fixed.lava_kwargs()
        kw["num_message_bits"] = int(self.num_message_bits)
        return kw

    def check_float(self, name: str) -> None:
        """Float weights finite; ``num_message_bits`` in [0, 32] (0 = binary spikes; both arithmetics)."""
        super().check_float(name)
        check_range(name, "num_message_bits", self.num_message_bits, 0, 32)

    def check_fixed(self, name: str) -> None:
        """Loihi 2 ranges: weight_exp in [-8, 7], 1..8 weight bits, 8-bit mantissas of the sign mode."""
        f = self.fixed
        check_range(name, "weight_exp", f.weight_exp, *fx.WEIGHT_EXP_RANGE)
        check_range(name, "num_weight_bits", f.num_weight_bits, 1, fx.WEIGHT_BITS)
        check_range(name, "sign_mode", f.sign_mode, min(fx.SignMode), max(fx.SignMode))
        if int(f.sign_mode) in set(fx.SignMode):  # the weights' range exists only for a known sign mode
            mode = fx.SignMode(int(f.sign_mode))
            if mode == fx.SignMode.NULL:  # Lava infers it from the matrix
                mode = fx.infer_sign_mode(f.weights)
            lo, hi = fx.weight_clip_range(mode)
            check_range(name, "weights", f.weights, lo, hi, f" (8-bit, sign mode {mode.name})")


@dataclass
class Sparse(Dense):
    """Sparse synapse: zero entries of ``weight`` are absent synapses.

    Same arithmetic as Dense (Lava's Sparse is bit-identical to Dense).
    """


@dataclass
class DelayDense(Dense):
    """Dense synapse with a per-synapse integer delay d (0..63): adds ``1 + d`` steps."""

    delay: np.ndarray = None  # (n_out, n_in) int64

    def __post_init__(self):
        super().__post_init__()
        self.delay = ints(self.delay if self.delay is not None else np.zeros(self.weight.shape), "delay")

    @property
    def delays(self) -> np.ndarray:
        return self.delay

    def lava_kwargs(self) -> dict:
        kw = super().lava_kwargs()
        kw["delays"] = self.delay
        return kw
