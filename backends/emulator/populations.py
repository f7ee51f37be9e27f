"""Neuron populations in a run: one implementation per neuron op type, registered here.

A population holds its state for a batch, the spikes ``S`` and summed synaptic
input ``A`` of the current block (time-major ``(block, B, n)``; block row i is
step ``t0 + i``, steps 1-based) and writes what is recorded. The scheduler
(`backends.emulator.engine`) calls `Population.run` for a block whose input is
known, or `step` then `end_block` inside a recurrent loop.

Which class runs an op: the one registered for its type (or the nearest base
type, `implementation_for`); a neuron op without one runs on `StepRulePopulation`,
which applies the op's own step rule (`toolchain.ir.ops.Neuron.step`) one step
at a time. So a new neuron type runs on the emulator as soon as its op module
exists, and a faster implementation (like `backends.emulator.lif.LIFPopulation`) is registered with
`register` without editing this module or the scheduler.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from backends.emulator import memory
from backends.recording import is_packed, pack_spikes
from models.errors import SpikeportError
from toolchain import ir as irm

_IMPLEMENTATIONS: dict[type, type] = {}


def register(op_type: type) -> Callable:
    """Class decorator: the decorated `Population` runs ``op_type`` (and its subclasses)."""
    def decorate(cls):
        _IMPLEMENTATIONS[op_type] = cls
        return cls
    return decorate


def implementation_for(op: irm.Neuron) -> type:
    """The population class registered for ``op``'s type or nearest base, else `StepRulePopulation`
    when the op defines a step rule; a one-line error otherwise."""
    for cls in type(op).__mro__:
        if cls in _IMPLEMENTATIONS:
            return _IMPLEMENTATIONS[cls]
    if type(op).step is not irm.Neuron.step:
        return StepRulePopulation
    raise SpikeportError(f"emulator: op {op.kind} has no implementation and no step rule")


class Population:
    """Interface of a population in a run (see the module docstring).

    ``prepare(op, arithmetic)`` (once per prepared program) returns the constants a
    run needs, a snapshot independent of later changes to the op; ``size(constants)``
    is the population's neuron count; the constructor takes
    ``(constants, arithmetic, batch, block, record)`` where ``record`` maps the
    recorded variable names to ``(B, T, n)`` arrays to fill.
    """

    S: np.ndarray  # (block, B, n) bool: the block's spikes
    A: np.ndarray  # (block, B, n) float64: buffer for the block's summed synaptic input
    takes_events = False  # the class implements `run_events` (fixed mode)
    accepts_events = False  # this run's population takes event blocks (`run_events`)
    spikes_read = True  # a synapse reads S (set by the engine): else `run_events` need not write it

    @staticmethod
    def prepare(op: irm.Neuron, arithmetic):
        raise NotImplementedError

    @staticmethod
    def size(constants) -> int:
        raise NotImplementedError

    def run(self, a, t0: int, k: int) -> None:
        """Steps ``t0 .. t0+k-1`` with synaptic input ``a`` ``(k, B, n)`` (None: no input)."""
        for i in range(k):
            self.step(i, t0 + i, 0.0 if a is None else a[i])
        self.end_block(t0, k)

    def run_events(self, block, t0: int, k: int) -> None:
        """`run` fed by its one synapse's `backends.emulator.nodes.EventBlock` (the source
        spikes and integer weights, not the summed input); only if ``accepts_events``."""
        raise NotImplementedError

    def step(self, i: int, t: int, a) -> None:
        raise NotImplementedError

    def end_block(self, t0: int, k: int) -> None:
        raise NotImplementedError


def record_block(record: dict, blocks: dict, t0: int, k: int) -> None:
    """Steps ``t0 .. t0+k-1`` of the time-major ``(block, B, n)`` blocks into the ``(B, T, ...)`` recordings
    (spikes packed where their recording is: `backends.recording.pack_spikes`)."""
    for var, rec in record.items():
        block = blocks[var][:k]
        if is_packed(rec):
            block = pack_spikes(block)
        rec[:, t0 - 1:t0 - 1 + k] = block.transpose(1, 0, 2)


class StepRulePopulation(Population):
    """Any neuron op, stepped by its own step rule (`toolchain.ir.ops.Neuron.step`).

    The reference implementation: one call of the op's rule per step, no block
    planning. Fixed mode holds the op's integers as exact float64 values. An op with
    ``graded = True`` sends the values its step returns (``S`` float64, ``max_abs`` their
    bound); recorded ``s`` is then that value (int8: graded ops keep |value| <= 127).
    """

    @staticmethod
    def prepare(op: irm.Neuron, arithmetic):
        return copy.deepcopy(op)

    @staticmethod
    def size(constants) -> int:
        return constants.n

    def __init__(self, op: irm.Neuron, arithmetic, batch: int, block: int, record: dict):
        self.op, self.mode, self.record = op, arithmetic.name, record
        shape = (batch, op.n)
        self.state = {var: np.broadcast_to(np.asarray(x, np.float64), shape).copy()
                      for var, x in op.initial_state(self.mode).items()}
        graded = getattr(op, "graded", False)  # sends values (`toolchain.ir.ops.gate_qif`), not spikes
        self.S = memory.empty((block, *shape), np.float64 if graded else bool)
        self.A = memory.empty((block, *shape), np.float64)
        if graded:
            self.max_abs = op.max_payload(self.mode)  # bounds |value sent|: the synapses' exact product dtype
        self.blocks = {"s": self.S, **{var: memory.empty((block, *shape), np.float64) for var in op.state_vars}}

    def step(self, i: int, t: int, a) -> None:
        s, self.state = self.op.step(self.state, a, t, self.mode)
        self.S[i] = s
        for var in self.op.state_vars:
            self.blocks[var][i] = self.state[var]

    def end_block(self, t0: int, k: int) -> None:
        record_block(self.record, self.blocks, t0, k)
