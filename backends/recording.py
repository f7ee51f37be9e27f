"""What a run records: the ``record`` argument every backend takes.

``record`` lists neuron (LIF/LIFReset) or Output node names (an Output stands
for its population, under its own name), or ``"<node>/s"``, ``"<node>/v"``,
``"<node>/u"`` for one array only; None records every neuron node. Outputs are
keyed ``"<name>/<var>"``, each (B, T, n): s spikes, v voltage after reset, u
current.
"""
from __future__ import annotations

from models.errors import SpikeportError
from toolchain import ir as irm

STATE_VARS = ("s", "v", "u")


def resolve_record(ir: irm.IR, record) -> dict:
    """``{output key: (neuron node, var)}`` for ``record``; an unknown or stateless node is an error."""
    if record is None:
        return {f"{n}/{var}": (n, var) for n in ir.names(irm.Neuron) for var in STATE_VARS}
    targets = {}
    for entry in [record] if isinstance(record, str) else record:
        name, sep, var = str(entry).rpartition("/")
        if not sep or var not in STATE_VARS or name not in ir.graph:
            name, variables = str(entry), STATE_VARS
        else:
            variables = (var,)
        node = recorded_population(ir, name)
        targets.update({f"{name}/{v}": (node, v) for v in variables})
    return targets


def recorded_population(ir: irm.IR, name: str) -> str:
    """The neuron node whose state ``name`` (a neuron node, or an Output fed by one) stands for."""
    if name not in ir.graph:
        raise SpikeportError(f"record: no node named {name!r}; neuron and output nodes: "
                             f"{', '.join(ir.names(irm.Neuron, irm.Output))}")
    op, node = ir.op(name), name
    if isinstance(op, irm.Output):
        node = next(iter(ir.inputs(name)), None)
    if node is None or not isinstance(ir.op(node), irm.Neuron):
        raise SpikeportError(f"record: {name!r} is a {op.kind}; only neuron (LIF, LIFReset) and Output "
                             "nodes have s, v, u")
    return node
