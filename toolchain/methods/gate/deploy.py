"""A trained gate network as an IR: gate QIF neurons sending graded charge, a current-based readout.

Graph: ``input`` (graded Input: the encoded trial, `encode`) -> ``in.dense`` (U) -> ``rec``
(`toolchain.ir.ops.gate_qif.GateQIF`, bias h b, gain h, du = decay) -> ``rec.dense`` (W,
graded) -> ``rec``; ``rec`` -> ``out.dense`` (O, graded) -> ``readout`` (LIF: its current
u is the readout trace, O r, never spiking) -> ``output``.

Time: engine step t (1-based) is the model's step t (`models.gate`): the recurrent current
u[t] = c[t] + U i[t-1] as in the model (the input reaches the neurons one synapse hop after
it is presented). The Input's Dense adds the hop but also Lava's current decay, so the
encoder sends ``e[m] = i[m] - (1 - decay) i[m-1]`` (array index m, i[-1] = 0), whose
current is exactly U i. The readout is one more hop: the model's o[n] is the readout's u
at engine step n + 1 plus o_b (added on the host); a trial of T steps runs T + 1 engine steps.

Fixed point (`quantize_gate`): X = x 2**frac with frac = 22 - ceil(log2 x_th), h = 2**-k,
the current u = (c + U i) 2**(frac - m) with ``u_shift = k - m``, where the headroom m in 0..k
is the least that keeps twice the largest |c + U i| of the calibration trials inside Lava's
24-bit current; the zone width 2**(payload_bits + gate_shift) in X units (payload_bits = 6: a
full passage sends 64); weights on Lava's 8-bit grid at scale 2**(frac - m - 6 - payload_bits)
(W), 2**(frac - m - 6 - INPUT_BITS) (U; inputs sent as round(e 2**INPUT_BITS)) and
2**(readout_frac - 6 - payload_bits) (O).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from models import fixed_params as fp
from models.errors import SpikeportError
from models.gate import GateNetwork, drive_of
from toolchain import ir as irm
from toolchain import scaleout
from toolchain.ir import passes
from toolchain.methods.gate.train import gate_config, load_checkpoint
from toolchain.tasks.gate_tasks import Trials, make_trials
from toolchain.verify.compare import combine, compare_bit_identity

PAYLOAD_BITS = 6
INPUT_BITS = 8  # graded input values: round(e * 2**INPUT_BITS)
MESSAGE_BITS = 8  # num_message_bits of the graded synapses (signed payloads up to 64)
INPUT_MESSAGE_BITS = 16
RECORD = ("rec/u", "rec/x", "rec/q", "rec/s", "readout/u")


def lower_gate(net: GateNetwork) -> irm.IR:
    """The float IR of a gate network (module docstring)."""
    n = net.neuron
    k = -math.log2(n.h)
    if k != int(k):
        raise SpikeportError(f"gate: h = dt/tau_v = {n.h:g} is not a power of two (dt={n.dt}, tau_v={n.tau_v}); "
                             "the fixed-point neuron steps by a shift")
    if n.gate != "box":
        raise SpikeportError(f"gate: gate={n.gate!r} has no fixed-point form (its sine needs a table); "
                             "deploy a network trained with gate='box'")
    n_in, N, n_out = net.sizes
    W, U = net.recurrent().detach().double().numpy(), net.U.detach().double().numpy()
    ir = irm.IR("gate")
    ir.add("input", irm.Input(n_in, num_message_bits=INPUT_MESSAGE_BITS))
    ir.add("in.dense", irm.Dense(U, num_message_bits=INPUT_MESSAGE_BITS), ["input"])
    ir.add("rec", irm.GateQIF(N, h=n.h, du=n.decay, gain=n.h, x_th=n.x_th, x_reset=n.x_reset, x_a=n.x_a,
                              width=n.width, bias=n.h * net.b.detach().double().numpy(),
                              x=np.full(N, n.x_reset)), ["in.dense"])
    ir.add("rec.dense", irm.Dense(W, num_message_bits=MESSAGE_BITS), ["rec"])
    ir.graph.add_edge("rec.dense", "rec")
    ir.add("out.dense", irm.Dense(net.O.detach().double().numpy(), num_message_bits=MESSAGE_BITS), ["rec"])
    ir.add("readout", irm.LIF(n_out, du=n.decay, dv=4095 / 4096, vth=1e9), ["out.dense"])
    ir.add("output", irm.Output(n_out), ["readout"])
    ir.meta["gate"] = dict(k=int(k), decay=n.decay, o_bias=net.o_b.detach().double().numpy().tolist(),
                           sizes=list(net.sizes))
    passes.validate(ir)
    return ir


def _synapse(ir: irm.IR, name: str, lam: float) -> str:
    """Quantize Dense ``name`` at scale ``lam`` (integer = lam W / 2**weight_exp); a report line."""
    syn = ir.op(name)
    mode = fp.sign_mode_of(syn.weight)
    exp = fp.weight_exp_for(float(np.abs(syn.weight).max(initial=0.0)), lam, mode)
    weights, _ = fp.quantize_weights(syn.weight, lam, fp.SynapseScale(exp), mode)
    syn.fixed = irm.SynapseFixed(weights, weight_exp=exp, sign_mode=int(mode))
    step = 2.0 ** exp / lam * fp.weight_grid_step(mode)
    return f"{name}: weight_exp={exp}, weight step {step:.3g}, max |w| {np.abs(syn.weight).max(initial=0):.3g}"


def current_headroom(frac: int, k: int, max_current: float) -> int:
    """The least m in 0..k with 2 ``max_current`` 2**(frac - m) inside the 24-bit current (module
    docstring); a current that needs more is refused in one line."""
    m = max(0, frac - math.floor(math.log2(2 ** 22 / max(max_current, 1e-9))))
    if m > k:
        raise SpikeportError(f"rec: current |c + U i| up to {max_current:.4g} on the calibration trials needs "
                             f"2**-{m} headroom, beyond h = 2**-{k} (u_shift = k - m >= 0): the 24-bit current "
                             "cannot hold it")
    return m


def quantize_gate(ir: irm.IR, max_readout: float, max_current: float) -> tuple[irm.IR, list]:
    """The IR with fixed records (module docstring); ``max_readout`` bounds |O r| (sets its scale),
    ``max_current`` |c + U i| (the current's headroom)."""
    meta, rec, out = ir.meta["gate"], ir.op("rec"), ir.op("readout")
    frac = 22 - math.ceil(math.log2(rec.x_th))
    shift = frac + round(math.log2(rec.width)) - PAYLOAD_BITS
    if 2.0 ** round(math.log2(rec.width)) != rec.width or shift < 0:
        raise SpikeportError(f"rec: width={rec.width:g} is not a power of two of at least 2**{PAYLOAD_BITS - frac} "
                             "(a full passage must be exactly 2**payload_bits)")
    readout_frac = min(16, 21 - math.ceil(math.log2(max(max_readout, 1e-3))))
    scale, k = 2.0 ** frac, meta["k"]
    m = current_headroom(frac, k, max_current)
    du = int(round(meta["decay"] * 4096)) - 1
    rec.fixed = irm.GateQIFFixed(k=k, frac=frac, du=du, u_shift=k - m, x_th=int(round(rec.x_th * scale)),
                                 x_reset=int(round(rec.x_reset * scale)), x_a=int(round(rec.x_a * scale)),
                                 gate_shift=shift, payload_bits=PAYLOAD_BITS, bias=np.round(rec.bias * scale),
                                 x=np.round(rec.x * scale), u=np.zeros(rec.n))
    lines = [f"rec: frac={frac}, k={k}, du={du}, x_th={rec.fixed.x_th}, x_reset={rec.fixed.x_reset}, "
             f"x_a={rec.fixed.x_a}, gate_shift={shift}, payload 2**{PAYLOAD_BITS} per passage",
             f"rec: current u = (c + U i) 2**{frac - m}, u_shift={k - m} (|c + U i| <= {max_current:.3g} on the "
             "calibration trials)",
             _synapse(ir, "rec.dense", 2.0 ** (frac - m - 6 - PAYLOAD_BITS)),
             _synapse(ir, "in.dense", 2.0 ** (frac - m - 6 - INPUT_BITS)),
             _synapse(ir, "out.dense", 2.0 ** (readout_frac - 6 - PAYLOAD_BITS))]
    out.fixed = irm.LIFFixed(du=du, dv=4095, vth=(1 << 17) - 1, bias_mant=np.zeros(out.n), bias_exp=np.zeros(out.n),
                             u=np.zeros(out.n), v=np.zeros(out.n))
    lines.append(f"readout: u = O r 2**{readout_frac} (|O r| <= {max_readout:.3g} on the calibration trials)")
    meta.update(frac=frac, readout_frac=readout_frac)
    passes.validate(ir, require_fixed=True)
    return ir, lines


def compile_gate(path, calibration=None):
    """Checkpoint -> (float64 network, fixed IR, report lines). The readout scale comes from the
    float model's largest |O r| on ``calibration`` trials (default: 64 training-like trials)."""
    net, meta = load_checkpoint(path)
    net = net.double().eval()
    cfg = gate_config(meta["task"], **{k: v for k, v in meta["run_config"].items() if k != "task"})
    trials = calibration if calibration is not None else make_trials(meta["task"], 64, 12345, cfg["dt"], cfg)
    run = float_run(net, trials)
    ir, lines = quantize_gate(lower_gate(net), 1.5 * float(np.abs(run["o"] - meta_o_bias(net)).max()),
                              float(np.abs(current(net, trials, run["r"])).max()))
    ir.meta.update(task=meta["task"], method="gate", run_config=cfg,
                   quantization_mode="gate: fixed-point QIF, graded gate charge (2**6 per passage)")
    return net, ir, lines


def meta_o_bias(net: GateNetwork) -> np.ndarray:
    return net.o_b.detach().double().numpy()


@torch.no_grad()
def float_run(net: GateNetwork, trials) -> dict:
    """The float64 model on ``trials``: {"o", "r", "q", "x", "spikes"} numpy arrays (B, T, .)."""
    from models.gate_kernel import run

    arrays = run(net.recurrent(), drive_of(net, torch.as_tensor(trials.inputs, dtype=net.U.dtype)), net.neuron)
    arrays["o"] = arrays["r"] @ net.O.double().numpy().T + meta_o_bias(net)
    return arrays


def current(net: GateNetwork, trials, r: np.ndarray) -> np.ndarray:
    """The synaptic current c[n] + U i[n-1] = W r[n-1] + U i[n-1] of every neuron and step (B, T, N),
    from the float model's readout trace ``r`` (c and r share the synapse's decay)."""
    W, U = net.recurrent().detach().double().numpy(), net.U.detach().double().numpy()
    late = lambda a: np.pad(a, ((0, 0), (1, 0), (0, 0)))[:, :-1]  # noqa: E731  one step late
    return late(r) @ W.T + late(trials.inputs) @ U.T


def encode(trials, ir: irm.IR, mode: str) -> np.ndarray:
    """Engine input (B, T + 1, n_in): ``e[m] = i[m] - (1 - decay) i[m-1]`` (module docstring),
    as integers ``round(e 2**INPUT_BITS)`` in fixed mode; the last step sends 0."""
    i = trials.inputs
    keep = 1.0 - ir.meta["gate"]["decay"]
    e = i - keep * np.pad(i, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    e = np.pad(e, ((0, 0), (0, 1), (0, 0)))
    if mode == "fixed":
        scaled = e * 2.0 ** INPUT_BITS
        if mode == "fixed" and np.abs(scaled).max(initial=0) >= 2 ** (INPUT_MESSAGE_BITS - 1):
            raise SpikeportError(f"input: encoded value {np.abs(e).max():.4g} is outside "
                                 f"+-{2 ** (INPUT_MESSAGE_BITS - 1 - INPUT_BITS)} (16-bit graded input)")
        return np.round(scaled)
    return e


def engine_mode(engine: str) -> str:
    return "float" if engine in ("float-emulator", "lava-float") else "fixed"


def deployed(engine: str, ir: irm.IR, trials, batch: int = 250) -> dict:
    """Run ``engine`` on ``trials``: {"o": (B, T, n_out) readout in float units, "record": the raw
    recordings (`RECORD`) of the first batch, trials 0 .. batch-1}."""
    mode, meta = engine_mode(engine), ir.meta["gate"]
    scale = 2.0 ** meta["readout_frac"] if mode == "fixed" else 1.0
    outs, first = [], None
    for lo in range(0, len(trials.inputs), batch):
        part = slice_trials(trials, lo, lo + batch)
        out = scaleout.run(engine, ir, encode(part, ir, mode), list(RECORD))
        first = out if first is None else first
        outs.append(out["readout/u"][:, 1:].astype(np.float64) / scale + np.asarray(meta["o_bias"]))
    return dict(o=np.concatenate(outs), record=first)


def slice_trials(trials, lo: int, hi: int) -> Trials:
    """Trials lo..hi-1 of ``trials``."""
    return Trials(*(getattr(trials, f)[lo:hi] for f in ("inputs", "target", "weight", "condition", "score")))


def bit_identity(ir: irm.IR, trials, batch: int = 25):
    """Lava fixed_pt vs the emulator on ``trials``: every recorded variable of every node, every step."""
    chunks = []
    for lo in range(0, len(trials.inputs), batch):
        x = encode(slice_trials(trials, lo, lo + batch), ir, "fixed")
        chunks.append(compare_bit_identity("lava", scaleout.run("lava", ir, x), "emulator",
                                           scaleout.run("emulator", ir, x)))
    return combine(chunks)


def spikes_of(record: dict, ir: irm.IR, mode: str) -> np.ndarray:
    """Threshold crossings (B, T, N) from a recording: steps whose x ends at x_reset having sent a charge."""
    rec = ir.op("rec")
    reset = rec.fixed.x_reset if mode == "fixed" else rec.x_reset
    return (record["rec/x"] == reset) & (record["rec/q"] > 0)
