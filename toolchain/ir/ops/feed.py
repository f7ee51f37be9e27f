"""`Feed`: an input fed straight into a neuron population, in the same step (no synaptic hop).

Meaning (both arithmetics): ``a[t] = gain * x[t] + offset`` for each of the ``n``
channels, where ``x[t]`` is what the Input source sends at step t (1 per spike
for a binary Input, the value for a graded one). The neuron it feeds receives
``a[t]`` at step t itself, unlike every other synapse, which adds one step.
``offset`` is delivered at every step, spike or not.

This is how Lava-DL netx's ``input`` layer runs on Lava: its LIF neuron has no
synapse in front (``netx.blocks.process.Input``), and the input is handed to
the neuron's ``a_in`` port scaled by the file's ``weight`` and shifted by its
``bias``. Fixed mode: integers (``a`` is sent as Lava int32, then the neuron
scales it by ``<< 6`` like any synaptic input); float mode: the float fields.

A `Feed` reads from an Input only (a neuron's spikes travel through synapses,
one step each); it holds a scalar gain and offset shared by its channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from models import fixed_point as fx
from toolchain.ir.ops.base import Source, Synapse, check_finite, check_range, ints

FEED_LIMIT = 1 << 16  # |gain|, |offset| (integers): a stays far inside int32 for a spike or a graded value < 2**14


@dataclass
class FeedFixed:
    """Integer gain and offset, as the feed sends them to the neuron's ``a_in`` (Lava int32)."""

    gain: int
    offset: int

    def __post_init__(self):
        self.gain, self.offset = (int(ints(getattr(self, k), k)) for k in ("gain", "offset"))

    def lava_kwargs(self) -> dict:
        return dict(gain=self.gain, offset=self.offset)


@dataclass
class Feed(Synapse):
    """``a[t] = gain * x[t] + offset`` on ``n`` channels, delivered at step t (module docstring)."""

    source_roles: ClassVar[tuple] = (Source,)  # fed by an Input only (`toolchain.ir.passes.infer_shapes`)
    n: int
    gain: float = 1.0
    offset: float = 0.0
    fixed: Optional[FeedFixed] = None

    def __post_init__(self):
        self.n, self.gain, self.offset = int(self.n), float(self.gain), float(self.offset)

    @property
    def weight(self) -> np.ndarray:
        """The float gain as the (n, n) diagonal matrix it amounts to (for shape checks and counts)."""
        return np.eye(self.n) * self.gain

    @property
    def size(self) -> int:
        return self.n

    @property
    def n_in(self) -> int:
        return self.n

    def lava_kwargs(self) -> dict:
        return self.fixed.lava_kwargs()

    def check_float(self, name: str) -> None:
        """n >= 1 channels; gain and offset finite (a units per input unit, a units per step)."""
        check_range(name, "n", self.n, 1, np.inf, " (channels)")
        check_finite(name, "gain", self.gain)
        check_finite(name, "offset", self.offset)

    def check_fixed(self, name: str) -> None:
        """Integer gain and offset within +-2**16 (a fed value times the gain stays inside int32)."""
        check_range(name, "gain", self.fixed.gain, -FEED_LIMIT, FEED_LIMIT, " (integer input gain)")
        check_range(name, "offset", self.fixed.offset, -FEED_LIMIT, FEED_LIMIT, " (integer input offset)")

    def values(self, x, mode: str):
        """``a`` for the fed values ``x`` (any shape) in ``mode``'s units."""
        if mode == "fixed":
            return fx.wrap_int32(np.asarray(x, np.float64) * self.fixed.gain + self.fixed.offset)
        return np.asarray(x, np.float64) * self.gain + self.offset
