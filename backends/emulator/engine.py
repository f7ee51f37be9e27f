"""The emulator's scheduler: one engine for Lava ``fixed_pt`` and ``floating_pt``.

Time convention (Lava's, every spikeport engine's): steps t = 1..T. Input
column ``x[:, t-1]`` is sent at step t; a synapse delivers at step ``t + 1 + d``
what its source sent at step t (d = 0 except DelayDense), so the synaptic
input of step 1 is 0 while bias and initial u, v act from step 1. Several
synapses into one population are summed. Recorded v is post-reset (what a
Lava Monitor reports).

How it runs: `prepare` turns the IR into a `Program` once (Lava's weights
split by delay, neuron constants, the schedule). A run cuts time into blocks
of k steps, as many as fit a small working-memory budget (``BLOCK_BYTES``:
temporaries stay in cache and are reused, which matters more than the number
of numpy calls). The graph's strongly connected components are visited in
topological order once per block:

* an acyclic synapse turns its source's block, shifted in time by 1 + d,
  into outputs with one matrix product per delay (exact: float32 while
  every partial sum < 2**24, float64 while ``fx.exact_matmul_bound`` holds,
  int64 otherwise), or, for binary spikes in fixed mode sparse enough to
  pay, by adding the weight rows of the spiking sources (`nodes.event_driven`);
  an all-silent stretch costs nothing;
* an acyclic neuron population runs its recurrence over the block on
  ``(B, n)`` arrays (LIF in fixed mode: one compiled loop); a LIF population
  whose one input is such a binary synapse takes a sparse block as its
  spikes and computes its input where it uses it (`Population.run_events`);
* a recurrent component (a cycle through synapses) is stepped as a whole,
  one step at a time, every member in lockstep.

Only recorded arrays are kept for the whole run, so memory is bounded by the
block budget plus the recordings.

A small fixed-point LIF network skips all of this: `Program.run` hands it to
`backends.emulator.network.CompiledNetwork`, every step of every sample in one
compiled call (docs/emulator-paths.md; the scheduler is its reference).

One module of about 480 lines: the scheduler, `prepare`/`Program` and the checks of a run's
request (input, record, mode) are one concept, the run; the runtime nodes, populations,
arithmetic and memory already live in modules of their own.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Optional, Sequence

import networkx as nx
import numpy as np

from backends.emulator import arith as ar
from backends.emulator import lif  # noqa: F401  (registers the built-in LIF population)
from backends.emulator import memory, paths
from backends.emulator.nodes import FeedNode, Source, Synapse, SynapseSpec
from backends.emulator.populations import Population, implementation_for
from backends.recording import SPIKES, recorded_dtype, recorded_width, resolve_record
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.ir import passes

BLOCK_BYTES = 4 << 20  # working memory per block of steps: small blocks reuse cached memory
# ... and per block of a network whose event-fed populations record at most their spikes: those
# blocks hold spikes only, and longer ones reuse each tile of weights for more steps while it is in cache
# (the scale benchmark's layer: 0.245 s at 16 MB, 0.227-0.231 s at 24-32 MB, 0.239 s at 48 MB; medians of 8)
EVENT_BLOCK_BYTES = 32 << 20
LONG_RUN = 50_000_000  # neuron-steps (B * T * neurons) from which a progress bar is shown


def run(ir: irm.IR, x, record: Optional[Sequence[str]] = None, *, mode: str = "fixed",
        progress: Optional[bool] = None, check: bool = True, packed: bool = False) -> dict:
    """Run ``ir`` on inputs ``x`` and return the recorded traces: ``prepare(ir, mode, check).run(x, ...)``.

    ``x``: ``(B, T, N)`` or ``(T, N)``, N = the Input nodes' channels (in node
    order). A binary Input (``num_message_bits == 0``) sends one spike for
    any nonzero value, as Lava counts it: 5, -1, 0.5 and 2 each count once.
    A graded Input sends its values, which multiply the weights of graded
    synapses (a binary synapse counts any nonzero value as one spike); in
    fixed mode they must be integers within int32 (Lava's RingBuffer).

    ``mode``: ``"fixed"`` follows Lava ``fixed_pt`` bit for bit (needs a
    quantized IR); ``"float"`` follows Lava ``floating_pt`` on the float
    parameters (initial u, v = 0).

    ``record``: neuron (LIF/LIFReset) or Output node names (an Output stands
    for its population, under its own name), or ``"<node>/s"`` etc. for one
    array only; None records every neuron node.

    Returns ``{"<node>/s": int8, "<node>/v", "<node>/u": int32 (fixed: the
    dtype of Lava's ``fixed_pt`` u and v) or float64 (float)}``, each ``(B, T, n)``.

    ``packed``: record spikes eight neurons to a byte, ``"<node>/s"`` uint8 ``(B, T,
    ceil(n / 8))`` (`backends.recording.pack_spikes`; `backends.recording.unpack_spikes`
    gives the int8 array back): an eighth of the memory, for long runs and large layers.
    Refused for a population that sends graded values.

    ``progress``: show a tqdm bar (default: only for long runs on a terminal).

    ``check``: see `prepare` (False only for tests that probe Lava's arithmetic outside
    Loihi's ranges; never the CLI).
    """
    with memory.reserving(_recording_bytes(ir, np.shape(x), record, mode, packed)):  # faulted in meanwhile
        return prepare(ir, mode, check=check).run(x, record, progress=progress, packed=packed)


def _recording_bytes(ir: irm.IR, shape: tuple, record, mode: str, packed: bool) -> int:
    """What a run on inputs of ``shape`` records (`memory.reservation_for` its arrays), told from the IR
    before it is checked, for `memory.reserving`; 0 when the request cannot be told (the run's
    own checks then say why)."""
    if len(shape) not in (2, 3) or mode not in ar.ARITHMETIC:
        return 0
    batch, steps = shape[:2] if len(shape) == 3 else (1, shape[0])
    try:
        targets = resolve_record(ir, record)
    except SpikeportError:
        return 0
    arithmetic = ar.ARITHMETIC[mode]
    return memory.reservation_for(batch * steps * recorded_width(field, ir.op(node).size, packed)
                                  * recorded_dtype(field, arithmetic.state_dtype, packed).itemsize
                                  for node, field in dict.fromkeys(targets.values()))


def prepare(ir: irm.IR, mode: str = "fixed", check: bool = True) -> "Program":
    """Prepare ``ir`` for repeated runs: Lava's weights and neuron constants, the schedule.

    The program is a snapshot (weights and constants copied, the graph's structure
    kept apart): changing the IR afterwards does not change it; prepare again.

    ``check`` (default True): refuse, in one line, every network
    `toolchain.ir.passes.validate` refuses (structure, reachability, Loihi 2 ranges of
    the fixed-point record, finite and meaningful float parameters), so an in-memory
    IR is checked as a file is. ``check=False`` is the escape hatch for tests that
    probe how Lava's own storage arithmetic treats values outside Loihi's ranges
    (e.g. ``tests/test_emulator_arithmetic.py``); only shapes are checked then. The
    CLI, verify and the methods never pass it.
    """
    arithmetic = _arithmetic(ir, mode)
    if check:
        passes.validate(ir)
    else:
        passes.infer_shapes(ir)
    for _, op in ir.nodes():
        implementation(op)
    return Program(ir, mode, arithmetic)


def implementation(op: irm.Op):
    """The emulator class that runs ``op``: a one-line error names an op type it cannot run.

    Neuron ops: their registered population (`backends.emulator.populations`), else the
    generic one that applies the op's step rule. Synapses: the Dense family's `SynapseSpec`.
    """
    if isinstance(op, irm.Neuron):
        return implementation_for(op)
    if isinstance(op, irm.Dense):
        return SynapseSpec
    if isinstance(op, irm.Feed):
        return FeedNode
    if isinstance(op, irm.Input):
        return Source
    if isinstance(op, irm.Sink):
        return None
    raise SpikeportError(f"emulator: op {op.kind} has no emulator implementation")


class Program:
    """An IR prepared for the emulator: everything a run needs that does not depend on its inputs.

    ``run(x, record=None, progress=None)`` is `run` without the preparation.
    """

    def __init__(self, ir: irm.IR, mode: str, arithmetic):
        self.ir, self.mode, self.arith = _structure(ir), mode, arithmetic
        self.input_ops = list(ir.nodes(irm.Input))
        self.populations = {name: implementation_for(op) for name, op in ir.nodes(irm.Neuron)}
        self.neurons = {name: self.populations[name].prepare(op, arithmetic) for name, op in ir.nodes(irm.Neuron)}
        self.synapses = {name: SynapseSpec(name, op, arithmetic) for name, op in ir.nodes(irm.Dense)}
        self.feeds_in = dict(ir.nodes(irm.Feed))
        self.inputs = {name: list(ir.inputs(name)) for name in ir.graph}
        self.feeds = {name: bool(ir.outputs(name)) for name in ir.graph}
        self.spikes_read = {name: any(not isinstance(ir.op(o), irm.Output) for o in ir.outputs(name))
                            for name in ir.graph}  # Output nodes read recordings, not blocks
        self.components = _components(ir)
        self.runs = 0  # runs so far: a second one loads the compiled kernels (`paths.warm_up`)
        self.event_fed = {pop: syn for pop, syn in _event_fed(ir).items()
                          if mode == "fixed" and self.populations[pop].takes_events}
        self.step_bytes = step_bytes(ir, 1)  # per sample
        self.event_step_bytes = step_bytes(ir, 1, self.event_fed)  # per sample, event-fed blocks, u and v unrecorded
        self.macs = sum(op.size for _, op in ir.nodes(irm.Synapse))  # per sample and step
        self.neuron_count = sum(op.n for _, op in ir.nodes(irm.Neuron))

    def run(self, x, record: Optional[Sequence[str]] = None, *, progress: Optional[bool] = None,
            packed: bool = False) -> dict:
        """Run on inputs ``x`` and return the recorded traces (see `run`)."""
        x = _check_input(self.input_ops, x)
        batch, steps = x.shape[:2]
        targets = resolve_record(self.ir, record)
        if packed:
            _check_packable(self.ir, targets)
        paths.warm_up(batch * steps * self.neuron_count, repeated=self.runs > 0)
        self.runs += 1
        network = self._compiled_network()
        if network is not None:
            with self._progress_bar(progress, batch, steps, per_sample=True) as bar:
                return network.run(x, targets, self.arith.state_dtype, bar, packed)
        by_node = {}
        for node, field in dict.fromkeys(targets.values()):
            shape = (batch, steps, recorded_width(field, self._size(node), packed))
            dtype = recorded_dtype(field, self.arith.state_dtype, packed)
            by_node.setdefault(node, {})[field] = memory.empty(shape, dtype)
        short, long = self._block_lengths(targets, batch, steps)
        nodes = self._build(x, batch, long, by_node)
        with self._progress_bar(progress, batch, steps) as bar, _blas_threads(self.macs * batch * short):
            t0, k = 1, short
            while t0 <= steps:
                k = min(k, steps + 1 - t0)
                products = [self._run_component(members, nodes, t0, k) for members in self.components]
                bar.update(k)
                t0, k = t0 + k, short if any(products) else long
        filled = set()  # an array recorded under two names (a node and its Output) is handed out twice
        out = {}
        for key, (node, field) in targets.items():
            array = by_node[node][field]
            out[key] = array.copy() if (node, field) in filled else array
            filled.add((node, field))
        return out

    def _compiled_network(self):
        """The network as one compiled loop (`backends.emulator.network`) where that applies, else None."""
        key = paths.fast("network")
        if getattr(self, "_network_for", None) != key:
            from backends.emulator.network import CompiledNetwork

            self._network, self._network_for = CompiledNetwork.of(self), key
        return self._network

    def _size(self, node: str) -> int:
        return self.populations[node].size(self.neurons[node])

    def _build(self, x: np.ndarray, batch: int, block: int, record: dict) -> dict:
        """Runtime objects by node name (Output nodes have none)."""
        nodes, lo = {}, 0
        for name, op in self.input_ops:  # x's channels, split in node order
            nodes[name] = Source(name, op, x, lo, self.arith.integer_inputs)
            lo += op.n
        for name, constants in self.neurons.items():
            nodes[name] = self.populations[name](constants, self.arith, batch, block, record.get(name, {}))
            nodes[name].spikes_read = self.spikes_read[name]
        for name, spec in self.synapses.items():
            src = nodes[self.inputs[name][0]]
            nodes[name] = Synapse(spec, self.arith, getattr(src, "max_abs", 1.0), batch, block)  # graded sources
        for name, op in self.feeds_in.items():
            nodes[name] = FeedNode(name, op, self.arith, batch, block)
        return nodes

    def _block_lengths(self, targets: dict, batch: int, steps: int) -> tuple[int, int]:
        """Steps per block: (within `BLOCK_BYTES`, within `EVENT_BLOCK_BYTES` when every event-fed
        population records at most its spikes). A run starts with the short length and takes the
        long one after a block in which every event-fed population ran event-driven: a block that
        falls back to products keeps the short one, whose products stay in cache."""
        uv_unrecorded = all(field == "s" or node not in self.event_fed for node, field in targets.values())
        per_step = batch * (self.event_step_bytes if uv_unrecorded else self.step_bytes)
        short = int(max(1, min(steps, BLOCK_BYTES // max(1, per_step))))
        if not (uv_unrecorded and self.event_fed):
            return short, short
        return short, int(max(short, min(steps, EVENT_BLOCK_BYTES // max(1, per_step))))

    def _run_component(self, members: list[str], nodes: dict, t0: int, k: int) -> bool:
        """Steps ``t0 .. t0+k-1`` of one component; True if an event-fed population ran on products."""
        if len(members) > 1:
            self._run_recurrent(members, nodes, t0, k)
            return False
        name = members[0]
        node = nodes.get(name)
        if isinstance(node, Source):
            node.load(t0, k)
        elif isinstance(node, (Synapse, FeedNode)) and self.feeds[name]:  # a synapse that feeds nothing is never read
            node.extend(self._source_block(nodes, name, k))
        elif isinstance(node, Population):
            block = (nodes[self.event_fed[name]].event_block(t0, k)
                     if name in self.event_fed and node.accepts_events else None)
            if block is not None:
                node.run_events(block, t0, k)
            else:
                node.run(_sum([nodes[s].emit(t0, k) for s in self.inputs[name]], out=node.A[:k]), t0, k)
                return name in self.event_fed
        return False

    def _run_recurrent(self, members: list[str], nodes: dict, t0: int, k: int) -> None:
        """A cycle through synapses: the members advance together, one step at a time.

        Synapses from outside the cycle deliver the whole block first.
        """
        inside = set(members)
        neurons = [m for m in members if isinstance(nodes[m], Population)]
        synapses = [m for m in members if isinstance(nodes[m], Synapse)]
        external = {n: _sum([nodes[s].emit(t0, k) for s in self.inputs[n] if s not in inside], out=nodes[n].A[:k])
                    for n in neurons}
        for i in range(k):
            for n in neurons:
                rows = [nodes[s].emit(t0 + i, 1) for s in self.inputs[n] if s in inside]
                rows = [r[0] for r in rows if r is not None]
                if external[n] is not None:
                    rows.append(external[n][i])
                a = _sum(rows)
                nodes[n].step(i, t0 + i, 0.0 if a is None else a)
            for s in synapses:
                nodes[s].extend(self._source_block(nodes, s, i + 1)[i:])
        for n in neurons:
            nodes[n].end_block(t0, k)

    def _source_block(self, nodes: dict, synapse: str, k: int) -> np.ndarray:
        """What the synapse's source sent in the block's first k steps: spikes, or graded values."""
        src = nodes[self.inputs[synapse][0]]
        if isinstance(src, Source):
            return (src.values if nodes[synapse].graded else src.spikes)[:k]
        return src.S[:k]

    def _progress_bar(self, progress: Optional[bool], batch: int, steps: int, per_sample: bool = False):
        """A tqdm bar over the steps (or, ``per_sample``, over the samples), or a stand-in."""
        show = progress if progress is not None else (sys.stderr.isatty()
                                                       and batch * steps * self.neuron_count >= LONG_RUN)
        if not show:  # even a disabled tqdm costs about 0.1 ms, a tenth of a small run
            return contextlib.nullcontext(_NO_BAR)
        from tqdm import tqdm

        return tqdm(total=batch if per_sample else steps, unit="sample" if per_sample else "step",
                    desc=f"emulator ({self.mode})", leave=False)


# ------------------------------------------------------------------ validation
def _arithmetic(ir: irm.IR, mode: str):
    if mode not in ar.ARITHMETIC:
        raise SpikeportError(f"emulator: mode={mode!r} is not one of {', '.join(map(repr, ar.ARITHMETIC))}")
    if mode == "fixed":
        for name, op in ir.nodes(irm.Synapse, irm.Neuron):
            if op.fixed is None:
                raise SpikeportError(f"{name}: no fixed-point parameters; mode='fixed' needs a quantized IR "
                                     "(spikeport compile), or use mode='float'")
    return ar.ARITHMETIC[mode]


def _check_input(input_ops: list, x) -> np.ndarray:
    """``x`` as a numeric ``(B, T, N)`` array whose N matches the Input nodes ``[(name, op)]``."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise SpikeportError(f"input: dtype {x.dtype} is not numeric (bool, int or float spikes)")
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise SpikeportError(f"input: shape {x.shape} has {x.ndim} dimensions; expected (B, T, N) or (T, N)")
    inputs = [(name, op.n) for name, op in input_ops]
    expected = sum(n for _, n in inputs)
    if x.shape[2] != expected:
        nodes = " + ".join(f"{name!r} ({n})" for name, n in inputs) or "no Input node"
        raise SpikeportError(f"input: Input node {nodes} expects N={expected} channels, got N={x.shape[2]} "
                             f"(input shape {x.shape})")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise SpikeportError(f"input: {int(np.sum(~np.isfinite(x)))} values are NaN or infinite")
    return x


def _check_packable(ir: irm.IR, targets: dict) -> None:
    """Packed recordings hold binary spikes: refuse, naming it, a population that sends graded values."""
    for key, (node, field) in targets.items():
        if field == SPIKES and getattr(ir.op(node), "graded", False):
            raise SpikeportError(f"{node}: packed=True records binary spikes, but this "
                                 f"{ir.op(node).kind} sends graded values (record {key!r} unpacked)")


def _structure(ir: irm.IR) -> irm.IR:
    """The IR's nodes and edges in a graph of their own (ops shared, not copied): what a
    program reads after prepare (record names), unaffected by later changes to the graph."""
    out = irm.IR(ir.name)
    for name, op in ir.nodes():
        out.graph.add_node(name, op=op)
    out.graph.add_edges_from(ir.graph.edges)
    return out


# ---------------------------------------------------------------- scheduling
SMALL_PRODUCTS = 1 << 26  # multiply-adds per block below which one BLAS thread is as fast as two
_blas = None


def _blas_threads(macs: int):
    """One BLAS thread while the block products are small.

    Small products gain nothing from a second OpenBLAS thread, which then spins
    between products and doubles the run's CPU time; large ones keep every thread.
    """
    global _blas
    if macs >= SMALL_PRODUCTS:
        return contextlib.nullcontext()
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def step_bytes(ir: irm.IR, batch: int, event_fed: Optional[dict] = None) -> int:
    """Working memory one step of a block needs (an estimate: inputs, products, state).

    ``event_fed`` (`_event_fed`): count those populations and synapses as a block they take
    event-driven needs them, spikes only (no products, summed input or unrecorded u, v).
    A block that falls back to products then uses more (at most a few times `BLOCK_BYTES`).
    """
    event_fed = event_fed or {}
    fused = set(event_fed) | set(event_fed.values())
    per_sample = 0
    for name, op in ir.nodes():
        if isinstance(op, irm.Input):
            per_sample += 10 * op.n  # float64 values, bool spikes
        elif name in fused:
            per_sample += op.n_in if isinstance(op, irm.Synapse) else op.n  # history; spikes
        elif isinstance(op, irm.Synapse):
            groups = 1 if op.delays is None else len(np.unique(op.delays))
            per_sample += 12 * op.n_in + 16 * op.size * groups  # history, float32 copy; products, outputs
        elif isinstance(op, irm.Neuron):
            per_sample += (8 * (1 + len(op.state_vars)) + 1) * op.n  # input and state (float64), spikes
    return batch * per_sample


def _components(ir: irm.IR) -> list[list[str]]:
    """Strongly connected components in topological order (members in IR order).

    A synapse inside a cycle is stepped with it, so it may not also feed a
    population outside the cycle.
    """
    cond = nx.condensation(ir.graph)
    order = {name: i for i, name in enumerate(ir.graph.nodes)}
    components = [sorted(cond.nodes[c]["members"], key=order.get) for c in nx.topological_sort(cond)]
    for members in filter(lambda m: len(m) > 1, components):
        for name in members:
            outside = [n for n in ir.outputs(name) if n not in members and isinstance(ir.op(name), irm.Synapse)]
            if outside:
                raise SpikeportError(f"{name}: a synapse in a recurrent loop also feeds {outside} outside it; "
                                     "the emulator needs one synapse per target there (split it in two)")
    return components


def _event_fed(ir: irm.IR) -> dict:
    """``{population: synapse}`` where the synapse is the population's one input, binary, of
    one delay, and feeds nothing else: such a block may be computed where it is used
    (`Population.run_events`, `backends.emulator.nodes.Synapse.event_block`)."""
    fed = {}
    for name, _ in ir.nodes(irm.Neuron):
        inputs = list(ir.inputs(name))
        if len(inputs) != 1 or not isinstance(ir.op(inputs[0]), irm.Dense):
            continue
        op = ir.op(inputs[0])
        one_delay = op.delays is None or len(np.unique(op.delays[op.weight != 0])) <= 1
        if op.num_message_bits == 0 and one_delay and list(ir.outputs(inputs[0])) == [name]:
            fed[name] = inputs[0]
    return fed


def _sum(arrays: list, out: Optional[np.ndarray] = None):
    """Sum of the arrays that are not None (Lava sums projections into one port), None if none.

    Several arrays are added into ``out`` (a fresh array if None); one is returned as it is.
    """
    arrays = [a for a in arrays if a is not None]
    if len(arrays) < 2:
        return arrays[0] if arrays else None
    total = np.add(arrays[0], arrays[1], out=out)
    for a in arrays[2:]:
        np.add(total, a, out=total)
    return total


class _NoBar:
    disable = True

    @staticmethod
    def update(n: int) -> None:
        pass


_NO_BAR = _NoBar()
