"""Bit-identity of two engines' recordings: the one comparison every verify and deploy uses.

A recording is ``{"<node>/<var>": (B, T, n)}`` (see `toolchain.engines`): ``s``
the spikes, every other variable a state variable of the node's neuron type
(LIF: u, v). The variables compared are the ones both engines recorded, read
from the keys, so a neuron type with other state variables compares the same way.

Two engines are bit-identical on a sample when every compared array of every
node is equal there. The first divergence is the earliest step, then the most
upstream node, then the variable in the order a step computes them (the state
variables in the first engine's recorded order, the spikes ``s`` last), then
the lowest sample and neuron. Steps are t = 1..T (array index k is step k + 1).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from models.errors import SpikeportError

SPIKES = "s"


@dataclass
class Divergence:
    """The first place two fixed-point engines disagree (step is 1-based)."""

    engines: tuple
    node: str
    var: str
    sample: int
    neuron: int
    step: int
    values: tuple

    def describe(self) -> str:
        a, b = self.engines
        return (f"first divergence at node {self.node}, neuron {self.neuron}, step {self.step}, sample "
                f"{self.sample}: {self.var} = {self.values[0]} ({a}) vs {self.values[1]} ({b})")


@dataclass
class BitIdentity:
    """Bit-identity of two engines over their common samples (every compared variable of every node)."""

    engines: tuple
    samples: int
    identical_samples: int  # samples identical in every variable of every node
    identical_by_node: dict  # node -> samples identical in that node
    first_divergence: Optional[Divergence] = None
    arrays: int = 0  # (sample, node, variable) arrays compared, each (T, n)
    identical_arrays: int = 0
    values: int = 0  # single recorded values compared
    equal_values: int = 0

    @property
    def identical(self) -> bool:
        return self.identical_samples == self.samples

    @property
    def label(self) -> str:
        return f"{self.engines[0]} = {self.engines[1]}"


# ------------------------------------------------------------- variables
def recorded_nodes(outputs: dict) -> list:
    """The nodes of a recording, in recorded order."""
    return list(dict.fromkeys(key.rpartition("/")[0] for key in outputs))


def recorded_variables(outputs: dict, node: str) -> list:
    """The variables recorded for ``node``, in recorded order."""
    return [var for key in outputs for name, _, var in [key.rpartition("/")] if name == node]


def compared_variables(out_a: dict, out_b: dict, node: str) -> tuple:
    """The variables of ``node`` both recordings hold, in comparison order: the state
    variables in ``out_a``'s recorded order, then the spikes ``s``."""
    both = [v for v in recorded_variables(out_a, node) if v in recorded_variables(out_b, node)]
    return tuple([v for v in both if v != SPIKES] + [v for v in both if v == SPIKES])


def variables_text(out_a: dict, out_b: dict, node: str) -> str:
    """The variables of ``node`` both recordings hold, as the reports list them: in the order
    the second engine recorded them (LIF on the emulator or Lava: ``"s, v, u"``)."""
    both = compared_variables(out_a, out_b, node)
    return ", ".join(v for v in recorded_variables(out_b, node) if v in both)


# ------------------------------------------------------------- comparing
def compare_bit_identity(a: str, out_a: dict, b: str, out_b: dict, nodes: Optional[list] = None) -> BitIdentity:
    """Bit-identity of the recordings ``out_a`` (engine ``a``) and ``out_b`` (engine ``b``) over
    the samples both ran: identical samples (per node and in all), arrays and values, and the
    first divergence. ``nodes``: upstream first (None: the nodes both recorded, in ``out_a``'s order)."""
    if nodes is None:
        nodes = [n for n in recorded_nodes(out_a) if n in recorded_nodes(out_b)]
    plan = [(node, _variables(a, out_a, b, out_b, node)) for node in nodes]
    if not plan:
        raise SpikeportError(f"compare: {a} and {b} recorded no node in common")
    first_key = f"{plan[0][0]}/{plan[0][1][0]}"
    n = min(np.shape(out_a[first_key])[0], np.shape(out_b[first_key])[0])
    identical, by_node, first = np.ones(n, bool), {}, None
    counts = dict(arrays=0, identical_arrays=0, values=0, equal_values=0)
    for node_index, (node, variables) in enumerate(plan):
        same = np.ones(n, bool)
        for var_index, var in enumerate(variables):
            x, y = np.asarray(out_a[f"{node}/{var}"][:n]), np.asarray(out_b[f"{node}/{var}"][:n])
            if x.shape != y.shape:
                raise SpikeportError(f"{node}/{var}: {a} gives shape {x.shape}, {b} gives {y.shape}")
            diff = x != y
            same_array = ~diff.any(axis=(1, 2))
            same &= same_array
            _count(counts, diff, same_array)
            hit = _earliest(diff)
            if hit is not None:
                step, sample, neuron = hit
                key = (step, node_index, var_index, sample, neuron)
                if first is None or key < first[0]:
                    first = key, Divergence(engines=(a, b), node=node, var=var, sample=sample, neuron=neuron,
                                            step=step + 1, values=(_scalar(x[sample, step, neuron]),
                                                                   _scalar(y[sample, step, neuron])))
        by_node[node] = int(same.sum())
        identical &= same
    return BitIdentity(engines=(a, b), samples=n, identical_samples=int(identical.sum()),
                           identical_by_node=by_node, first_divergence=first[1] if first else None, **counts)


def combine(chunks: list) -> BitIdentity:
    """One comparison of consecutive sample chunks (each a `compare_bit_identity` of the same two engines
    and nodes): counts summed; the first divergence is the earliest step, then the most upstream
    node, then the earliest chunk (within a chunk, as `compare_bit_identity` chose), its sample counted
    from the first chunk."""
    if not chunks:
        raise ValueError("combine: no comparisons")
    nodes = list(chunks[0].identical_by_node)
    offsets = np.cumsum([0] + [c.samples for c in chunks[:-1]])
    found = [(c.first_divergence.step, nodes.index(c.first_divergence.node), k, c.first_divergence, int(o))
             for k, (c, o) in enumerate(zip(chunks, offsets)) if c.first_divergence]
    first = min(found, key=lambda f: f[:3], default=None)
    counts = {k: sum(getattr(c, k) for c in chunks)
              for k in ("samples", "identical_samples", "arrays", "identical_arrays", "values", "equal_values")}
    return BitIdentity(engines=chunks[0].engines,
                           identical_by_node={n: sum(c.identical_by_node[n] for c in chunks) for n in nodes},
                           first_divergence=replace(first[3], sample=first[3].sample + first[4]) if first else None,
                           **counts)


def _variables(a: str, out_a: dict, b: str, out_b: dict, node: str) -> tuple:
    variables = compared_variables(out_a, out_b, node)
    if not variables:
        raise SpikeportError(f"compare: node {node!r} has no variable recorded by both {a} and {b}")
    return variables


def _count(counts: dict, diff: np.ndarray, same_array: np.ndarray) -> None:
    """Add one variable's (B, T, n) difference mask to the array and value counts."""
    counts["arrays"] += len(same_array)
    counts["identical_arrays"] += int(same_array.sum())
    counts["values"] += diff.size
    counts["equal_values"] += diff.size - int(diff.sum())


def _earliest(diff: np.ndarray) -> Optional[tuple[int, int, int]]:
    """(step index, sample, neuron) of the earliest True of a (B, T, n) array, by step first."""
    if not diff.any():
        return None
    by_step = diff.transpose(1, 0, 2)
    step, sample, neuron = np.unravel_index(int(by_step.argmax()), by_step.shape)
    return int(step), int(sample), int(neuron)


def _scalar(value):
    return value.item() if hasattr(value, "item") else value
