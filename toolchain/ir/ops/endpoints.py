"""Where spikes enter and leave a network: `Input` (a source) and `Output` (a sink)."""
from __future__ import annotations

from dataclasses import dataclass

from toolchain.ir.ops.base import Sink, Source, check_range


@dataclass
class Input(Source):
    """Spike source of ``n`` channels: step t sends column t of the input (t = 1..T).

    ``num_message_bits`` 0 = binary (any nonzero value is one spike), > 0 = graded
    (the values themselves; integers within int32 in fixed mode, as Lava's RingBuffer).
    """

    n: int
    num_message_bits: int = 0

    @property
    def size(self) -> int:
        return self.n

    def check_float(self, name: str) -> None:
        """n >= 1 channels; ``num_message_bits`` in [0, 32] (0 = binary spikes)."""
        super().check_float(name)
        check_range(name, "num_message_bits", self.num_message_bits, 0, 32)


@dataclass
class Output(Sink):
    """Marks the spikes of its one predecessor (a neuron population) as a result; adds no delay."""

    n: int

    @property
    def size(self) -> int:
        return self.n
