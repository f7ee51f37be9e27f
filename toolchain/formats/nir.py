"""NIR interop (``nir`` 1.0.8): bring networks from snnTorch, Norse, Sinabs and
Lava-DL, and take them back.

``to_nir``/``from_nir`` convert in memory; ``save``/``load`` write and read
``.nir`` (HDF5) files. Only float parameters travel: NIR has no fixed-point
representation, so ``to_nir`` leaves fixed-point records behind.

Length: this module is the one NIR <-> IR mapping, export table and import chain
side by side (each op's export and its import read the same conventions); the
producer quirks (`nir_peers`) and the bias clock (`nir_clock`) are already split
out. The next split, if it grows, is export and import into two modules.

Node mapping
------------
=====================  ==========================================================
spikeport IR           NIR
=====================  ==========================================================
Input                  Input
Dense, Sparse          Linear (no bias: the bias lives in the neuron)
DelayDense             Linear if every delay is 0, refused otherwise (NIR has no
                       per-synapse delay)
LIF                    CubaLIF
LIFReset               refused (NIR has no periodic reset)
Output                 Output
=====================  ==========================================================

``from_nir`` also reads Affine (see "Affine bias"), LIF and IF. Any other node
type, nested graphs included, is refused with an error naming the node.

Neuron parameters: the forward-Euler convention
-----------------------------------------------
NIR's CubaLIF is continuous time::

    tau_syn dI/dt = -I + w_in S          tau_mem dv/dt = (v_leak - v) + r I

One forward-Euler step of length ``dt`` using the freshly updated current (the
order of Lava and of snnTorch's ``Synaptic``) gives::

    I <- (1 - dt/tau_syn) I + (dt/tau_syn) w_in S
    v <- (1 - dt/tau_mem) v + (dt/tau_mem) r I + (dt/tau_mem) v_leak

which is Lava's float LIF ``u <- u(1-du) + a``, ``v <- v(1-dv) + u + bias`` when

    tau_syn = dt/du      w_in = tau_syn/dt      (unit input gain)
    tau_mem = dt/dv      r    = tau_mem/dt      (unit current-to-voltage gain)
    v_leak  = bias * tau_mem/dt                 v_threshold = vth, v_reset = 0

This is the convention snnTorch's NIR export uses. ``du = 0`` or ``dv = 0`` (no
decay) is an infinite time constant: ``tau = np.inf``, and then ``w_in`` or ``r``
is ``np.inf`` too; an infinite scale over an infinite time constant reads as
gain 1 (the limit of ``scale = tau/dt``). A bias with ``dv = 0`` would need an
infinite ``v_leak`` and is refused.

Reading, the gains need not be 1: a per-neuron gain ``g = (w_in dt/tau_syn) *
(r dt/tau_mem)`` is folded into the rows of every synapse feeding the neuron
(exact: it only rescales u). NIR's LIF has no current state and maps to du = 1
(``u = a_in`` each step); IF maps to du = 1, dv = 0 with gain ``r dt``. A
population must share one du, dv and threshold; v_reset must be 0.

Affine bias: a constant input current (times the input gain), into any neuron.

Time convention (docs/nir.md)
-----------------------------
NIR is continuous time and its edges have no delay; an Euler peer (snnTorch,
Norse) runs every population's input and biases from step 1. Every spikeport
engine adds one step per synaptic hop, so a population k hops from the input
sees its first input in step k + 1, while a Lava bias acts from step 1. The
graph metadata ``spikeport_time`` says which convention a file is in:

* ``euler`` (every file spikeport did not write): constant drives (Affine
  bias, ``v_leak``) start with the population's first input, imported as
  clock input (`toolchain.formats.nir_clock`), so the population's spikes in
  step t + k are exactly the peer's in step t; the LIF bias stays 0;
* ``spikeport`` (spikeport's own files whose LIF biases act from step 1):
  ``v_leak`` is the LIF bias, and an Affine bias may only feed a neuron without
  current (du = 1), where it is folded into the bias.

Writing, a network whose drives are clock input (or that has no bias) is
written in ``euler`` time with its Affine biases and ``v_leak`` restored; a LIF
bias from step 1 is written in ``spikeport`` time with a warning, and refused
with ``nir_for`` (no Euler reader can start a bias before the input).

``dt`` is the producer's (reading) or reader's (writing) time step in the
file's time units; spikeport's own step is always 1. ``nir_from`` / ``nir_for``
name a peer whose conventions apply (`toolchain.formats.nir_peers`).

Round trip
----------
NIR node metadata ``spikeport_op``, ``spikeport_source`` and
``spikeport_num_message_bits`` keep what NIR cannot say (Sparse vs Dense,
provenance, graded spikes); graph metadata ``spikeport_name``,
``spikeport_meta`` (JSON) and ``spikeport_order`` (HDF5 sorts nodes by name)
keep the rest. ``from_nir(to_nir(ir))`` equals ``ir`` up to rounding in
``dt/(dt/du)`` and ``bias * tau_mem/dt / (tau_mem/dt)``.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np

from models.errors import SpikeportError, out_of_range
from toolchain import flags, formats
from toolchain import ir as irm
from toolchain.formats import nir_clock, nir_peers
from toolchain.ir import passes
from toolchain.files import atomic_path
from toolchain.formats.onnx import meta_from_json, meta_to_json

OP_KEY, SOURCE_KEY, BITS_KEY = "spikeport_op", "spikeport_source", "spikeport_num_message_bits"
NAME_KEY, META_KEY, ORDER_KEY = "spikeport_name", "spikeport_meta", "spikeport_order"
TIME_KEY = "spikeport_time"  # "euler" or "spikeport" (module docstring, "Time convention")
NEURON_TYPES = (nir.CubaLIF, nir.LIF, nir.IF)
SUPPORTED = (nir.Input, nir.Linear, nir.Affine, *NEURON_TYPES, nir.Output)


# ------------------------------------------------------------------ public API
def save(ir: irm.IR, path, dt: float = None, nir_for: str = None) -> None:
    """Write ``ir`` as a ``.nir`` file, atomically (``dt``, ``nir_for``: see `to_nir`)."""
    graph = to_nir(ir, dt, nir_for)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)


def load(path, dt: float = None, nir_from: str = None) -> irm.IR:
    """Read a ``.nir`` file into a float IR (``dt``, ``nir_from``: see `from_nir`)."""
    if not Path(path).is_file():
        raise SpikeportError(f"{path}: no such file")
    try:
        graph = nir.read(path)
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        raise SpikeportError(f"{path}: not a readable NIR file ({message})") from None
    try:
        return from_nir(graph, dt, nir_from)
    except SpikeportError as e:
        raise SpikeportError(f"{path}: {e}") from None


def to_nir(ir: irm.IR, dt: float = None, nir_for: str = None) -> nir.NIRGraph:
    """The NIR graph of ``ir``'s float parameters (mapping in the module docstring).

    ``dt``: the length of one spikeport step in the file's time units (default 1, or the peer's).
    ``nir_for``: a peer (`nir_peers.PEERS`) whose importer must run the file as spikeport runs
    the network; what it cannot is refused in one line."""
    target = nir_peers.peer(nir_for)
    dt = target.time_step(dt, "for") if target else (1.0 if dt is None else dt)
    _check_dt(dt)
    passes.infer_shapes(ir)
    time, folded = _export_time(ir, target)
    nodes = {name: _export_node(name, op, dt) for name, op in folded.ir.nodes()}
    for name, bias in folded.affine.items():
        nodes[name] = nir.Affine(weight=nodes[name].weight, bias=bias.copy(), metadata=nodes[name].metadata)
    metadata = {NAME_KEY: ir.name, META_KEY: meta_to_json(folded.ir.meta, ir.name),
                ORDER_KEY: json.dumps(list(folded.ir.graph.nodes)), TIME_KEY: time}
    graph = nir.NIRGraph(nodes=nodes, edges=list(folded.ir.graph.edges), metadata=metadata)
    if target:
        target.check(graph, dt)
    return graph


def from_nir(graph: nir.NIRGraph, dt: float = None, nir_from: str = None) -> irm.IR:
    """The float IR of a NIR graph (mapping and time conventions in the module docstring).

    ``dt``: the producer's time step in the file's time units (default 1, or the producer's).
    ``nir_from``: the program that wrote the file (`nir_peers.PEERS`); its exporter's quirks are
    corrected first."""
    producer = nir_peers.peer(nir_from)
    dt = producer.time_step(dt, "from") if producer else (1.0 if dt is None else dt)
    _check_dt(dt)
    for name, node in graph.nodes.items():
        _check_supported(name, node)
    if producer:
        graph = producer.adapt(graph, dt)
    metadata = graph.metadata or {}
    euler = _import_time(metadata) == "euler"
    ir = irm.IR(str(metadata.get(NAME_KEY, "network")),
                meta=meta_from_json(metadata[META_KEY], "NIR graph") if META_KEY in metadata else None)
    successors = _successors(graph)
    neurons = {name: _neuron(name, node, dt) for name, node in graph.nodes.items()
               if isinstance(node, NEURON_TYPES)}
    synapses = {name: _import_synapse(name, node, successors[name], neurons, euler)  # records Affine biases
                for name, node in graph.nodes.items() if isinstance(node, (nir.Linear, nir.Affine))}
    for name in _node_order(graph):
        ir.add(name, synapses[name] if name in synapses else _import_node(name, graph.nodes[name], neurons, euler))
    ir.graph.add_edges_from(graph.edges)
    try:
        passes.infer_shapes(ir)
        if euler:
            _add_drives(ir, neurons)
    except SpikeportError as e:
        raise SpikeportError(f"NIR graph: {e}" if not str(e).startswith("NIR") else str(e)) from None
    return ir


def _import_time(metadata: dict) -> str:
    """The file's time convention: its `TIME_KEY`, else "spikeport" for a file spikeport wrote
    before that key existed, else "euler" (every other producer)."""
    time = metadata.get(TIME_KEY, "spikeport" if NAME_KEY in metadata else "euler")
    if time not in ("spikeport", "euler"):
        raise SpikeportError(f"NIR graph: metadata {TIME_KEY}={time!r} is not 'spikeport' or 'euler'")
    return time


def _add_drives(ir: irm.IR, neurons: dict) -> None:
    """Euler time: every neuron's constant current and voltage drive as clock input (`nir_clock`).
    Without drives, paths of different hop counts are only warned about (spikeport still runs the
    graph, one step per hop, but no single shift makes it the Euler peer's network)."""
    if not any(np.any(p.current != 0) or np.any(p.bias != 0) or np.any(p.initial_v != 0) for p in neurons.values()):
        try:
            nir_clock.offsets(ir)
        except SpikeportError as e:
            warnings.warn(str(e), stacklevel=4)
        return
    found = nir_clock.offsets(ir)
    drives = []
    for name, p in neurons.items():
        if name not in found:
            raise SpikeportError(f"NIR graph: {name} is not reachable from an input, so its bias has no start step")
        drives += nir_clock.drives_for(name, found[name], p.du, p.dv, p.current, p.bias, p.initial_v,
                                       p.current_from or name)
    nir_clock.add(ir, drives)


def _export_time(ir: irm.IR, target):
    """("euler", the IR with its clock folded) unless a LIF bias acts from step 1, which only
    spikeport's convention says: then ("spikeport", the IR as it is), warned about, or refused
    for a peer (an Euler peer starts a bias with the population's first input)."""
    clocks = set(ir.meta.get(nir_clock.CLOCK_KEY, []))
    biased = [name for name, op in ir.nodes(irm.LIF) if name not in clocks and np.any(op.bias != 0)]
    if not biased:
        return "euler", nir_clock.fold(ir)
    why = (f"{biased[0]}: its bias acts from step 1, before its first input arrives (one step per hop), "
           "which a forward-Euler reader cannot say: it starts biases with the input")
    if target:
        raise SpikeportError(f"--nir-for {target.name}: {why}; a network imported from NIR (whose biases start "
                             "with the input) exports exactly")
    warnings.warn(f"NIR export: {why}; spikeport reads the file back exactly, snnTorch and Norse do not "
                  "(--nir-for PEER refuses instead)", stacklevel=3)
    return "spikeport", nir_clock.Folded(ir, {})


# ------------------------------------------------------------------- export
def _export_node(name: str, op: irm.Op, dt: float) -> nir.NIRNode:
    """The NIR node for ``op``, by the `EXPORTS` entry of its type or nearest base."""
    metadata = {OP_KEY: op.kind, SOURCE_KEY: op.source}
    for cls in type(op).__mro__:
        if cls in EXPORTS:
            return EXPORTS[cls](name, op, dt, metadata)
    raise SpikeportError(f"{name}: op {op.kind} has no NIR equivalent")


def _export_input(name: str, op: irm.Input, dt: float, metadata: dict) -> nir.Input:
    return nir.Input(input_type=np.array([op.n]), metadata={**metadata, BITS_KEY: op.num_message_bits})


def _export_synapse(name: str, op: irm.Dense, dt: float, metadata: dict) -> nir.Linear:
    if op.delays is not None and np.any(op.delays != 0):
        raise SpikeportError(f"{name}: {op.kind} with synaptic delays up to {op.delays.max()} cannot be "
                             f"written to NIR (NIR has no per-synapse delay)")
    return nir.Linear(weight=op.weight.copy(), metadata={**metadata, BITS_KEY: op.num_message_bits})


def _refuse_lif_reset(name: str, op: irm.LIFReset, dt: float, metadata: dict):
    raise SpikeportError(f"{name}: LIFReset (reset_interval={op.reset_interval}) cannot be written to NIR "
                         f"(NIR has no periodic reset)")


def _refuse_qif(name: str, op: irm.QIF, dt: float, metadata: dict):
    raise SpikeportError(f"{name}: QIF cannot be written to NIR (NIR has no quadratic integrate-and-fire "
                         f"primitive; use ONNX)")


def _refuse_gate_qif(name: str, op: irm.GateQIF, dt: float, metadata: dict):
    raise SpikeportError(f"{name}: GateQIF cannot be written to NIR (NIR has no quadratic integrate-and-fire "
                         f"primitive and no graded gate output; use ONNX)")


def _export_output(name: str, op: irm.Output, dt: float, metadata: dict) -> nir.Output:
    return nir.Output(output_type=np.array([op.n]), metadata=metadata)


def _export_lif(name: str, op: irm.LIF, dt: float, metadata: dict) -> nir.CubaLIF:
    if op.dv == 0 and np.any(op.bias != 0):
        raise SpikeportError(f"{name}: a bias with dv=0 (no leak) cannot be written to NIR "
                             f"(CubaLIF's v_leak = bias*tau_mem/dt would be infinite)")
    tau_syn, tau_mem = _tau(op.du, dt), _tau(op.dv, dt)
    v_leak = op.bias * (tau_mem / dt) if op.dv != 0 else np.zeros(op.n)
    full = np.full(op.n, 1.0)
    return nir.CubaLIF(tau_syn=full * tau_syn, tau_mem=full * tau_mem, r=full * (tau_mem / dt),
                       v_leak=v_leak, v_threshold=full * op.vth, v_reset=np.zeros(op.n),
                       w_in=full * (tau_syn / dt), metadata=metadata)


# op type -> (name, op, dt, metadata) -> NIR node (or a one-line refusal naming the reason)
def _refuse_feed(name: str, op: irm.Feed, dt: float, metadata: dict):
    raise SpikeportError(f"{name}: a Feed (input fed to a neuron in the same step, as a netx input layer) "
                         "cannot be written to NIR (every NIR edge is a synaptic hop)")


EXPORTS = {irm.Input: _export_input, irm.Feed: _refuse_feed, irm.Dense: _export_synapse, irm.LIF: _export_lif,
           irm.LIFReset: _refuse_lif_reset, irm.QIF: _refuse_qif, irm.GateQIF: _refuse_gate_qif,
           irm.Output: _export_output}


def _tau(decay: float, dt: float) -> float:
    """``dt / decay``; no decay is an infinite time constant."""
    return np.inf if decay == 0 else dt / decay


# ------------------------------------------------------------------- import
@dataclass
class _Neuron:
    """A NIR neuron node read as Lava LIF parameters plus the input gain to fold."""

    n: int
    du: float
    dv: float
    vth: float
    bias: np.ndarray  # v units per step: v_leak's drive (spikeport time: the LIF bias)
    gain: np.ndarray
    current: np.ndarray = None  # Euler time: constant input current (u units), from an Affine bias
    current_from: str = ""  # the Affine it came from
    initial_v: np.ndarray = None  # Euler time: v before the first step (`nir_peers.INITIAL_V_KEY`)

    def __post_init__(self):
        self.current = np.zeros(self.n) if self.current is None else self.current
        self.initial_v = np.zeros(self.n) if self.initial_v is None else self.initial_v


def _check_supported(name: str, node) -> None:
    if not isinstance(node, SUPPORTED):
        raise SpikeportError(f"NIR node {name!r} of type {type(node).__name__} is not supported "
                             f"(spikeport reads {', '.join(t.__name__ for t in SUPPORTED)})")


def _node_order(graph: nir.NIRGraph) -> list[str]:
    """The stored spikeport node order if it names exactly the graph's nodes, else the graph's."""
    try:
        order = json.loads((graph.metadata or {}).get(ORDER_KEY, "[]"))
    except (TypeError, json.JSONDecodeError):
        order = []
    order = [str(name) for name in order] if isinstance(order, list) else []
    return order if sorted(order) == sorted(graph.nodes) else list(graph.nodes)


def _successors(graph: nir.NIRGraph) -> dict[str, list[str]]:
    successors = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        if src not in graph.nodes or dst not in graph.nodes:
            raise SpikeportError(f"NIR graph: edge {src!r} -> {dst!r} names a node the graph does not have")
        successors[src].append(dst)
    return successors


def _source(name: str, node) -> str:
    return str((node.metadata or {}).get(SOURCE_KEY, f"nir:{name}"))


def _message_bits(node) -> int:
    return int((node.metadata or {}).get(BITS_KEY, 0))


def _import_node(name: str, node, neurons: dict, euler: bool) -> irm.Op:
    """The IR op of a NIR Input, Output or neuron node."""
    if isinstance(node, nir.Input):
        return irm.Input(_size(name, node.input_type["input"]), num_message_bits=_message_bits(node),
                         source=_source(name, node))
    if isinstance(node, nir.Output):
        return irm.Output(_size(name, node.output_type["output"]), source=_source(name, node))
    p = neurons[name]
    bias = np.zeros(p.n) if euler else p.bias  # Euler time: the drive comes from the clock
    return irm.LIF(p.n, du=p.du, dv=p.dv, vth=p.vth, bias=bias, source=_source(name, node))


def _import_synapse(name: str, node, successors: list[str], neurons: dict, euler: bool) -> irm.Op:
    """The IR synapse of a NIR Linear/Affine (Dense unless its metadata names another kind)."""
    kind = irm.OP_TYPES.get(str((node.metadata or {}).get(OP_KEY)))
    weight = _folded_weight(name, node, successors, neurons, euler)
    cls = kind if kind is not None and issubclass(kind, irm.Synapse) else irm.Dense
    return cls(weight, num_message_bits=_message_bits(node), source=_source(name, node))


def _size(name: str, shape) -> int:
    shape = np.atleast_1d(np.asarray(shape))
    if shape.size != 1:
        raise SpikeportError(f"NIR node {name!r}: shape {tuple(shape)} is not one-dimensional")
    return int(shape[0])


def _folded_weight(name: str, node, successors: list[str], neurons: dict, euler: bool) -> np.ndarray:
    """The Linear/Affine weight times its target neurons' input gain; an Affine bias recorded as
    their constant current (Euler time) or folded into their bias (spikeport time)."""
    weight = np.asarray(node.weight, dtype=np.float64)
    if weight.ndim != 2:
        raise SpikeportError(f"NIR {type(node).__name__} {name!r}: weight has shape {weight.shape}, expected 2-D")
    targets = [neurons[dst] for dst in successors if dst in neurons]
    gains = [t.gain for t in targets if t.gain.shape == (weight.shape[0],)]
    if any(not np.array_equal(g, gains[0]) for g in gains):
        raise SpikeportError(f"NIR {type(node).__name__} {name!r} feeds neurons with different input gains "
                             f"({', '.join(successors)}); spikeport folds the gain into the weights")
    gain = gains[0] if gains else np.ones(weight.shape[0])
    bias = np.asarray(getattr(node, "bias", 0.0), dtype=np.float64)
    if isinstance(node, nir.Affine) and np.any(bias != 0):
        (_record_current if euler else _fold_bias)(name, bias, successors, neurons)
    return gain[:, None] * weight


def _record_current(name: str, bias: np.ndarray, successors: list[str], neurons: dict) -> None:
    """Euler time: an Affine's bias, times the input gain, is a constant input current of each neuron
    it feeds, from the neuron's first input on (`nir_clock`)."""
    for dst in successors:
        target = neurons.get(dst)
        if target is None:
            raise SpikeportError(f"NIR Affine {name!r}: its bias feeds {dst!r}, not a neuron")
        if bias.shape != (target.n,):
            raise SpikeportError(f"NIR Affine {name!r}: bias has shape {bias.shape}, {dst!r} has {target.n} neurons")
        if np.any(target.current != 0):
            raise SpikeportError(f"NIR Affine {name!r}: {dst!r} already has a constant input from "
                                 f"{target.current_from!r}; spikeport takes one Affine bias per neuron")
        target.current, target.current_from = target.gain * bias, name


def _fold_bias(name: str, bias: np.ndarray, successors: list[str], neurons: dict) -> None:
    """Add an Affine's bias, times the input gain, to the bias of each neuron it feeds (du = 1 only)."""
    for dst in successors:
        target = neurons.get(dst)
        if target is None or target.du != 1.0:
            why = f"du={target.du:g}: its current decays" if target else "not a neuron"
            raise SpikeportError(f"NIR Affine {name!r}: its bias is a constant input current into {dst!r} "
                                 f"({why}), which a Lava LIF bias cannot express; use du=1 (tau_syn=dt) or Linear")
        if bias.shape != (target.n,):
            raise SpikeportError(f"NIR Affine {name!r}: bias has shape {bias.shape}, "
                                 f"{dst!r} has {target.n} neurons")
        target.bias = target.bias + target.gain * bias


def _neuron(name: str, node, dt: float) -> _Neuron:
    """Lava LIF parameters of a NIR CubaLIF, LIF or IF (convention in the module docstring)."""
    here = f"NIR {type(node).__name__} {name!r}"
    n = _size(name, node.input_type["input"])
    p = {key: _param(here, key, getattr(node, key), n) for key in vars(node)
         if key not in ("input_type", "output_type", "metadata")}
    for key in ("tau_syn", "tau_mem", "tau"):
        if key in p:
            _check_time_constant(here, key, p[key])
    if np.any(p["v_reset"] != 0):
        raise SpikeportError(f"{here}: v_reset={_values(p['v_reset'])} is not supported (Lava resets v to 0)")
    ones = np.ones(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(node, nir.CubaLIF):
            du, dv, unit = dt / p["tau_syn"], dt / p["tau_mem"], p["tau_mem"] / dt
            gain = _gain(p["w_in"], p["tau_syn"] / dt) * _gain(p["r"], unit)
        elif isinstance(node, nir.LIF):
            du, dv, unit = ones, dt / p["tau"], p["tau"] / dt
            gain = _gain(p["r"], unit)
        else:
            du, dv, unit, gain = ones, 0 * ones, np.inf * ones, p["r"] * dt
        bias = p.get("v_leak", 0 * ones) / unit
    _check_decay(here, "du", du, "tau_syn" if isinstance(node, nir.CubaLIF) else None, dt)
    _check_decay(here, "dv", dv, "tau_mem" if isinstance(node, nir.CubaLIF) else "tau", dt)
    for key, values in dict(du=du, dv=dv, gain=gain, bias=bias, v_threshold=p["v_threshold"]).items():
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise SpikeportError(f"{here}: parameters give {key}={values[bad[0]]} for neuron {bad[0]}; "
                                 f"spikeport needs finite values")
    initial_v = _param(here, nir_peers.INITIAL_V_KEY, (node.metadata or {}).get(nir_peers.INITIAL_V_KEY, 0.0), n)
    return _Neuron(n, du=_uniform(here, "du", du), dv=_uniform(here, "dv", dv),
                   vth=_uniform(here, "v_threshold", p["v_threshold"]), bias=bias, gain=gain, initial_v=initial_v)


def _check_time_constant(here: str, key: str, values: np.ndarray) -> None:
    """A time constant is positive: 0, negative (-inf included, which would read as no decay) and NaN
    are refused; inf is no decay."""
    bad = values[~(values > 0)]
    if bad.size:
        raise out_of_range(here, key, bad[0], "(0, inf] (a time constant is positive; inf = no decay)")


def _check_decay(here: str, key: str, decay: np.ndarray, tau: str, dt: float) -> None:
    """``dt / tau`` is the fraction lost per step: above 1 the time constant is shorter than the step,
    which the file's producer did not mean with this ``dt`` (snnTorch writes dt = 1e-4, Norse
    dt * its own time constants)."""
    bad = np.flatnonzero(np.isfinite(decay) & (decay > 1))
    if tau is not None and bad.size:
        i = bad[0]
        raise SpikeportError(f"{here}: {key} = dt/{tau} = {dt:g}/{dt / decay[i]:g} = {decay[i]:g} for neuron {i} "
                             f"is outside [0, 1] (a time constant shorter than the step): give the producer's time "
                             f"step (--nir-dt; --nir-from snntorch reads dt=1e-4, --nir-from norse its tau convention)")


def _param(here: str, key: str, value, n: int) -> np.ndarray:
    try:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
    except ValueError:
        raise SpikeportError(f"{here}: {key} has shape {np.shape(value)}, expected ({n},)") from None


def _gain(scale: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """``scale / unit``, reading inf/inf as 1 (the limit of the unit-gain convention)."""
    return np.where(np.isinf(scale) & np.isinf(unit), 1.0, scale / unit)


def _uniform(here: str, key: str, values: np.ndarray) -> float:
    if values.size and np.any(values != values[0]):
        raise SpikeportError(f"{here}: {key} differs across neurons ({_values(values)}); "
                             f"a spikeport LIF population has one {key}")
    return float(values[0]) if values.size else 0.0


def _values(values: np.ndarray) -> str:
    """``lo..hi`` of a finite array for a message, or its one value."""
    lo, hi = values.min(), values.max()
    return f"{lo:g}" if lo == hi else f"{lo:g}..{hi:g}"


def _check_dt(dt: float) -> None:
    if not (np.isfinite(dt) and dt > 0):
        raise SpikeportError(f"dt={dt} must be a positive finite time step")


formats.register("nir", (".nir",), load, save, "NIR graph (HDF5), for snnTorch, Norse, Sinabs, Lava-DL", options={
    "dt": formats.Option("the producer's (reading) or the reader's (writing) time step, in the file's time "
                         "units: NIR time constants are in those units, spikeport's step is dt (default 1; "
                         "with --nir-from/--nir-for the peer's: snntorch 1e-4, norse 1e-3)", flags.positive_float,
                         flag="--nir-dt"),
    "nir_from": formats.Option("the program that wrote the file; corrects its exporter's conventions "
                               "(docs/nir.md; default: none, the file read as written)",
                               choices=tuple(nir_peers.PEERS)),
    "nir_for": formats.Option("the program that will read the file; writes its conventions and refuses what "
                              "its importer cannot run exactly (docs/nir.md; default: none, spikeport's own "
                              "conventions)", choices=tuple(nir_peers.PEERS)),
})
