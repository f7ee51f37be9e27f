"""Constant drives that start with a neuron's first input: how a NIR bias keeps Euler time.

In a forward-Euler peer (snnTorch, Norse) every population sees its first
input in step 1, and so do its biases (an Affine bias, a ``v_leak``). In
spikeport each synaptic hop adds one step: a population ``k`` hops from the
input (its *offset* k) sees its first input in step ``k + 1``, and its spikes
in step ``t + k`` are the peer's in step ``t`` -- if its constant drives also
start in step ``k + 1``. A Lava LIF bias acts from step 1, ``k`` steps early.

So an Euler graph's constant drives are imported as synaptic input from a
*clock*: populations ``c_1 .. c_K`` of one neuron each (LIF ``du = 1``, ``dv = 0``: they spike in every step, so the reset leaves nothing to leak).
``c_1`` (threshold 0.005) spikes in step 1 on its bias 0.01 and from then on
on its own spike of the step before (a self-synapse of weight 1), so in every
step; its bias is small against its state (u = 1) so that post-training
quantization represents it (a 13-bit bias mantissa reaches 1/16 of the 24-bit
state). ``c_j`` (threshold 0.5, fed by ``c_{j-1}`` with weight 1) spikes in
every step from step ``j``. A synapse from ``c_j`` delivers from step
``j + 1``. ``c_1`` is also fed by the first input through a synapse of zero
weights, only so that every node stays reachable from an input (spikeport's
structure rule). For a population at
offset k, with current decay ``du``:

* a constant input current ``b`` (an Affine bias, times the input gain) is a
  synapse from ``c_k`` with weights ``b``: ``u`` receives ``b`` from step k+1;
* a constant drive ``b`` into the voltage (``v_leak``, in v units per step) is
  the same synapse plus one from ``c_{k+1}`` with weights ``-(1 - du) b``:
  ``u`` then holds exactly ``b`` from step k+1 on (``b``, then
  ``(1 - du) b + du b``), so ``v`` gains ``b`` per step, as a bias would;
* an initial voltage ``v0`` (Norse starts ``v`` at ``v_leak``) is the pulse
  ``p = (1 - dv) v0`` into ``v`` in step k+1 alone (what ``v0`` would have
  left after one step's leak): synapses from ``c_k``, ``c_{k+1}``, ``c_{k+2}``
  with weights ``p``, ``-(2 - du) p``, ``(1 - du) p`` give ``u`` the extra
  ``p`` in step k+1 and 0 from then on.

Every clock population and synapse runs on every engine in both arithmetics
(they are ordinary LIF and Dense ops). ``ir.meta[CLOCK_KEY]`` names the clock
populations; `fold` undoes the construction for export, recovering each
population's Affine bias and ``v_leak``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import networkx as nx

import numpy as np

from models.errors import SpikeportError
from toolchain import ir as irm

CLOCK_KEY = "nir_clock"  # ir.meta: the clock populations' names, c_1 first
FIRST_BIAS, FIRST_VTH, CHAIN_VTH = 0.01, 0.005, 0.5


@dataclass
class Drive:
    """A constant into population ``neuron``: ``values`` (n,) delivered from step ``start + 1``
    through synapse ``name`` from clock ``c_start``."""

    name: str
    neuron: str
    values: np.ndarray
    start: int


def offsets(ir: irm.IR, exclude=()) -> dict:
    """Each node's offset (module docstring): Input 0, a synapse its source's, a neuron one more
    than its synapses' sources (the first path found, breadth first). Nodes in ``exclude`` are
    skipped. A synapse whose source is not exactly one offset behind its neuron (a path of another
    hop count), except a synapse closing a cycle (one step late in both), is a one-line error: no
    single shift relates spikeport's steps to an Euler peer's there."""
    found = {name: 0 for name, _ in ir.nodes(irm.Input)}
    frontier = list(found)
    while frontier:
        reached = []
        for name in frontier:
            for dst in ir.graph.successors(name):
                if dst not in exclude and dst not in found:
                    found[dst] = found[name] + (1 if isinstance(ir.op(dst), irm.Neuron) else 0)
                    reached.append(dst)
        frontier = reached
    for name, _ in ir.nodes(irm.Neuron):
        for syn in (s for s in ir.inputs(name) if s not in exclude and name in found):
            for src in ir.inputs(syn):
                hops = found[name] - found[src]
                if hops != 1 and not (hops == 0 and nx.has_path(ir.graph, name, src)):
                    raise SpikeportError(f"NIR graph: {name} is {found[name]} hops from the input but fed "
                                         f"through {syn} from {src}, {found[src]} hops; spikeport adds one step "
                                         "per hop, so no single shift makes it the Euler peer's network")
    return found


def add(ir: irm.IR, drives: list[Drive]) -> None:
    """Add the clock populations the ``drives`` need, and one Dense synapse per drive."""
    if not drives:
        return
    count = max(d.start for d in drives)
    names = [f"nir.clock.{j}" for j in range(1, count + 1)]
    for name in names + [d.name for d in drives]:
        if name in ir.graph:
            raise SpikeportError(f"NIR graph: node name {name!r} is taken; spikeport names its bias clock so")
    first_input, source = next(iter(ir.nodes(irm.Input)))
    ir.add(f"{names[0]}.in", irm.Dense(np.zeros((1, source.n)), source="nir:clock"), [first_input])
    ir.add(names[0], irm.LIF(1, du=1.0, dv=0.0, vth=FIRST_VTH, bias=np.full(1, FIRST_BIAS), source="nir:clock"),
           [f"{names[0]}.in"])
    ir.add(f"{names[0]}.rec", irm.Dense(np.ones((1, 1)), source="nir:clock"), [names[0]])
    ir.connect(f"{names[0]}.rec", names[0])
    for j, name in enumerate(names[1:], start=1):
        ir.add(f"{name}.in", irm.Dense(np.ones((1, 1)), source="nir:clock"), [names[j - 1]])
        ir.add(name, irm.LIF(1, du=1.0, dv=0.0, vth=CHAIN_VTH, source="nir:clock"), [f"{name}.in"])
    for d in drives:
        ir.add(d.name, irm.Dense(d.values[:, None].astype(np.float64), source=f"nir:{d.name}"),
               [names[d.start - 1]])
        ir.connect(d.name, d.neuron)
    ir.meta[CLOCK_KEY] = names


def drives_for(neuron: str, offset: int, du: float, dv: float, current: np.ndarray, voltage: np.ndarray,
               initial_v: np.ndarray, synapse: str) -> list[Drive]:
    """The drives of a population at ``offset``: constant input ``current`` (u units), ``voltage``
    (v units per step) and ``initial_v`` (v units), named after the ``synapse`` that carried the
    current and the neuron (module docstring)."""
    drives = []
    pulse = (1.0 - dv) * initial_v
    if np.any(pulse != 0):
        drives += [Drive(f"{neuron}.initial_v", neuron, pulse, offset),
                   Drive(f"{neuron}.initial_v.end", neuron, -(2.0 - du) * pulse, offset + 1),
                   Drive(f"{neuron}.initial_v.decay", neuron, (1.0 - du) * pulse, offset + 2)]
    if np.any(current != 0):
        drives.append(Drive(f"{synapse}.bias", neuron, current, offset))
    if np.any(voltage != 0):
        drives.append(Drive(f"{neuron}.v_leak", neuron, voltage, offset))
        if du != 1.0:
            drives.append(Drive(f"{neuron}.v_leak.decay", neuron, -(1.0 - du) * voltage, offset + 1))
    return drives


@dataclass
class Folded:
    """`fold`'s result: the IR without its clock, each neuron's v-drive as its bias (v units per
    step, from its first input on) and each synapse's constant current (``affine``: name -> (n,))."""

    ir: irm.IR
    affine: dict


def fold(ir: irm.IR) -> Folded:
    """Undo `add`: drop the clock, give each driven population its ``v_leak`` back as bias and its
    constant current to the one synapse feeding it (one-line refusal where that is ambiguous)."""
    clocks = list(ir.meta.get(CLOCK_KEY, []))
    if not clocks:
        return Folded(ir, {})
    clock_nodes = set(clocks) | {f"{c}.in" for c in clocks} | {f"{clocks[0]}.rec"}
    drive_syns = {s for s, _ in ir.nodes(irm.Synapse) if s not in clock_nodes
                  and any(src in clocks for src in ir.inputs(s))}
    hidden = clock_nodes | drive_syns
    found = offsets(ir, exclude=hidden)
    out = irm.IR(ir.name, meta={k: v for k, v in ir.meta.items() if k != CLOCK_KEY})
    for name, op in ir.nodes():
        if name not in hidden:
            out.add(name, copy.copy(op))
    out.graph.add_edges_from((src, dst) for src, dst in ir.graph.edges if src not in hidden and dst not in hidden)
    affine = {}
    for name, op in out.nodes(irm.Neuron):
        per_clock = {}
        for syn in ir.inputs(name):
            if syn in drive_syns:
                j = clocks.index(ir.inputs(syn)[0]) + 1
                per_clock[j] = per_clock.get(j, 0) + ir.op(syn).weight[:, 0]
        if per_clock:
            current, voltage = _split(name, op, found[name], per_clock)
            _assign(out, name, op, current, voltage, affine)
    return Folded(out, affine)


def _split(name: str, op, offset: int, per_clock: dict):
    """(constant current, v-drive) of a population from its drive weights per clock index."""
    if offset + 2 in per_clock:
        raise SpikeportError(f"{name}: an initial voltage (a pulse in its first step) has no NIR equivalent "
                             "(NIR has no initial state)")
    unknown = sorted(set(per_clock) - {offset, offset + 1})
    if unknown:
        raise SpikeportError(f"{name}: a constant drive from clock c_{unknown[0]} starts in step {unknown[0] + 1}, "
                             f"not with its first input (step {offset + 1}); NIR cannot say that")
    first, second = per_clock.get(offset, np.zeros(op.n)), per_clock.get(offset + 1, np.zeros(op.n))
    if op.du == 1.0:
        if np.any(second != 0):
            raise SpikeportError(f"{name}: a constant drive that changes after its first step (du=1) has no "
                                 "NIR equivalent")
        return first, np.zeros(op.n)
    voltage = -second / (1.0 - op.du)
    current = first - voltage
    current[np.abs(current) <= 1e-12 * np.max(np.abs(first))] = 0.0
    return current, voltage


def _assign(out: irm.IR, name: str, op, current, voltage, affine: dict) -> None:
    if np.any(op.bias != 0):
        raise SpikeportError(f"{name}: has both a bias (from step 1) and a constant drive from its first input; "
                             "one NIR file cannot say both")
    op.bias = voltage  # ``op`` is `fold`'s copy
    if np.any(current != 0):
        synapses = out.inputs(name)
        if len(synapses) != 1:
            raise SpikeportError(f"{name}: a constant input current and {len(synapses)} synapses; NIR's Affine "
                                 "bias belongs to exactly one")
        affine[synapses[0]] = current
