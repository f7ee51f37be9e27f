"""IR passes: shape inference, validation against a target, core mapping.

Passes are plain functions ``IR -> report`` that raise `SpikeportError`
naming node, parameter, value and limit on the first violation. They know
ops only by role (`Source`, `Synapse`, `Neuron`, `Sink`); each op's own
parameter ranges are its ``check_float`` (float parameters, and those both
arithmetics share) and ``check_fixed`` (the fixed-point record)
(`toolchain.ir.ops`).

`validate` is the one check every network passes before any engine runs it:
the file readers (`toolchain.formats.load`) and both engines' entry points
(`backends.emulator.prepare`, `backends.lava.run_lava`) call it. `violations`
is the same check collecting every violation instead of stopping at the first
(``spikeport inspect``).
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np

from models import fixed_point as fx
from models.errors import SpikeportError
from toolchain.ir import ops
from toolchain.ir.graph import IR
from toolchain.ir.targets import get_target


# ------------------------------------------------------------------- structure
def infer_shapes(ir: IR) -> dict:
    """Output size of every node, checking that sizes agree along every edge."""
    sizes = {name: op.size for name, op in ir.nodes()}
    for name, op in ir.nodes():
        srcs = ir.inputs(name)
        if isinstance(op, ops.Source):
            if srcs:
                raise SpikeportError(f"{name}: an {op.kind} node cannot have inputs (has {srcs})")
        elif isinstance(op, ops.Synapse):
            _expect_one_source(name, srcs, getattr(op, "source_roles", (ops.Source, ops.Neuron)), ir)
            if op.n_in != sizes[srcs[0]]:
                raise SpikeportError(f"{name}: weight has {op.n_in} inputs but source {srcs[0]!r} has "
                                     f"{sizes[srcs[0]]} channels")
        elif isinstance(op, ops.Neuron):
            for src in srcs:
                if not isinstance(ir.op(src), ops.Synapse):
                    raise SpikeportError(f"{name}: input {src!r} is a {ir.op(src).kind}; neurons take synapses")
                if sizes[src] != op.n:
                    raise SpikeportError(f"{name}: synapse {src!r} has {sizes[src]} outputs, population has "
                                         f"{op.n} neurons")
        elif isinstance(op, ops.Sink):
            _expect_one_source(name, srcs, (ops.Neuron,), ir)
            if sizes[srcs[0]] != op.n:
                raise SpikeportError(f"{name}: size {op.n} does not match {srcs[0]!r} ({sizes[srcs[0]]})")
        else:
            raise SpikeportError(f"{name}: op {op.kind} has no role (Source, Synapse, Neuron or Sink)")
    return sizes


def _expect_one_source(name, srcs, roles, ir):
    if len(srcs) != 1 or not isinstance(ir.op(srcs[0]), roles):
        kinds = [ir.op(s).kind for s in srcs]
        raise SpikeportError(f"{name}: needs exactly one source of type {'/'.join(t.__name__ for t in roles)}, "
                             f"has {kinds}")


def check_reachable(ir: IR) -> None:
    """Every node must be reachable from an Input (an empty graph has none); each orphan is reported."""
    inputs = ir.names(ops.Source)
    if not inputs:
        raise SpikeportError(f"{ir.name}: the graph has no Input node")
    seen = set(inputs)
    for src in inputs:
        seen |= nx.descendants(ir.graph, src)
    for orphan in (n for n in ir.graph.nodes if n not in seen):
        ops.report(SpikeportError(f"{orphan}: not reachable from any input"))


# ------------------------------------------------------------------ parameters
def check_delays(name: str, op: ops.Synapse) -> None:
    if op.delays is not None:
        ops.check_range(name, "delay", op.delays, 0, fx.MAX_DELAY, " (Loihi 2: 6-bit delays)")


def check_params(name: str, op, require_fixed: bool = False) -> None:
    """One node's parameters: float and shared ones (``check_float``, every op); for a synapse or
    neuron also delays and the fixed-point record (``check_fixed``) when it has one
    (``require_fixed``: it must)."""
    op.check_float(name)
    if not isinstance(op, (ops.Synapse, ops.Neuron)):
        return
    if isinstance(op, ops.Synapse):
        check_delays(name, op)
    if op.fixed is not None:
        op.check_fixed(name)
    elif require_fixed:
        raise SpikeportError(f"{name}: no fixed-point parameters (compile the model first)")


def validate(ir: IR, target: str = "loihi2", require_fixed: bool = False) -> dict:
    """Structure, shapes, reachability and every op's parameter ranges (`check_params`);
    returns the node sizes. Raises `SpikeportError` on the first violation."""
    get_target(target)
    sizes = infer_shapes(ir)
    check_reachable(ir)
    for name, op in ir.nodes():
        check_params(name, op, require_fixed)
    return sizes


def violations(ir: IR, target: str = "loihi2", require_fixed: bool = False) -> list[str]:
    """Every message `validate` could raise, as a list (empty: the network is valid).

    Structure (`infer_shapes`) stops at its first problem; every unreachable node and
    every out-of-range parameter of every node is named.
    """
    get_target(target)
    found: list[str] = []
    with ops.collecting(found):
        _collect(found, infer_shapes, ir)
        _collect(found, check_reachable, ir)
        for name, op in ir.nodes():
            _collect(found, check_params, name, op, require_fixed)
    return found


def _collect(found: list, check, *args) -> None:
    """Run ``check(*args)``, appending a raised `SpikeportError`'s message to ``found``."""
    try:
        check(*args)
    except SpikeportError as e:
        found.append(str(e))


# ----------------------------------------------------------------- core mapping
def core_mapping(ir: IR, target: str = "loihi2") -> dict:
    """Estimate cores and synapse memory per neuron population (incoming synapses
    are stored on the population's cores)."""
    tgt = get_target(target)
    rows, total = [], 0
    for name, op in ir.nodes(ops.Neuron):
        synapses = sum(_synapse_count(ir.op(s)) for s in ir.inputs(name))
        cores = max(math.ceil(op.n / tgt.neurons_per_core), math.ceil(synapses / tgt.synapses_per_core), 1)
        rows.append(dict(node=name, neurons=op.n, synapses=synapses, cores=cores,
                         synapse_bytes=synapses))
        total += cores
    return dict(target=tgt.name, populations=rows, cores=total,
                chips=math.ceil(total / tgt.cores_per_chip),
                neurons=sum(r["neurons"] for r in rows), synapses=sum(r["synapses"] for r in rows))


def _synapse_count(op) -> int:
    if isinstance(op, ops.Feed):  # one connection per channel
        return op.n
    w = op.fixed.weights if op.fixed is not None else op.weight
    return int(np.count_nonzero(w)) if isinstance(op, ops.Sparse) else int(w.size)
