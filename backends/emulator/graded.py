"""Graded-output neuron populations: ops whose step sends values (``op.graded``), not spikes.

`GradedPopulation` is `StepRulePopulation` with its sent block ``S`` in float64 (exact integers
in fixed mode) and ``max_abs``, the largest |value| one step sends (`op.max_payload`), which the
synapses it feeds use to choose an exact product dtype. Recorded ``s`` is the sent value
(int8: the graded ops keep |value| <= 127, `toolchain.ir.ops.gate_qif`).
"""
from __future__ import annotations

import numpy as np

from backends.emulator import memory
from backends.emulator.populations import StepRulePopulation, register
from toolchain.ir.ops.gate_qif import GateQIF


@register(GateQIF)
class GradedPopulation(StepRulePopulation):
    """A graded op stepped by its own step rule; ``S`` holds the values it sends."""

    def __init__(self, op, arithmetic, batch: int, block: int, record: dict):
        super().__init__(op, arithmetic, batch, block, record)
        self.S = memory.empty(self.S.shape, np.float64)
        self.blocks["s"] = self.S
        self.max_abs = op.max_payload(self.mode)
