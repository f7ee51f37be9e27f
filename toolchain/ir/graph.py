"""The graph IR: typed op records (`toolchain.ir.ops`) in a networkx DiGraph.

A node is a name with one op record (attribute ``op``). Edges carry spikes
or synaptic activation forward:

    Input ──► Dense|Sparse|DelayDense ──► LIF|LIFReset ──► ... ──► Output
                       ▲                      │
                       └──────────────────────┘   (recurrence through a synapse)

Semantics (every engine): steps t = 1..T. An Input sends column t at step t.
A synapse sends at step t what it computed from its source's spikes at step
t-1 (t-1-d for a delay d), so each hop adds one step. Several synapses into
one neuron population are summed. An Output marks a neuron population whose
spikes are the network's result; it adds no delay.

Each synapse and neuron op holds its float parameters (Lava ``floating_pt``
meaning) and, once quantized, a fixed-point record whose ``lava_kwargs()``
are exactly the keyword arguments handed to the Lava process.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Iterator, Optional

import networkx as nx
import numpy as np

from toolchain.ir.ops import Neuron, Op, Synapse

IR_DOMAIN = "ai.spikeport"
IR_VERSION = 1


# ----------------------------------------------------------------------- graph
class IR:
    """A spiking network as a networkx DiGraph of named op records.

    ``meta`` holds free-form provenance (model config, quantization report,
    versions); it is written to and read from the ONNX file as JSON.
    """

    def __init__(self, name: str = "network", meta: Optional[dict] = None):
        self.graph = nx.DiGraph(name=name)
        self.meta = dict(meta or {})

    @property
    def name(self) -> str:
        return self.graph.graph["name"]

    def add(self, name: str, op: Op, inputs: tuple[str, ...] | list[str] = ()) -> str:
        """Add node ``name`` holding ``op``, fed by the nodes in ``inputs``."""
        if name in self.graph:
            raise ValueError(f"duplicate node name {name!r}")
        self.graph.add_node(name, op=op)
        for src in inputs:
            self.connect(src, name)
        return name

    def connect(self, src: str, dst: str) -> None:
        self.graph.add_edge(src, dst)

    def op(self, name: str) -> Op:
        return self.graph.nodes[name]["op"]

    def inputs(self, name: str) -> list[str]:
        return list(self.graph.predecessors(name))

    def outputs(self, name: str) -> list[str]:
        return list(self.graph.successors(name))

    def nodes(self, *types: type) -> Iterator[tuple[str, Op]]:
        """(name, op) in insertion order, optionally only of the given op types."""
        for name, data in self.graph.nodes(data=True):
            if not types or isinstance(data["op"], types):
                yield name, data["op"]

    def names(self, *types: type) -> list[str]:
        return [n for n, _ in self.nodes(*types)]

    @property
    def is_fixed(self) -> bool:
        """True when every synapse and neuron carries fixed-point parameters."""
        return all(op.fixed is not None for _, op in self.nodes(Synapse, Neuron))

    @property
    def has_cycle(self) -> bool:
        return not nx.is_directed_acyclic_graph(self.graph)

    def copy(self) -> "IR":
        """A deep copy (arrays copied)."""
        out = IR(self.name, meta=_deepcopy(self.meta))
        for name, op in self.nodes():
            out.graph.add_node(name, op=_deepcopy(op))
        out.graph.add_edges_from(self.graph.edges)
        return out

    def __eq__(self, other) -> bool:
        if not isinstance(other, IR) or self.name != other.name:
            return False
        if list(self.graph.nodes) != list(other.graph.nodes):
            return False
        if sorted(self.graph.edges) != sorted(other.graph.edges):
            return False
        return all(ops_equal(self.op(n), other.op(n)) for n in self.graph.nodes)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{n}:{op.kind}" for n, op in self.nodes())
        return f"IR({self.name!r}, {'fixed' if self.is_fixed else 'float'}, [{kinds}])"


def _deepcopy(x):
    return copy.deepcopy(x)


def ops_equal(a, b) -> bool:
    """Structural equality of op records, comparing arrays exactly."""
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):
        return all(ops_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype.kind == b.dtype.kind and np.array_equal(a, b)
    return a == b
