"""Post-training quantization: float IR -> fixed-point IR (Lava LIF/Dense integers).

For each LIF population one scale ``lam`` maps float state to integer state
(``v_int ~ 64 * lam * v``; see `models.fixed_params`). Calibration runs the
float network on sample inputs and records the largest |u| and |v| each
population reaches; ``lam`` is then the largest scale such that

* that state, times a headroom factor, stays inside 24 bits (no saturation,
  no wrap),
* the threshold mantissa fits 17 bits,
* every incoming synapse's weight exponent stays <= 7.

``lam`` is then lowered (`snap_to_weight_grid`) until the largest weight of
the population's main input synapse lands exactly on the top of its 8-bit
grid, when that gains the weights more resolution than it costs the state
(by default a factor below sqrt 2; ``max_snap_loss`` sets it per population,
up to 2 = always).
Each synapse's ``weight_exp`` is the smallest that puts ``lam * max|W|`` on
the 8-bit grid of its sign mode (the report's "range use": 99-100 % for a
filled main synapse, 50-100 % otherwise).
Every clipped, zeroed or moved value is counted in the report; nothing is
clipped silently, and a synapse whose weights would all vanish is an error.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from models import fixed_params as fp
from models import fixed_point as fx
from models.errors import SpikeportError
from toolchain import engines
from toolchain import ir as irm

HEADROOM = 2.0  # calibrated state * HEADROOM must fit in 24 bits
STATE_LIMIT = fx.V_SAT


@dataclass
class LayerReport:
    """What quantization did to one neuron population and its incoming synapses."""

    node: str
    lam: float
    limited_by: str
    du: int
    dv: int
    vth: int
    vth_error: float
    bias_max_error: float
    bias_clipped: int
    max_abs_u: float
    max_abs_v: float
    state_use: float  # expected peak |state| / 2**23
    synapses: list


@dataclass
class SynapseReport:
    node: str
    weight_exp: int
    sign_mode: str
    range_use: float  # max |W_int| / largest representable
    clipped: int
    rounded_to_zero: int
    nonzero: int
    max_rel_error: float


def calibration_stats(ir: irm.IR, x: np.ndarray) -> dict:
    """Peak |u| and |v| (pre-reset membrane bound) per neuron node, from the float engine."""
    names = ir.names(irm.Neuron)
    for name in names:
        quantization_rule(name, ir.op(name))
    out = engines.run("float-emulator", ir, x, names)
    stats = {}
    for name in names:
        op = ir.op(name)
        u = np.abs(out[f"{name}/u"]).max(initial=0.0)
        v = np.abs(out[f"{name}/v"]).max(initial=0.0)
        stats[name] = {"u": float(u), "v": float(max(v, op.vth))}
    return stats


def choose_scale(ir: irm.IR, node: str, stat: dict) -> tuple[float, str]:
    """Largest lam that keeps state, threshold and weight exponents in range."""
    op = ir.op(node)
    peak = max(stat["u"], stat["v"], abs(op.vth), 1e-12)
    candidates = {"state range (24 bits)": STATE_LIMIT / (HEADROOM * float(1 << fx.ACT_SHIFT) * peak),
                  "threshold (17 bits)": fx.VTH_RANGE[1] / abs(op.vth)}
    for syn in ir.inputs(node):
        w = np.abs(ir.op(syn).weight).max(initial=0.0)
        if w > 0:
            limit = 254 * 2.0 ** fx.WEIGHT_EXP_RANGE[1]
            candidates[f"weight_exp <= {fx.WEIGHT_EXP_RANGE[1]} ({syn})"] = limit / w
    reason = min(candidates, key=candidates.get)
    return candidates[reason], reason


SNAP_MAX_LOSS = math.sqrt(2.0)  # snap when the weights gain more resolution than the state loses


def snap_to_weight_grid(ir: irm.IR, node: str, lam: float,
                        max_loss: float = SNAP_MAX_LOSS) -> tuple[float, Optional[str]]:
    """(scale, synapse): the largest scale <= ``lam`` at which the population's main input
    synapse (most nonzero weights) puts its largest |weight| exactly on the top of its 8-bit
    grid (254 or 255 times ``2**weight_exp``), if that costs at most a factor ``max_loss``.

    At ``lam`` the largest weight uses a fraction r in (1/2, 1] of the grid; the snapped
    scale is ``lam / (2r)``: the weights gain a factor 1/r of resolution, the state loses
    2r. The default takes the trade when the gain is the larger (r < 1/sqrt 2); 2 takes it
    always. Idempotent. ``lam`` itself when the exponent needed is below -8 or there is no weight.
    """
    synapses = [s for s in ir.inputs(node) if isinstance(ir.op(s), irm.Synapse)]
    if not synapses:
        return lam, None
    main = max(synapses, key=lambda s: int(np.count_nonzero(ir.op(s).weight)))
    w = ir.op(main).weight
    top = float(np.abs(w).max(initial=0.0))
    if top == 0:
        return lam, main
    step = fp.weight_grid_step(fp.sign_mode_of(w))
    limit = 255 // step * step
    exp = math.floor(math.log2(lam * top / limit) + 1e-9)  # tolerance: a snapped scale stays put
    snapped = min(lam, limit * 2.0 ** exp / top * (1 - 1e-12))  # just below: weight_exp_for picks exp
    if exp < fx.WEIGHT_EXP_RANGE[0] or lam / snapped > max_loss:
        return lam, main
    return snapped, main


def quantize(ir: irm.IR, stats: dict, max_snap_loss: Optional[dict] = None) -> tuple[irm.IR, list[LayerReport]]:
    """A copy of ``ir`` with fixed-point records on every synapse and neuron.

    ``max_snap_loss``: population -> the largest factor of state resolution its scale may
    give up to fill its main synapse's weight grid (`snap_to_weight_grid`'s ``max_loss``;
    2 = always); populations not named use `SNAP_MAX_LOSS` (fill it when that pays).
    """
    out = ir.copy()
    reports = []
    for node, op in out.nodes(irm.Neuron):
        rule = quantization_rule(node, op)
        if node not in stats:
            raise SpikeportError(f"{node}: no calibration statistics (was the node reached by the inputs?)")
        lam, reason = choose_scale(out, node, stats[node])
        snapped, main = snap_to_weight_grid(out, node, lam, (max_snap_loss or {}).get(node, SNAP_MAX_LOSS))
        if snapped < lam:
            reason += f"; {snapped / lam - 1:+.1%} to fill {main}'s 8-bit grid"
        lam = snapped
        synapses = [_quantize_synapse(out, syn, lam) for syn in out.inputs(node)]
        reports.append(rule(node, op, lam, reason, stats[node], synapses))
    out.meta["quantization"] = {r.node: asdict(r) for r in reports}
    return out, reports


def quantization_rule(node: str, op: irm.Neuron):
    """The rule that gives a neuron op type its fixed-point record at scale ``lam``
    (registered in `RULES` by op type or nearest base); a one-line error otherwise."""
    for cls in type(op).__mro__:
        if cls in RULES:
            return RULES[cls]
    raise SpikeportError(f"{node}: op {op.kind} has no post-training quantization rule "
                         f"(rules exist for {', '.join(t.__name__ for t in RULES)})")


def _quantize_synapse(ir: irm.IR, name: str, lam: float) -> SynapseReport:
    op = ir.op(name)
    w = op.weight
    mode = fp.sign_mode_of(w)
    exp = fp.weight_exp_for(np.abs(w).max(initial=0.0), lam, mode)
    scale = fp.SynapseScale(exp)
    w_int, mode = fp.quantize_weights(w, lam, scale, mode)
    nonzero = int((w != 0).sum())
    zeroed = int(((w != 0) & (w_int == 0)).sum())
    if nonzero and zeroed == nonzero:
        raise SpikeportError(
            f"{name}: all {nonzero} nonzero weights round to zero (max|W|={np.abs(w).max():.3g}, "
            f"scale lam={lam:.4g}, weight_exp={exp} >= limit {fx.WEIGHT_EXP_RANGE[0]})")
    op.fixed = irm.SynapseFixed(weights=w_int.astype(np.int64), weight_exp=exp, num_weight_bits=8,
                                sign_mode=int(mode))
    approx = w_int * 2.0 ** exp / lam
    rel = np.abs(approx - w).max(initial=0.0) / max(np.abs(w).max(initial=0.0), 1e-30)
    lo, hi = fx.weight_clip_range(mode)
    return SynapseReport(node=name, weight_exp=exp, sign_mode=mode.name,
                         range_use=float(np.abs(w_int).max(initial=0) / max(abs(lo), hi)),
                         clipped=fp.count_clipped(w, lam, scale, mode), rounded_to_zero=zeroed,
                         nonzero=nonzero, max_rel_error=float(rel))


def _quantize_neuron(node, op: irm.LIF, lam, reason, stat, synapses) -> LayerReport:
    du, dv = fp.decays_to_fixed(op.du, op.dv)
    vth = fp.threshold_to_fixed(op.vth, lam)
    mant, exp, err = fp.bias_to_fixed(op.bias, lam)
    lo, hi = fx.BIAS_MANT_RANGE
    clipped = int(((mant < lo) | (mant > hi)).sum())
    if clipped:
        worst = float(np.abs(op.bias).max())
        raise SpikeportError(f"{node}: bias={worst:.4g} needs a mantissa outside [{lo}, {hi}] at exponent "
                             f"{fx.BIAS_EXP_RANGE[1]} (scale lam={lam:.4g}); {clipped} biases affected")
    zeros = np.zeros(op.n, dtype=np.int64)
    op.fixed = irm.LIFFixed(du=du, dv=dv, vth=vth, bias_mant=mant.astype(np.int64),
                            bias_exp=exp.astype(np.int64), u=zeros, v=zeros)
    peak = float(1 << fx.ACT_SHIFT) * lam * max(stat["u"], stat["v"])
    return LayerReport(node=node, lam=float(lam), limited_by=reason, du=du, dv=dv, vth=vth,
                       vth_error=float(vth / lam - op.vth),
                       bias_max_error=float(np.abs(err).max(initial=0.0) / (64 * lam)),
                       bias_clipped=clipped, max_abs_u=stat["u"], max_abs_v=stat["v"],
                       state_use=peak / fx.U_MAX, synapses=synapses)


def _refuse_qif(node: str, op: irm.QIF, *args):
    raise SpikeportError(f"{node}: QIF is not quantized by calibration: its fixed-point record follows from "
                         f"its step and thresholds (spikeport compile of a smooth checkpoint makes it)")


def _refuse_gate_qif(node: str, op: irm.GateQIF, *args):
    raise SpikeportError(f"{node}: GateQIF is not quantized by calibration: its fixed-point record follows from "
                         f"its step, zone and thresholds (spikeport compile of a gate checkpoint makes it)")


# neuron op type -> (node, op, lam, reason, stat, synapses) -> LayerReport
RULES = {irm.LIF: _quantize_neuron, irm.QIF: _refuse_qif, irm.GateQIF: _refuse_gate_qif}


def read_reports(meta: dict) -> list[LayerReport]:
    """The quantization report an IR's ``meta["quantization"]`` holds (``{node: LayerReport fields}``,
    as `quantize` writes it), as `LayerReport` records with `SynapseReport` synapses; [] when absent.

    Anything else (not an object, a missing, unknown or mistyped field) is a one-line
    `SpikeportError` naming the node and the field.
    """
    if "quantization" not in meta:
        return []
    q = meta["quantization"]
    if not isinstance(q, dict):
        raise SpikeportError(f"quantization metadata: is a JSON {type(q).__name__}, expected an object "
                             "{node: report}")
    reports = [_record(LayerReport, r, f"quantization metadata for {node!r}") for node, r in q.items()]
    for r, node in zip(reports, q):
        if not isinstance(r.synapses, list):
            raise SpikeportError(f"quantization metadata for {node!r}: synapses is not a list")
        r.synapses = [_record(SynapseReport, s, f"quantization metadata for {node!r}, synapse {i}")
                      for i, s in enumerate(r.synapses)]
    return reports


_READABLE = {int: (int,), float: (int, float), str: (str,), list: (list,)}


def _record(cls, data, where: str):
    """``cls(**data)`` after checking that ``data`` has exactly its fields, each of its type."""
    if not isinstance(data, dict):
        raise SpikeportError(f"{where}: is a JSON {type(data).__name__}, expected an object")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names if n not in data]
    unknown = [k for k in data if k not in names]
    if missing or unknown:
        what = f"missing field {missing[0]!r}" if missing else f"unknown field {unknown[0]!r}"
        raise SpikeportError(f"{where}: {what}")
    for name in names:
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, _READABLE[hints[name]]):
            raise SpikeportError(f"{where}: {name}={value!r} is not {hints[name].__name__}")
    return cls(**data)


def format_report(reports: list[LayerReport]) -> str:
    """A human-readable table of the quantization report."""
    lines = [f"{'node':<18}{'lam':>10} {'du':>5} {'dv':>5} {'vth':>7} {'state use':>10}  limited by"]
    for r in reports:
        lines.append(f"{r.node:<18}{r.lam:>10.4g} {r.du:>5} {r.dv:>5} {r.vth:>7} {r.state_use:>9.1%}  {r.limited_by}")
        for s in r.synapses:
            s = s if isinstance(s, SynapseReport) else SynapseReport(**s)
            lines.append(f"  {s.node:<22} exp={s.weight_exp:>3} {s.sign_mode:<11} range use {s.range_use:6.1%}"
                         f"  clipped {s.clipped}  zeroed {s.rounded_to_zero}/{s.nonzero}"
                         f"  max rel err {s.max_rel_error:.2%}")
    return "\n".join(lines)

