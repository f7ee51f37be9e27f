"""What a run records: the ``record`` argument every engine takes.

``record`` lists neuron or Output node names (an Output stands for its
population, under its own name), or ``"<node>/<var>"`` for one array only;
None records every neuron node. A neuron node records its spikes ``s`` and
each of its op's state variables (`toolchain.ir.ops.Neuron.state_vars`; LIF:
``u`` current, ``v`` voltage after reset). Outputs are keyed
``"<name>/<var>"``, each (B, T, n).
"""
from __future__ import annotations

from models.errors import SpikeportError
from toolchain import ir as irm

SPIKES = "s"


def recorded_vars(op: irm.Neuron) -> tuple[str, ...]:
    """The arrays a neuron op records: spikes ``s``, then its state variables in step order."""
    return (SPIKES, *op.state_vars)


def resolve_record(ir: irm.IR, record) -> dict:
    """``{output key: (neuron node, var)}`` for ``record``; an unknown or stateless node is an error."""
    if record is None:
        return {f"{n}/{var}": (n, var) for n, op in ir.nodes(irm.Neuron) for var in recorded_vars(op)}
    targets = {}
    for entry in [record] if isinstance(record, str) else record:
        name, sep, var = str(entry).rpartition("/")
        whole = not sep or name not in ir.graph
        node = recorded_population(ir, str(entry) if whole else name)
        variables = recorded_vars(ir.op(node))
        if not whole and var not in variables:
            raise SpikeportError(f"record: {name!r} has no variable {var!r}; it records {', '.join(variables)}")
        key = str(entry) if whole else name
        targets.update({f"{key}/{v}": (node, v) for v in (variables if whole else (var,))})
    return targets


def recorded_population(ir: irm.IR, name: str) -> str:
    """The neuron node whose state ``name`` (a neuron node, or an Output fed by one) stands for."""
    if name not in ir.graph:
        raise SpikeportError(f"record: no node named {name!r}; neuron and output nodes: "
                             f"{', '.join(ir.names(irm.Neuron, irm.Output))}")
    op, node = ir.op(name), name
    if isinstance(op, irm.Sink):
        node = next(iter(ir.inputs(name)), None)
    if node is None or not isinstance(ir.op(node), irm.Neuron):
        raise SpikeportError(f"record: {name!r} is a {op.kind}; only neuron and Output nodes have "
                             "spikes and state")
    return node
