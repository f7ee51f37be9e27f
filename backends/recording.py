"""What a run records: the ``record`` argument every engine takes.

``record`` lists neuron or Output node names (an Output stands for its
population, under its own name), or ``"<node>/<var>"`` for one array only;
None records every neuron node. A neuron node records its spikes ``s`` and
each of its op's state variables (`toolchain.ir.ops.Neuron.state_vars`; LIF:
``u`` current, ``v`` voltage after reset). Outputs are keyed
``"<name>/<var>"``, each (B, T, n).

Spikes may also be recorded packed, eight neurons to a byte (`pack_spikes`): a
``(B, T, ceil(n / 8))`` uint8 array in which neuron j is bit ``j % 8`` (least
significant first) of byte ``j // 8``, NumPy's ``packbits(..., bitorder="little")``
layout; `unpack_spikes` gives back the 0/1 array.
"""
from __future__ import annotations

import numpy as np

from models.errors import SpikeportError
from toolchain import ir as irm

SPIKES = "s"
PACKED = np.dtype(np.uint8)  # the dtype of a packed spike recording (a 0/1 one is int8)


def packed_width(n: int) -> int:
    """Bytes per step of a packed recording of ``n`` neurons."""
    return -(-n // 8)


def recorded_width(field: str, n: int, packed: bool = False) -> int:
    """Values per step of a recording of ``field`` of ``n`` neurons: n, or `packed_width` if packed spikes."""
    return packed_width(n) if packed and field == SPIKES else n


def recorded_dtype(field: str, state_dtype, packed: bool = False) -> np.dtype:
    """The dtype of a recording of ``field``: int8 spikes (`PACKED` uint8 when ``packed``), else ``state_dtype``."""
    if field == SPIKES:
        return PACKED if packed else np.dtype(np.int8)
    return np.dtype(state_dtype)


def pack_spikes(s: np.ndarray) -> np.ndarray:
    """``(..., n)`` 0/1 (or bool) spikes as ``(..., ceil(n / 8))`` uint8: neuron j is bit ``j % 8`` of
    byte ``j // 8``."""
    return np.packbits(np.asarray(s, bool), axis=-1, bitorder="little")


def unpack_spikes(packed: np.ndarray, n: int) -> np.ndarray:
    """The ``(..., n)`` int8 0/1 spikes of a packed recording (`pack_spikes`) of ``n`` neurons."""
    packed = np.asarray(packed)
    if packed.dtype != PACKED or packed.shape[-1] != packed_width(n):
        raise SpikeportError(f"unpack_spikes: a packed recording of {n} neurons is uint8 (..., {packed_width(n)}), "
                             f"got {packed.dtype} {packed.shape}")
    return np.unpackbits(packed, axis=-1, count=n, bitorder="little").view(np.int8)


def is_packed(recording: np.ndarray) -> bool:
    """Whether a spike recording is packed (`pack_spikes`) rather than 0/1 int8."""
    return recording.dtype == PACKED


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
