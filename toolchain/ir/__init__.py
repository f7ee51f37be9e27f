"""The graph IR, the only part of the toolchain the engines (`backends`) may import.

* `toolchain.ir.graph`: the `IR` class (a networkx DiGraph of named op records);
* `toolchain.ir.ops`: the op types, one module per family, self-registering;
* `toolchain.ir.passes`: shape inference, validation, core mapping;
* `toolchain.ir.targets`: hardware resource limits.

This package imports only `models` and third-party packages.
"""
from toolchain.ir.graph import IR, IR_DOMAIN, IR_VERSION, ops_equal
from toolchain.ir.ops import (OP_TYPES, LIF, QIF, DelayDense, Dense, Feed, FeedFixed, GateQIF, GateQIFFixed, Input,
                              LIFFixed, LIFReset,
                              Neuron, Op, Output, QIFFixed, Sink, Source, Sparse, Synapse, SynapseFixed)

__all__ = ["IR", "IR_DOMAIN", "IR_VERSION", "OP_TYPES", "LIF", "DelayDense", "Dense", "Feed", "FeedFixed", "Input",
           "GateQIF", "GateQIFFixed", "LIFFixed", "LIFReset", "Neuron", "Op", "Output", "QIF", "QIFFixed", "Sink", "Source", "Sparse", "Synapse",
           "SynapseFixed",
           "ops_equal"]
