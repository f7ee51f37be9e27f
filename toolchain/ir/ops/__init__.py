"""The op types of the IR: one module per op family, each op a typed record.

Every subclass of `Op` registers itself in `OP_TYPES` when it is defined, so a
new op family is one new module (imported by whoever uses it) and edits
nothing here. The built-in families are imported below.
"""
from toolchain.ir.ops.base import (OP_TYPES, Neuron, Op, Sink, Source, Synapse, check_finite, check_range, collecting,
                                   floats, ints, plain, report)
from toolchain.ir.ops.endpoints import Input, Output
from toolchain.ir.ops.feed import Feed, FeedFixed
from toolchain.ir.ops.lif import LIF, LIFFixed, LIFReset
from toolchain.ir.ops.qif import QIF, QIFFixed
from toolchain.ir.ops.gate_qif import GateQIF, GateQIFFixed  # noqa: E402  (after QIF: it builds on it)
from toolchain.ir.ops.synapses import DelayDense, Dense, Sparse, SynapseFixed

__all__ = ["OP_TYPES", "DelayDense", "Dense", "Feed", "FeedFixed", "GateQIF", "GateQIFFixed", "Input", "LIF", "LIFFixed", "LIFReset", "Neuron",
           "Op", "Output", "QIF", "QIFFixed", "Sink", "Source", "Sparse", "Synapse", "SynapseFixed", "check_finite",
           "check_range",
           "collecting", "floats", "ints", "plain", "report"]
