"""The graph IR: typed op records in a networkx DiGraph.

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

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator, Optional

import networkx as nx
import numpy as np

from models.errors import SpikeportError

IR_DOMAIN = "ai.spikeport"
IR_VERSION = 1


def _ints(a, what: str = "fixed-point value") -> np.ndarray:
    """``a`` as int64; a non-integer (or non-finite) value is refused, never truncated."""
    arr = np.asarray(a)
    if arr.dtype.kind in "fc":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise SpikeportError(f"{what}: value {arr[bad].flat[0]!r} is not an integer "
                                 "(fixed-point parameters must be exact integers)")
    return arr.astype(np.int64)


def _floats(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------- fixed point
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
        self.weights = _ints(self.weights, "weights")

    def lava_kwargs(self) -> dict:
        return dict(weights=self.weights, weight_exp=int(self.weight_exp),
                    num_weight_bits=int(self.num_weight_bits), sign_mode=int(self.sign_mode))


@dataclass
class LIFFixed:
    """Fixed-point LIF parameters, as handed to Lava's ``LIF`` (fixed_pt)."""

    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray  # (n,) int64
    bias_exp: np.ndarray  # (n,) int64
    u: np.ndarray  # (n,) initial current, int64
    v: np.ndarray  # (n,) initial voltage, int64

    def __post_init__(self):
        for name in ("bias_mant", "bias_exp", "u", "v"):
            setattr(self, name, _ints(getattr(self, name), name))
        self.du, self.dv, self.vth = (int(_ints(getattr(self, k), k)) for k in ("du", "dv", "vth"))

    def lava_kwargs(self) -> dict:
        return dict(du=self.du, dv=self.dv, vth=self.vth, bias_mant=self.bias_mant,
                    bias_exp=self.bias_exp, u=self.u, v=self.v)


# ------------------------------------------------------------------------ ops
@dataclass
class Op:
    """Base of every op record. ``source`` names the torch module it came from."""

    source: str = field(default="", kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def size(self) -> int:
        """Number of output channels (neurons, or synapse targets)."""
        raise NotImplementedError


@dataclass
class Input(Op):
    """Spike source: ``n`` channels; ``num_message_bits`` 0 = binary, >0 = graded."""

    n: int
    num_message_bits: int = 0

    @property
    def size(self) -> int:
        return self.n


@dataclass
class Dense(Op):
    """Dense synapse: ``a[t] = W @ s_src[t-1]`` (float) or Lava's fixed rule."""

    weight: np.ndarray  # (n_out, n_in) float64
    num_message_bits: int = 0
    fixed: Optional[SynapseFixed] = None

    def __post_init__(self):
        self.weight = _floats(self.weight)

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def delays(self) -> Optional[np.ndarray]:
        return None

    def lava_kwargs(self) -> dict:
        """Fixed-point keyword arguments for the Lava process."""
        kw = self.fixed.lava_kwargs()
        kw["num_message_bits"] = int(self.num_message_bits)
        return kw


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
        self.delay = _ints(self.delay if self.delay is not None else np.zeros(self.weight.shape), "delay")

    @property
    def delays(self) -> np.ndarray:
        return self.delay

    def lava_kwargs(self) -> dict:
        kw = super().lava_kwargs()
        kw["delays"] = self.delay
        return kw


@dataclass
class LIF(Op):
    """Current-based LIF (Lava ``lava.proc.lif.LIF``).

    Float meaning per step: ``u = u(1-du) + a_in``; ``v = v(1-dv) + u + bias``;
    spike when ``v > vth``; then ``v = 0`` (u keeps its value).
    """

    n: int
    du: float
    dv: float
    vth: float
    bias: np.ndarray = None  # (n,) float64
    fixed: Optional[LIFFixed] = None

    def __post_init__(self):
        self.bias = _floats(self.bias if self.bias is not None else np.zeros(self.n))
        self.du, self.dv, self.vth = float(self.du), float(self.dv), float(self.vth)

    @property
    def size(self) -> int:
        return self.n

    def lava_kwargs(self) -> dict:
        return self.fixed.lava_kwargs()


@dataclass
class LIFReset(LIF):
    """LIF whose u and v are zeroed when ``step % reset_interval == reset_offset``."""

    reset_interval: int = 1
    reset_offset: int = 0

    def lava_kwargs(self) -> dict:
        kw = super().lava_kwargs()
        kw.update(reset_interval=int(self.reset_interval), reset_offset=int(self.reset_offset))
        return kw


@dataclass
class Output(Op):
    """Marks the spikes of its one predecessor (a neuron population) as a result."""

    n: int

    @property
    def size(self) -> int:
        return self.n


OP_TYPES = {cls.__name__: cls for cls in (Input, Dense, Sparse, DelayDense, LIF, LIFReset, Output)}
SYNAPSES = (Dense, Sparse, DelayDense)
NEURONS = (LIF, LIFReset)


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
        return all(op.fixed is not None for _, op in self.nodes(*SYNAPSES, *NEURONS))

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
    import copy

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
