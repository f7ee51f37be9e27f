"""`spikeport inspect`: what an IR file holds, for people and for scripts.

``describe`` gives ``{"nodes": [...], "edges": [[src, dst], ...]}`` where each
node has ``name``, ``op``, ``shape`` and ``fixed``: the fixed-point keyword
arguments exactly as they are handed to Lava (None for a float IR). Both views
read each op's own fields, so a new op type is described without an entry here.
A reader's ``meta["format_notes"]`` (netx: what netx hands Lava, and where it
deviates from the trained network) are listed at the end.
Both describe an invalid network too (as `toolchain.formats.read` parses it):
what it holds is shown as it is, unreadable quantization metadata as
"unreadable"; naming the violations is `toolchain.formats.problems`' job.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.ir import passes
from toolchain.quantize import format_report, read_reports


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _shape(op) -> list:
    if isinstance(op, irm.Synapse):
        return list(op.weight.shape)
    return [op.size]


def _fixed_kwargs(op) -> dict:
    """What Lava receives (``lava_kwargs``) or, for an op without one, its fixed record's fields."""
    if hasattr(op, "lava_kwargs"):
        return op.lava_kwargs()
    return {f.name: getattr(op.fixed, f.name) for f in dataclasses.fields(op.fixed)}


def describe(ir: irm.IR) -> dict:
    """JSON-ready description of every node and edge."""
    nodes = []
    for name, op in ir.nodes():
        fixed = None
        if getattr(op, "fixed", None) is not None:
            fixed = {k: _jsonable(v) for k, v in _fixed_kwargs(op).items()}
        nodes.append(dict(name=name, op=op.kind, shape=_shape(op), fixed=fixed, source=op.source))
    out = dict(name=ir.name, fixed=ir.is_fixed, nodes=nodes, edges=[list(e) for e in ir.graph.edges])
    if ir.meta.get("format_notes"):
        out["format_notes"] = list(ir.meta["format_notes"])
    return out


def _fields(record, skip=("source", "fixed", "n")) -> str:
    """``name=value`` for a record's scalar fields, ``name [min, max]`` for its arrays."""
    parts = []
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.name in skip or value is None:
            continue
        if isinstance(value, np.ndarray):
            if value.size and f.name not in ("weight", "weights"):
                parts.append(f"{f.name} [{value.min():.4g}, {value.max():.4g}]")
        elif isinstance(value, float):
            parts.append(f"{f.name}={value:.4g}")
        else:
            parts.append(f"{f.name}={value}")
    return " ".join(parts)


def _param_summary(op) -> str:
    text = ""
    if isinstance(op, irm.Feed):
        return _fields(op) + (f" | {_fields(op.fixed)}" if op.fixed is not None else "")
    if isinstance(op, irm.Synapse):
        text = (f"W {op.weight.shape[0]}x{op.weight.shape[1]} float |W|max={np.abs(op.weight).max(initial=0):.3g}"
                + (f" delays {op.delays.min()}..{op.delays.max()}" if op.delays is not None else ""))
        if op.fixed is not None:
            f = op.fixed
            text += (f" | mantissas [{f.weights.min()}, {f.weights.max()}] exp={f.weight_exp}"
                     f" bits={f.num_weight_bits} sign={f.sign_mode}")
        return text
    if isinstance(op, irm.Neuron):
        text = _fields(op, skip=("source", "fixed", "n", "bias"))
        if op.fixed is not None:
            text += " | " + _fields(op.fixed, skip=(*op.state_vars, "bias_exp"))  # initial state: not shown
    return text


def format_description(ir: irm.IR) -> str:
    """Human-readable graph, parameter summary and resource estimate."""
    kind = "fixed-point" if ir.is_fixed else "float"
    lines = [f"IR {ir.name!r} ({kind} parameters; {ir.meta.get('quantization_mode', 'not quantized')})", ""]
    for name, op in ir.nodes():
        srcs = ", ".join(ir.inputs(name)) or "-"
        lines.append(f"  {name:<18} {op.kind:<10} size {op.size:<6} <- {srcs:<28} {_param_summary(op)}")
    est = passes.core_mapping(ir)
    lines += ["", f"resources on {est['target']}: {est['neurons']} neurons, {est['synapses']} synapses, "
                  f"{est['cores']} cores, {est['chips']} chip(s)"]
    for row in est["populations"]:
        lines.append(f"  {row['node']:<18} {row['neurons']:>6} neurons {row['synapses']:>9} synapses "
                     f"-> {row['cores']} core(s)")
    if "quantization" in ir.meta:
        lines += ["", "quantization:", _quantization_text(ir.meta)]
    if ir.meta.get("format_notes"):  # what the file's reader says about it (netx: the integers netx hands Lava)
        lines += ["", f"{ir.meta.get('format', 'format')} notes:", *(f"  {note}" for note in ir.meta["format_notes"])]
    return "\n".join(lines)


def _quantization_text(meta: dict) -> str:
    """The quantization report table, or one line saying why the metadata is unreadable."""
    try:
        return format_report(read_reports(meta))
    except SpikeportError as e:
        return f"  unreadable ({e})"
