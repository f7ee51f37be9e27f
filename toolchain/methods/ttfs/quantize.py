"""Quantization of a lowered TTFS IR: state bounds (worst case or calibrated) -> `toolchain.quantize`.

Times are in units of tau_syn; a step is ``dt`` (the IR's ``meta["ttfs"]``).
"""
from __future__ import annotations

import numpy as np

from models.errors import SpikeportError
from toolchain import engines
from toolchain.ir import passes
from toolchain.methods.ttfs.lower import encode_input, layer_nodes
from toolchain.methods.ttfs.readout import first_spike_index
from toolchain.quantize import HEADROOM, quantize


def _feedforward_sums(ir, node: str):
    w = ir.op(f"{node}.dense").weight
    return np.clip(w, 0, None).sum(1), np.clip(-w, 0, None).sum(1)


def _inhibition(ir, node: str) -> np.ndarray:
    name = f"{node}.inhibit"
    return -np.diag(ir.op(name).weight) if name in ir.graph else np.zeros(ir.op(node).n)


LATCH_STATS = {"u": 1.0, "v": 1.0}


def bound_stats(ir) -> dict:
    """Worst-case state bounds per TTFS population (instead of data calibration).

    Each input spikes once and each hidden neuron once. With P, N the sums of a
    neuron's positive and negative feed-forward weights and H its inhibition:
    ``|u| <= max(P, N + H)`` and, up to the first spike, ``-N/du <= v <= vth + P``; after
    it v no longer matters (see above). Hard bounds, so `quantize_ttfs` removes the
    quantizer's extra headroom. Latches: u = v = 1.
    """
    stats = {}
    for node in layer_nodes(ir):
        op = ir.op(node)
        pos, neg = _feedforward_sums(ir, node)
        u = float(np.max(np.maximum(pos, neg + _inhibition(ir, node))))
        v = float(np.max(np.maximum(op.vth + pos, neg / op.du)))
        stats[node] = {"u": u, "v": v}
        if f"{node}.latch" in ir.graph:
            stats[f"{node}.latch"] = dict(LATCH_STATS)
    return stats


def data_stats(ir, x_cal) -> dict:
    """Calibration on the encoded ``x_cal`` (float emulator): peak |u| over the whole run,
    peak |v| up to each neuron's first spike (and ``vth + peak u``, the pre-reset value at
    the spike step). What v does after a neuron's first spike never matters (hidden: u <= 0
    from then on; output: only the first spike is read), so it is not covered and may
    saturate (with refire="allow" the hidden v is covered at every step). The quantizer
    adds its 2x headroom. Latches: u = v = 1."""
    nodes = layer_nodes(ir)
    out = engines.run("float-emulator", ir, encode_input(x_cal, ir.meta), [f"{n}/{f}" for n in nodes for f in "suv"])
    stats = {}
    for node in nodes:
        s, u, v = (np.asarray(out[f"{node}/{f}"]) for f in "suv")
        first = first_spike_index(s)
        if not (f"{node}.latch" in ir.graph or node == nodes[-1]):  # refire="allow": every step matters
            first = np.full_like(first, np.inf)
        before = np.arange(s.shape[1])[None, :, None] < first[:, None, :]
        u_peak = float(np.abs(u).max(initial=0.0))
        v_peak = float(np.abs(np.where(before, v, 0.0)).max(initial=0.0))
        stats[node] = {"u": u_peak, "v": max(v_peak, ir.op(node).vth + u_peak)}
        if f"{node}.latch" in ir.graph:
            stats[f"{node}.latch"] = dict(LATCH_STATS)
    return stats


def quantize_ttfs(ir, x_cal=None, stats: str = "data"):
    """Quantize a lowered TTFS IR with `toolchain.quantize` -> (fixed IR, reports).

    ``stats="data"`` (default): `data_stats` on ``x_cal`` (training samples), with the
    quantizer's usual 2x headroom. ``"bound"``: hard worst-case bounds (`bound_stats`; no
    extra headroom) -- for 784 inputs so loose (N/du) that the synaptic input loses
    precision (a negative weight_exp floors every step's summed input).
    Each layer's scale is then lowered until its feed-forward weights fill their 8-bit grid,
    whatever it costs (``max_snap_loss`` 2: at most one bit of state headroom).
    """
    if stats == "bound":
        raw = {node: {k: val / HEADROOM for k, val in st.items()} for node, st in bound_stats(ir).items()}
    elif stats == "data":
        if x_cal is None:
            raise SpikeportError("ttfs: stats='data' needs calibration inputs x_cal")
        raw = data_stats(ir, x_cal)
    else:
        raise SpikeportError(f"ttfs: stats={stats!r} is not 'bound' or 'data'")
    fixed, reports = quantize(ir, raw, max_snap_loss={node: 2.0 for node in layer_nodes(ir)})
    fixed.meta["ttfs"]["stats"] = stats
    passes.validate(fixed, require_fixed=True)
    return fixed, reports

