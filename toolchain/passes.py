"""IR passes: shape inference, validation against a target, core mapping.

Passes are plain functions ``IR -> report`` that raise `SpikeportError`
naming node, parameter, value and limit on the first violation.

Target limits (``loihi2``), from Intel's Loihi 2 brief ("Taking Neuromorphic
Computing to the Next Level with Loihi 2", 2021) and Lava's fixed-point
process models (lava-nc 0.10.0, ``lava/proc/lif``, ``lava/proc/dense``):

* 128 neuro-cores per chip, up to 8,192 neurons per core (1M per chip);
* ~120M synapses per chip, i.e. ~937k 8-bit synapse entries per core, which
  we use as the per-core synapse-memory budget for the estimate;
* 8-bit weight mantissas, weight_exp in [-8, 7]; 12-bit du/dv (du = -1 is
  the no-decay convention); 17-bit vth; 13-bit bias mantissa with a 3-bit
  exponent; 6-bit synaptic delays (<= 63); 24-bit u and v.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from models import fixed_point as fx
from models.errors import SpikeportError, out_of_range
from toolchain import ir as irm


@dataclass(frozen=True)
class Target:
    name: str
    neurons_per_core: int
    cores_per_chip: int
    synapses_per_core: int


TARGETS = {"loihi2": Target("loihi2", neurons_per_core=8192, cores_per_chip=128,
                            synapses_per_core=120_000_000 // 128)}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise SpikeportError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    return TARGETS[name]


# ------------------------------------------------------------------- structure
def infer_shapes(ir: irm.IR) -> dict:
    """Output size of every node, checking that sizes agree along every edge."""
    sizes = {name: op.size for name, op in ir.nodes()}
    for name, op in ir.nodes():
        srcs = ir.inputs(name)
        if isinstance(op, irm.Input):
            if srcs:
                raise SpikeportError(f"{name}: an Input node cannot have inputs (has {srcs})")
        elif isinstance(op, irm.SYNAPSES):
            _expect_one_source(name, srcs, (irm.Input, *irm.NEURONS), ir)
            if op.n_in != sizes[srcs[0]]:
                raise SpikeportError(f"{name}: weight has {op.n_in} inputs but source {srcs[0]!r} has {sizes[srcs[0]]} channels")
        elif isinstance(op, irm.NEURONS):
            for src in srcs:
                if not isinstance(ir.op(src), irm.SYNAPSES):
                    raise SpikeportError(f"{name}: input {src!r} is a {ir.op(src).kind}; neurons take synapses")
                if sizes[src] != op.n:
                    raise SpikeportError(f"{name}: synapse {src!r} has {sizes[src]} outputs, population has {op.n} neurons")
        elif isinstance(op, irm.Output):
            _expect_one_source(name, srcs, irm.NEURONS, ir)
            if sizes[srcs[0]] != op.n:
                raise SpikeportError(f"{name}: size {op.n} does not match {srcs[0]!r} ({sizes[srcs[0]]})")
    return sizes


def _expect_one_source(name, srcs, types, ir):
    if len(srcs) != 1 or not isinstance(ir.op(srcs[0]), types):
        kinds = [ir.op(s).kind for s in srcs]
        raise SpikeportError(f"{name}: needs exactly one source of type {'/'.join(t.__name__ for t in types)}, has {kinds}")


def check_reachable(ir: irm.IR) -> None:
    """Every node must be reachable from an Input."""
    inputs = ir.names(irm.Input)
    if not inputs:
        raise SpikeportError(f"{ir.name}: the graph has no Input node")
    seen = set(inputs)
    for src in inputs:
        seen |= nx.descendants(ir.graph, src)
    orphans = [n for n in ir.graph.nodes if n not in seen]
    if orphans:
        raise SpikeportError(f"{orphans[0]}: not reachable from any input")


# ------------------------------------------------------------------ parameters
def _check_range(node, param, values, lo, hi, note=""):
    arr = np.atleast_1d(np.asarray(values))
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise out_of_range(node, param, _plain(bad), f"[{lo}, {hi}]{note}")


def _plain(x):
    x = np.asarray(x).item()
    return int(x) if float(x).is_integer() else x


def _check_int(node, param, value):
    if not float(value).is_integer():
        raise SpikeportError(f"{node}: {param}={value} must be an integer")


def check_synapse_fixed(name: str, op) -> None:
    f = op.fixed
    _check_range(name, "weight_exp", f.weight_exp, *fx.WEIGHT_EXP_RANGE)
    _check_range(name, "num_weight_bits", f.num_weight_bits, 1, fx.WEIGHT_BITS)
    lo, hi = fx.weight_clip_range(fx.SignMode(f.sign_mode))
    _check_range(name, "weights", f.weights, lo, hi, f" (8-bit, sign mode {fx.SignMode(f.sign_mode).name})")
    _check_range(name, "num_message_bits", op.num_message_bits, 0, 32)


def check_delays(name: str, op) -> None:
    if op.delays is not None:
        _check_range(name, "delay", op.delays, 0, fx.MAX_DELAY, " (Loihi 2: 6-bit delays)")


def check_lif_fixed(name: str, op) -> None:
    f = op.fixed
    for param in ("du", "dv", "vth"):
        _check_int(name, param, getattr(f, param))
    _check_range(name, "du", f.du, *fx.DU_RANGE, " (12 bits; -1 = no current decay)")
    _check_range(name, "dv", f.dv, *fx.DV_RANGE, " (12 bits)")
    _check_range(name, "vth", f.vth, *fx.VTH_RANGE, " (17 bits)")
    _check_range(name, "bias_mant", f.bias_mant, *fx.BIAS_MANT_RANGE, " (13 bits)")
    _check_range(name, "bias_exp", f.bias_exp, *fx.BIAS_EXP_RANGE, " (3 bits)")
    _check_range(name, "u", f.u, -fx.U_MAX + 1, fx.U_MAX, " (24 bits)")
    _check_range(name, "v", f.v, -fx.V_SAT, fx.V_SAT, " (24 bits)")
    if isinstance(op, irm.LIFReset) and op.reset_interval < 1:
        raise out_of_range(name, "reset_interval", op.reset_interval, "[1, inf)")


def validate(ir: irm.IR, target: str = "loihi2", require_fixed: bool = False) -> dict:
    """Structure, shapes and (fixed) parameter ranges; returns the node sizes."""
    get_target(target)
    sizes = infer_shapes(ir)
    check_reachable(ir)
    for name, op in ir.nodes(*irm.SYNAPSES):
        check_delays(name, op)
        if op.fixed is not None:
            check_synapse_fixed(name, op)
        elif require_fixed:
            raise SpikeportError(f"{name}: no fixed-point parameters (compile the model first)")
    for name, op in ir.nodes(*irm.NEURONS):
        if op.fixed is not None:
            check_lif_fixed(name, op)
        elif require_fixed:
            raise SpikeportError(f"{name}: no fixed-point parameters (compile the model first)")
    return sizes


# ----------------------------------------------------------------- core mapping
def core_mapping(ir: irm.IR, target: str = "loihi2") -> dict:
    """Estimate cores and synapse memory per neuron population (incoming synapses
    are stored on the population's cores)."""
    tgt = get_target(target)
    rows, total = [], 0
    for name, op in ir.nodes(*irm.NEURONS):
        synapses = sum(_synapse_count(ir.op(s)) for s in ir.inputs(name))
        cores = max(math.ceil(op.n / tgt.neurons_per_core), math.ceil(synapses / tgt.synapses_per_core), 1)
        rows.append(dict(node=name, neurons=op.n, synapses=synapses, cores=cores,
                         synapse_bytes=synapses))
        total += cores
    return dict(target=tgt.name, populations=rows, cores=total,
                chips=math.ceil(total / tgt.cores_per_chip),
                neurons=sum(r["neurons"] for r in rows), synapses=sum(r["synapses"] for r in rows))


def _synapse_count(op) -> int:
    w = op.fixed.weights if op.fixed is not None else op.weight
    return int(np.count_nonzero(w)) if isinstance(op, irm.Sparse) else int(w.size)
