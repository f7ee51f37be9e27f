"""Time-to-first-spike (Mostafa 2018) training and deployment glue.

Training (`train_ttfs`) runs the exact continuous-time model of
`models.ttfs`; deployment (`deploy_ttfs`, `lower_ttfs`) discretises it to a
spikeport IR of Lava CUBA LIF neurons, quantizes it and runs it on the
emulator and on Lava. Times are in units of tau_syn throughout; a deployed
step is ``dt`` (units of tau_syn) and step index ``i`` (0-based, Lava step
``i + 1``) stands for continuous time ``i * dt``.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.errors import SpikeportError
from models.ttfs import TTFSNetwork, predict, ttfs_loss
from toolchain.tasks import datasets
from toolchain.files import atomic_path

CHECKPOINT_FORMAT = "spikeport-ttfs-checkpoint"
CHECKPOINT_VERSION = 1

TTFS_TASK_DEFAULTS = {
    "digits": dict(hidden=[100], epochs=40, lr=2e-3, batch_size=32),
    "mnist": dict(hidden=[800], epochs=20, lr=1e-3, batch_size=32),
}
TTFS_RUN_DEFAULTS = dict(theta=1.0, t_max_in=2.0, init_mean=6.0, init_std=1.0, k_penalty=1.0,
                         lr_decay=0.1, clip=10.0, weight_decay=0.0, seed=0, threads=1,
                         max_train=None, bucket=16, log_every=0, loss_domain="z", loss_scale=1.0)


@dataclass
class TTFSResult:
    model: TTFSNetwork
    meta: dict
    history: list = field(default_factory=list)


def ttfs_config(task: str, **overrides) -> dict:
    """Task defaults <- non-None keyword overrides."""
    if task not in TTFS_TASK_DEFAULTS:
        raise SpikeportError(f"ttfs: unknown task {task!r}; choose one of {', '.join(TTFS_TASK_DEFAULTS)}")
    cfg = {**TTFS_RUN_DEFAULTS, **copy.deepcopy(TTFS_TASK_DEFAULTS[task]), "task": task}
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise SpikeportError(f"ttfs: unknown option(s) {', '.join(sorted(unknown))}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def network_config(cfg: dict, n_in: int, n_classes: int) -> dict:
    return dict(n_in=int(n_in), sizes=[int(n) for n in cfg["hidden"]] + [int(n_classes)],
                theta=float(cfg["theta"]), t_max_in=float(cfg["t_max_in"]),
                init_mean=float(cfg["init_mean"]), init_std=float(cfg["init_std"]), seed=int(cfg["seed"]))


def _batches(x: np.ndarray, batch_size: int, gen: np.random.Generator, bucket: int):
    """Shuffled minibatches; within groups of ``bucket`` batches, samples are sorted by
    their number of non-black pixels so a batch pads to a similar event count
    (the layer's cost grows with the batch's largest count). Batch order is shuffled."""
    order = gen.permutation(len(x))
    counts = (x > 0).sum(1)
    group = batch_size * max(int(bucket), 1)
    batches = []
    for g in range(0, len(order), group):
        idx = order[g:g + group]
        idx = idx[np.argsort(counts[idx], kind="stable")]
        batches += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    return [batches[i] for i in gen.permutation(len(batches))]


@torch.no_grad()
def evaluate(model: TTFSNetwork, x, y, batch_size: int = 256) -> dict:
    """Accuracy (earliest output spike), silent-output rate and mean output/hidden spike times."""
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    correct = silent = 0
    t_out = []
    for i in range(0, len(x), batch_size):
        zs = model(x[i:i + batch_size])
        z = zs[-1]
        correct += int((predict(z) == y[i:i + batch_size]).sum())
        silent += int((~torch.isfinite(z)).all(1).sum())
        t_out.append(torch.log(z.min(1).values))
    t_out = torch.cat(t_out)
    fin = torch.isfinite(t_out)
    return dict(accuracy=correct / len(x), no_output_spike=silent / len(x),
                mean_first_output_time=float(t_out[fin].mean()) if fin.any() else math.inf)


def train_ttfs(task: str = "mnist", epochs: int | None = None, seed: int = 0, out=None, *,
               progress: bool = True, log=print, data=None, **overrides) -> TTFSResult:
    """Train a TTFS network (784-800-10 on MNIST by default) with the exact gradients.

    Adam, cross-entropy over ``-z_out`` plus ``k_penalty`` times the weight-sum
    penalty, gradient-norm clipping at ``clip``, learning rate decayed by
    ``lr_decay`` over the run (cosine). Deterministic for a given ``seed`` and
    thread count. Writes a checkpoint to ``out`` if given. ``data`` may pass a
    `toolchain.tasks.datasets.Dataset` (tests); otherwise ``load_task(task)``.
    """
    cfg = ttfs_config(task, epochs=epochs, seed=seed, **overrides)
    if cfg["threads"]:
        torch.set_num_threads(int(cfg["threads"]))
    torch.manual_seed(cfg["seed"])
    data = data if data is not None else datasets.load_task(task)
    x_train, y_train = data.x_train, data.y_train
    if cfg["max_train"]:
        x_train, y_train = x_train[:cfg["max_train"]], y_train[:cfg["max_train"]]
    model = TTFSNetwork(network_config(cfg, data.n_features, data.n_classes))
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    gen = np.random.default_rng(cfg["seed"])
    n_batches = math.ceil(len(x_train) / cfg["batch_size"])
    total = max(cfg["epochs"] * n_batches, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cfg["lr_decay"] + (1 - cfg["lr_decay"]) * 0.5 * (1 + math.cos(math.pi * min(s / total, 1.0))))
    xt, yt = torch.as_tensor(x_train), torch.as_tensor(y_train)
    history, start = [], time.time()
    for epoch in range(cfg["epochs"]):
        model.train()
        bar = tqdm(_batches(x_train, cfg["batch_size"], gen, cfg["bucket"]), disable=not progress,
                   desc=f"ttfs {task} epoch {epoch + 1}/{cfg['epochs']}", leave=False)
        loss_sum = correct = seen = 0
        for idx in bar:
            xb, yb = xt[idx], yt[idx]
            z_out = model(xb)[-1]
            loss = ttfs_loss(z_out, yb, model.weight_sum_penalty(), cfg["k_penalty"],
                             cfg["loss_domain"], cfg["loss_scale"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg["clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((predict(z_out.detach()) == yb).sum())
            seen += len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            if log and cfg["log_every"] and (seen // len(idx)) % cfg["log_every"] == 0:
                log(f"  epoch {epoch + 1} batch {seen // len(idx)}/{n_batches}: loss {loss_sum / seen:.4f} "
                    f"running acc {correct / seen:.4f} [{time.time() - start:.0f} s]")
        model.eval()
        test = evaluate(model, data.x_test, data.y_test)
        row = dict(epoch=epoch + 1, loss=loss_sum / max(seen, 1), train_running_acc=correct / max(seen, 1),
                   test_acc=test["accuracy"], test_no_output=test["no_output_spike"],
                   test_mean_t_out=test["mean_first_output_time"], wall_s=time.time() - start)
        history.append(row)
        if log:
            log(f"epoch {row['epoch']}: loss {row['loss']:.4f} train(running) {row['train_running_acc']:.4f} "
                f"test {row['test_acc']:.4f} (no output spike {row['test_no_output']:.4f}, "
                f"mean t_out {row['test_mean_t_out']:.3f}) [{row['wall_s']:.0f} s]")
    train_eval = evaluate(model, x_train, y_train)
    test_eval = evaluate(model, data.x_test, data.y_test)
    meta = dict(task=task, method="ttfs", train_config=cfg, split=data.split,
                accuracy=dict(train=train_eval["accuracy"], test=test_eval["accuracy"]),
                test_no_output_spike=test_eval["no_output_spike"], epochs=cfg["epochs"],
                wall_time_s=time.time() - start, history=history,
                units="times in units of tau_syn; z = exp(t / tau_syn)")
    result = TTFSResult(model=model, meta=meta, history=history)
    if out is not None:
        save_checkpoint(out, model, meta)
    return result


# ------------------------------------------------------------------ checkpoints
def save_checkpoint(path, model: TTFSNetwork, meta: dict) -> None:
    """``.pt`` with format tag, the network config, weights and meta (atomic write)."""
    from toolchain import checkpoint

    checkpoint.write_payload(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, config=model.config,
                             state_dict=model.state_dict(), meta=meta)


def load_checkpoint(path) -> tuple[TTFSNetwork, dict]:
    """Rebuild a TTFS network from a checkpoint written by `save_checkpoint`."""
    from toolchain import checkpoint

    payload = checkpoint.read_payload(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
    model = TTFSNetwork(payload["config"])
    checkpoint.load_weights(path, model, payload["state_dict"])
    return model, payload.get("meta", {})


# =================================================================== deployment
#
# Discretisation (derivation). Lava's CUBA LIF with dv = 0 and no bias is, per step,
#     u[i] = (1 - du) u[i-1] + a[i],      v[i] = v[i-1] + u[i],     spike if v[i] > vth.
# Take du = 1 - q, q = exp(-dt / tau_syn), and give the Dense the continuous weights w.
# One input spike of weight w whose synaptic input arrives at step index n gives
#     u[i] = w q^(i-n),    v[i] = w (1 - q^(i-n+1)) / (1 - q)          (i >= n),
# while the continuous membrane is V(t) = w (1 - exp(-(t - t_in)/tau_syn)). The input
# sent at index k (time k dt) arrives one hop later, at n = k + 1, so
#     v[i] = V(i dt) / du       exactly, for every i (the hop delay is exactly the
#                               "end of step" of the sampled integral),
# and by linearity for any set of inputs on the grid. So the discrete membrane is the
# continuous one sampled at t = i dt and multiplied by 1/du = 1/(1 - exp(-dt/tau)) =
# tau/dt + 1/2 + dt/(12 tau) + ... (not exactly tau/dt); with vth = theta / du the discrete
# neuron spikes at the first index i with V(i dt) > theta, i.e. index ceil(t_spike / dt)
# (+1 when t_spike / dt is an integer). Every layer uses the same clock: index i of any
# population means time i dt, because each hop delay cancels this way. The errors are
# therefore (a) input times rounded to the grid (|error| <= dt/2), (b) each layer's
# spike postponed to the next grid point (0..1 step, mean ~1/2) and propagated, and
# (c) Lava's integer du: the decay actually used is du_eff = (du_int + 1)/4096, i.e.
# tau_eff = -dt / ln(1 - du_eff); the float IR uses du_eff too (float == fixed decay).
#
# Re-firing: Lava resets v to 0 but keeps u, and with dv = 0 nothing stops v from
# climbing again, so a discrete neuron can spike several times where the continuous one
# spikes once; every extra hidden spike adds its weight to the next layer again (on the
# digits net this costs ~5 pp; see `deploy_ttfs(refire="allow")`).
#
# Fix (refire="inhibit", Lava-expressible, no new neuron model): cancel the neuron's
# current from the step after its spike on, for ever. Each hidden population i gets
#   * layers.i.inhibit  Sparse diag(-H) from the population onto itself;
#   * layers.i.latch    a LIF population with no current decay (du = 0, fixed du = -1),
#                       dv = 0, vth = 1/2, fed by layers.i.to_latch (Sparse, identity):
#                       one input spike sets its u = 1 for good, so it spikes every step
#                       from the next step on;
#   * layers.i.latch_inhibit  Sparse diag(-H du) from the latch onto the population.
# A spike at step n then adds to the population's u the inhibitory current
#     H q^k (self, decaying) + H du (1 + q + ... + q^(k-1)) (latch, arriving from n+2)
#     = H q^k + H (1 - q^k) = H       at step n+1+k, for every k >= 0,
# i.e. exactly -H from step n+1 on. With H >= the largest excitatory current the neuron
# ever receives, u <= 0 after its spike, so v (restarting from 0) never rises again and
# the neuron spikes exactly once, as in continuous time. Because u <= 0, nothing v does
# after the spike matters: it may fall to Lava's saturation at -(2**23 - 1) harmlessly,
# and the quantizer need not cover it. inhibit="bound" takes H = sum_i max(W_ji, 0)
# (a proof for any input); inhibit="data" takes H = margin x the largest excitatory
# current seen on calibration data (smaller H, so a finer fixed-point scale; re-spikes
# on other data are counted by `deploy_ttfs`). Output neurons need nothing: only their
# first spike is read.

INPUT, OUTPUT = "input", "output"


def ttfs_clock(dt: float) -> dict:
    """Decay and threshold scale for step ``dt`` (units of tau_syn), with Lava's integer du."""
    from models import fixed_params as fp

    du_float = 1.0 - math.exp(-dt)
    du_int, _ = fp.decays_to_fixed(du_float, 0.0)
    du_eff, _ = fp.decays_from_fixed(du_int, 0)
    return dict(dt=float(dt), du_float=du_float, du=du_eff, du_int=int(du_int),
                tau_eff=-dt / math.log(1.0 - du_eff), v_scale=1.0 / du_eff)


def layer_nodes(ir) -> list:
    """The TTFS layers' neuron populations (``layers.0``, ``layers.1``, ...), without latches."""
    return [f"layers.{i}" for i in range(len(ir.meta["ttfs"]["config"]["sizes"]))]


def lower_ttfs(model: TTFSNetwork, dt: float, *, refire: str = "inhibit", inhibit: str = "bound",
               x_cal=None, inhibit_margin: float = 1.25, t_end: float | None = None, name: str = "ttfs"):
    """A TTFS network as a spikeport IR of Lava CUBA LIF (dv = 0) at step ``dt`` (units of tau_syn).

    ``input -> layers.0.dense -> layers.0 -> layers.1.dense -> layers.1 -> output``; with
    ``refire="inhibit"`` each hidden population also gets the self-inhibition and latch
    described above (``layers.i.inhibit``, ``layers.i.to_latch``, ``layers.i.latch``,
    ``layers.i.latch_inhibit``) so it spikes once; ``refire="allow"`` leaves Lava's reset
    alone. ``inhibit``: how H is chosen, ``"bound"`` (sum of positive input weights, any
    input) or ``"data"`` (``inhibit_margin`` x the largest excitatory current on ``x_cal``).
    ``t_end``: the last time (units of tau_syn) the run must cover (default
    ``t_max_in + 3``); the step count is ``meta["ttfs"]["steps"]``.
    """
    from toolchain import ir as irm

    if refire not in ("inhibit", "allow"):
        raise SpikeportError(f"ttfs: refire={refire!r} is not 'inhibit' or 'allow'")
    if inhibit not in ("bound", "data"):
        raise SpikeportError(f"ttfs: inhibit={inhibit!r} is not 'bound' or 'data'")
    if refire == "inhibit" and inhibit == "data" and x_cal is None:
        raise SpikeportError("ttfs: inhibit='data' needs calibration inputs x_cal")
    if not dt > 0:
        raise SpikeportError(f"ttfs: dt={dt} must be > 0 (units of tau_syn)")
    clock = ttfs_clock(dt)
    du, theta = clock["du"], model.theta
    t_end = float(t_end if t_end is not None else model.t_max_in + 3.0)
    steps = int(math.ceil(t_end / dt)) + 1
    weights = [w.detach().double().cpu().numpy() for w in model.weights]
    last = len(weights) - 1
    bound = {i: np.clip(w, 0, None).sum(1) for i, w in enumerate(weights[:-1])}

    def build(h: dict):
        ir = irm.IR(name, meta={"ttfs": dict(clock, theta=theta, t_max_in=model.t_max_in, t_end=t_end,
                                             steps=steps, refire=refire,
                                             inhibit=inhibit if refire == "inhibit" else None,
                                             inhibit_margin=inhibit_margin, time_units="tau_syn",
                                             input_step="round(t_max_in * (1 - x) / dt)", config=model.config)})
        src = ir.add(INPUT, irm.Input(model.config["n_in"], source="input"))
        for i, w in enumerate(weights):
            path = f"layers.{i}"
            ir.add(f"{path}.dense", irm.Dense(w, source=path), [src])
            ir.add(path, irm.LIF(w.shape[0], du=du, dv=0.0, vth=theta / du, source=path), [f"{path}.dense"])
            if refire == "inhibit" and i < last and h.get(i) is not None:
                n = w.shape[0]
                ir.add(f"{path}.inhibit", irm.Sparse(-np.diag(h[i]), source=path), [path])
                ir.connect(f"{path}.inhibit", path)
                ir.add(f"{path}.to_latch", irm.Sparse(np.eye(n), source=path), [path])
                ir.add(f"{path}.latch", irm.LIF(n, du=0.0, dv=0.0, vth=0.5, source=path), [f"{path}.to_latch"])
                ir.add(f"{path}.latch_inhibit", irm.Sparse(-np.diag(h[i] * du), source=path), [f"{path}.latch"])
                ir.connect(f"{path}.latch_inhibit", path)
            src = path
        ir.add(OUTPUT, irm.Output(weights[-1].shape[0], source=f"layers.{last}"), [src])
        return ir

    if refire == "allow":
        return build({})
    h = dict(bound)
    if inhibit == "data":
        from backends.emulator import run

        for i in range(last):  # layer by layer: layer i without inhibition, the ones below already set
            h[i] = None
            probe = build(h)
            out = run(probe, encode_input(np.asarray(x_cal), probe.meta), [f"layers.{i}/u"], mode="float")
            peak = np.asarray(out[f"layers.{i}/u"]).max(axis=(0, 1))
            h[i] = np.minimum(bound[i], np.maximum(inhibit_margin * peak, 1e-3 * theta))
    return build(h)


def encode_input(x, meta: dict) -> np.ndarray:
    """Input spikes (B, steps, n_in), bool: pixel x at index ``round(t_max_in (1 - x) / dt)``."""
    from toolchain.tasks import encoders

    m = meta["ttfs"] if "ttfs" in meta else meta
    return encoders.latency_encode(np.asarray(x), int(m["steps"]), t_min=0.0,
                                   t_max=m["t_max_in"] / m["dt"], threshold=-1.0)


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
    from backends.emulator import run

    nodes = layer_nodes(ir)
    out = run(ir, encode_input(x_cal, ir.meta), [f"{n}/{f}" for n in nodes for f in "suv"], mode="float")
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
    from toolchain.ir import passes
    from toolchain.quantize import HEADROOM, quantize

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


# ------------------------------------------------------------------ running and reading out
def first_spike_index(s: np.ndarray) -> np.ndarray:
    """(B, T, n) spikes -> (B, n) index of the first spike, ``inf`` if none."""
    s = np.asarray(s) != 0
    idx = np.argmax(s, axis=1).astype(np.float64)
    idx[~s.any(axis=1)] = np.inf
    return idx


def output_readout(s, v, u, vth_eff: float):
    """Earliest output spike, ties broken by the interpolated crossing time.

    With dv = 0 and no bias the pre-reset membrane at the spike step i is
    ``v[i-1] + u[i]``, so the threshold crossing lies at fraction
    ``f = (vth - v[i-1]) / u[i]`` of the step: time ``(i - 1 + f) dt``. Returns
    (prediction (B,), first index (B, n) with inf, interpolated time in steps (B, n),
    whether any output spiked (B,)). Without any output spike the prediction is the
    neuron with the largest final membrane.
    """
    s, v, u = (np.asarray(a, dtype=np.float64) for a in (s, v, u))
    first = first_spike_index(s)
    B, T, n = s.shape
    i = np.where(np.isfinite(first), first, 0).astype(np.int64)
    bi, ni = np.meshgrid(np.arange(B), np.arange(n), indexing="ij")
    v_prev = np.where(i > 0, v[bi, np.maximum(i - 1, 0), ni], 0.0)
    u_i = u[bi, i, ni]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((vth_eff - v_prev) / u_i, 0.0, 1.0)
    frac = np.where(np.isfinite(frac), frac, 1.0)
    t_interp = np.where(np.isfinite(first), i - 1 + frac, np.inf)
    any_spike = np.isfinite(first).any(1)
    key = np.where(np.isfinite(first), first + frac * 0.999, np.inf)   # sorts by step, then by fraction
    pred = np.where(any_spike, np.argmin(key, axis=1), np.argmax(v[:, -1], axis=1))
    return pred, first, t_interp, any_spike


def vth_effective(ir, node: str, mode: str) -> float:
    """The value v must exceed to spike, in the engine's units (fixed: vth << 6)."""
    from models import fixed_point as fx

    op = ir.op(node)
    return float(fx.effective_threshold(op.fixed.vth)) if mode == "fixed" else float(op.vth)


def run_deployed(ir, x, *, engine: str = "emulator", mode: str = "fixed", batch_size: int = 250,
                 record_hidden_state: bool = False, progress: bool = False) -> dict:
    """Run the deployed IR on features ``x`` (B, n_in) and read it out.

    Returns ``pred`` (B,), ``first`` {layer node: (B, n) first-spike index, inf if none},
    ``t_out_interp`` (B, n_out) interpolated output times in steps, ``any_output`` (B,),
    ``spike_counts`` {node: (B, n)} (to see re-firing), and ``raw`` (the engine's
    arrays for the output population, and all populations if ``record_hidden_state``).
    """
    neurons = layer_nodes(ir)
    out_node = neurons[-1]
    if engine == "emulator":
        from backends.emulator import run as engine_run
    elif engine == "lava":
        from backends.lava.runner import run_lava as engine_run
    else:
        raise SpikeportError(f"ttfs: engine={engine!r} is not 'emulator' or 'lava'")
    x = np.asarray(x)
    res = dict(pred=[], t_out_interp=[], any_output=[], first={n: [] for n in neurons},
               spike_counts={n: [] for n in neurons}, raw={})
    vth = vth_effective(ir, out_node, mode)
    bar = tqdm(range(0, len(x), batch_size), disable=not progress, desc=f"{engine} {mode}", leave=False)
    for i in bar:
        xin = encode_input(x[i:i + batch_size], ir.meta)
        record = [f"{n}/s" for n in neurons] + [f"{out_node}/v", f"{out_node}/u"]
        if record_hidden_state:
            record = [f"{n}/{f}" for n in neurons for f in ("s", "v", "u")]
        out = engine_run(ir, xin, record, mode=mode)
        pred, _, t_int, any_out = output_readout(out[f"{out_node}/s"], out[f"{out_node}/v"],
                                                 out[f"{out_node}/u"], vth)
        res["pred"].append(pred)
        res["t_out_interp"].append(t_int)
        res["any_output"].append(any_out)
        for n in neurons:
            res["first"][n].append(first_spike_index(out[f"{n}/s"]))
            res["spike_counts"][n].append((np.asarray(out[f"{n}/s"]) != 0).sum(1).astype(np.int32))
        for key, arr in out.items():
            if record_hidden_state or key.startswith(out_node + "/"):
                res["raw"].setdefault(key, []).append(arr)
    cat = lambda a: np.concatenate(a) if a else np.empty(0)  # noqa: E731
    res["pred"], res["t_out_interp"], res["any_output"] = (cat(res[k]) for k in ("pred", "t_out_interp", "any_output"))
    res["first"] = {n: cat(v) for n, v in res["first"].items()}
    res["spike_counts"] = {n: cat(v) for n, v in res["spike_counts"].items()}
    res["raw"] = {k: cat(v) for k, v in res["raw"].items()}
    return res


@torch.no_grad()
def continuous_times(model: TTFSNetwork, x, batch_size: int = 500) -> list:
    """Exact continuous first-spike times (units of tau_syn, inf = none) of every layer: [(B, n)]."""
    outs = None
    for i in range(0, len(x), batch_size):
        zs = model(torch.as_tensor(np.asarray(x[i:i + batch_size])))
        ts = [torch.log(z).double().numpy() for z in zs]
        outs = [[t] for t in ts] if outs is None else [o + [t] for o, t in zip(outs, ts)]
    return [np.concatenate(o) for o in outs]


# ------------------------------------------------------------------ analysis
def timing_errors(first: np.ndarray, t_cont: np.ndarray, dt: float) -> dict:
    """Deployed first-spike index minus continuous time / dt (steps), for neurons that spike
    in both, plus how many spike in only one of the two."""
    both = np.isfinite(first) & np.isfinite(t_cont)
    err = first[both] - t_cont[both] / dt
    return summarize(err) | dict(only_deployed=int((np.isfinite(first) & ~np.isfinite(t_cont)).sum()),
                                 only_continuous=int((~np.isfinite(first) & np.isfinite(t_cont)).sum()),
                                 both=int(both.sum()))


def summarize(err: np.ndarray) -> dict:
    if err.size == 0:
        return dict(n=0)
    q = np.percentile(err, [1, 5, 50, 95, 99])
    return dict(n=int(err.size), mean=float(err.mean()), std=float(err.std()), mean_abs=float(np.abs(err).mean()),
                p1=float(q[0]), p5=float(q[1]), median=float(q[2]), p95=float(q[3]), p99=float(q[4]),
                max_abs=float(np.abs(err).max()), within_1_step=float((np.abs(err) <= 1.0).mean()))


def hidden_spikes_before_decision(hidden_first: np.ndarray, out_first: np.ndarray) -> np.ndarray:
    """Per sample: hidden neurons that spike strictly before the first output spike
    (the ones that can have influenced it). Works for step indices and for continuous times."""
    decision = out_first.min(1, initial=np.inf)
    return (hidden_first < decision[:, None]).sum(1)


def analyse_engine(res: dict, cont: list, y: np.ndarray, dt: float, neurons: list) -> dict:
    """Accuracy, timing errors per layer and sparsity of one deployed run against the continuous model."""
    out_node = neurons[-1]
    report = dict(accuracy=float((res["pred"] == y).mean()), samples=int(len(y)),
                  no_output_spike=int((~res["any_output"]).sum()),
                  same_prediction_as_continuous=float((res["pred"] == np.argmin(cont[-1], 1)).mean()))
    report["timing_steps"] = {n: timing_errors(res["first"][n], c, dt) for n, c in zip(neurons, cont)}
    fin = np.isfinite(res["t_out_interp"]) & np.isfinite(cont[-1])
    report["timing_steps"][out_node + " (interpolated)"] = summarize(res["t_out_interp"][fin] - cont[-1][fin] / dt)
    winner_disc = res["first"][out_node].min(1)
    winner_cont = cont[-1].min(1)
    ok = np.isfinite(winner_disc) & np.isfinite(winner_cont)
    report["timing_steps"]["decision (first output spike)"] = summarize(winner_disc[ok] - winner_cont[ok] / dt)
    report["spikes_per_neuron_max"] = {n: int(c.max(initial=0)) for n, c in res["spike_counts"].items()}
    report["hidden_spikes_total_mean"] = float(res["spike_counts"][neurons[0]].sum(1).mean())
    report["hidden_spikes_before_decision_mean"] = float(
        hidden_spikes_before_decision(res["first"][neurons[0]], res["first"][out_node]).mean())
    report["decision_step_mean"] = float(winner_disc[np.isfinite(winner_disc)].mean())
    return report


def deploy_ttfs(model, dt: float = 0.0625, *, refire: str = "inhibit", stats: str = "data",
                t_end: float | None = None, n_test: int | None = None, engines=("emulator",),
                lava_samples: int = 200, lava_chunk: int = 25, modes=("float", "fixed"), out_dir=None,
                data=None, batch_size: int = 250, calibration_samples: int = 256, progress: bool = True,
                log=print) -> dict:
    """Discretise, quantize and run a trained TTFS network; compare with continuous time.

    Quantization (`quantize_ttfs`) calibrates on the first ``calibration_samples``
    *training* samples (``stats="data"``) or uses the worst-case bounds (``"bound"``).

    ``model``: a `TTFSNetwork` or a checkpoint path. Runs the float and the fixed IR on
    the emulator over ``n_test`` test samples (all by default); with ``"lava"`` in
    ``engines`` also runs the fixed IR on Lava for the first ``lava_samples`` and
    counts the samples whose s, v, u (every population, every step) equal the
    emulator's. Writes ``ttfs_float.onnx``, ``ttfs_fixed.onnx`` and ``deploy.json``
    to ``out_dir`` if given. Returns the report dict.
    """
    meta = {}
    if not isinstance(model, TTFSNetwork):
        model, meta = load_checkpoint(model)
    model = model.double().eval()
    task = meta.get("task", "mnist")
    data = data if data is not None else datasets.load_task(task)
    x, y = data.x_test.astype(np.float64), data.y_test
    if n_test:
        x, y = x[:n_test], y[:n_test]
    say = log or (lambda *_: None)
    t0 = time.time()
    cont = continuous_times(model, x)
    cont_pred = np.argmin(cont[-1], 1)
    t_first_out = cont[-1].min(1)
    x_cal = data.x_train[:calibration_samples].astype(np.float64)
    ir = lower_ttfs(model, dt, refire=refire, inhibit="data" if stats == "data" else "bound", x_cal=x_cal,
                    t_end=t_end)
    m = ir.meta["ttfs"]
    # the continuous model fed the grid-rounded input times isolates the input rounding
    x_grid = 1.0 - np.floor(m["t_max_in"] * (1.0 - x) / dt + 0.5) * dt / m["t_max_in"]
    cont_grid = continuous_times(model, np.clip(x_grid, 0.0, 1.0))
    neurons = layer_nodes(ir)
    report = dict(task=task, dt=dt, clock=m, refire=refire, stats=stats, samples=int(len(y)),
                  continuous=dict(accuracy=float((cont_pred == y).mean()),
                                  accuracy_grid_inputs=float((np.argmin(cont_grid[-1], 1) == y).mean()),
                                  no_output_spike=int(np.isinf(t_first_out).sum()),
                                  output_after_t_end=int((t_first_out > m["t_end"]).sum()),
                                  decision_time_mean=float(t_first_out[np.isfinite(t_first_out)].mean()),
                                  decision_time_p99=float(np.percentile(t_first_out[np.isfinite(t_first_out)], 99)),
                                  hidden_spikes_before_decision_mean=float(
                                      hidden_spikes_before_decision(cont[0], cont[-1]).mean()),
                                  hidden_spikes_total_mean=float(np.isfinite(cont[0]).sum(1).mean())),
                  engines={})
    say(f"continuous: accuracy {report['continuous']['accuracy']:.4f} (grid inputs "
        f"{report['continuous']['accuracy_grid_inputs']:.4f}); dt={dt} tau_syn, {m['steps']} steps, "
        f"du={m['du']:.6f} (du_int {m['du_int']}), tau_eff={m['tau_eff']:.5f}")
    irq, qreports = quantize_ttfs(ir, x_cal, stats=stats)
    from toolchain.quantize import format_report
    report["quantization"] = format_report(qreports)
    say(report["quantization"])
    if out_dir is not None:
        from toolchain import formats

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        formats.save(ir, Path(out_dir) / "ttfs_float.onnx")
        formats.save(irq, Path(out_dir) / "ttfs_fixed.onnx")
    results = {}
    for mode in modes:
        t = time.time()
        res = run_deployed(irq if mode == "fixed" else ir, x, mode=mode, batch_size=batch_size, progress=progress)
        results[mode] = res
        rep = analyse_engine(res, cont, y, dt, neurons)
        rep["wall_s"] = time.time() - t
        report["engines"][f"emulator/{mode}"] = rep
        say(f"emulator {mode}: accuracy {rep['accuracy']:.4f} (same prediction as continuous "
            f"{rep['same_prediction_as_continuous']:.4f}), no output spike {rep['no_output_spike']}, "
            f"hidden spikes before decision {rep['hidden_spikes_before_decision_mean']:.1f} [{rep['wall_s']:.0f} s]")
    if "lava" in engines:
        report["lava"] = lava_identity(irq, x[:lava_samples], chunk=lava_chunk, log=say)
    report["wall_s"] = time.time() - t0
    if out_dir is not None:
        import json

        with atomic_path(Path(out_dir) / "deploy.json") as tmp:
            tmp.write_text(json.dumps(report, indent=1, default=float))
    return report


def lava_identity(irq, x, *, chunk: int = 25, log=print) -> dict:
    """Run the fixed IR on Lava and on the emulator (every population's s, v, u) and count
    identical samples and arrays."""
    from backends.emulator import run
    from backends.lava.runner import run_lava
    from toolchain.verify import compare_exact

    same_samples = total = arrays_same = arrays_total = mismatched_values = 0
    lava_pred, t0 = [], time.time()
    for i in range(0, len(x), chunk):
        xin = encode_input(x[i:i + chunk], irq.meta)
        emu = run(irq, xin, mode="fixed")
        lava = run_lava(irq, xin, mode="fixed")
        c = compare_exact("emulator", emu, "lava", lava, sorted({k.rpartition("/")[0] for k in emu}))
        same_samples += c.identical_samples
        arrays_same += c.identical_arrays
        arrays_total += c.arrays
        mismatched_values += c.values - c.equal_values
        total += len(xin)
        out_node = [k for k in emu if k.endswith("/s")][-1].split("/")[0]
        vth = vth_effective(irq, out_node, "fixed")
        lava_pred.append(output_readout(lava[f"{out_node}/s"], lava[f"{out_node}/v"], lava[f"{out_node}/u"], vth)[0])
        if log:
            log(f"  lava: {total}/{len(x)} samples, identical so far {same_samples} [{time.time() - t0:.0f} s]")
    return dict(samples=total, identical_samples=same_samples, identical_arrays=arrays_same,
                arrays=arrays_total, mismatched_values=mismatched_values,
                predictions=np.concatenate(lava_pred).tolist(), wall_s=time.time() - t0)


def format_deploy_report(rep: dict) -> str:
    """A short human-readable summary of `deploy_ttfs`'s report."""
    c = rep["continuous"]
    lines = [f"TTFS deployment: dt = {rep['dt']} tau_syn ({rep['clock']['steps']} steps), refire={rep['refire']}, "
             f"stats={rep['stats']}, {rep['samples']} test samples",
             f"  continuous time: accuracy {c['accuracy']:.4f}, with grid-rounded inputs {c['accuracy_grid_inputs']:.4f}, "
             f"decision at t = {c['decision_time_mean']:.3f} tau (p99 {c['decision_time_p99']:.3f}), "
             f"hidden spikes before decision {c['hidden_spikes_before_decision_mean']:.1f} "
             f"(of {c['hidden_spikes_total_mean']:.1f} that ever spike)"]
    for name, e in rep["engines"].items():
        lines.append(f"  {name}: accuracy {e['accuracy']:.4f} ({e['accuracy'] - c['accuracy']:+.4f}), same prediction as "
                     f"continuous {e['same_prediction_as_continuous']:.4f}, no output spike {e['no_output_spike']}, "
                     f"hidden spikes before decision {e['hidden_spikes_before_decision_mean']:.1f}, "
                     f"max spikes/neuron {e['spikes_per_neuron_max']}")
        for layer, t in e["timing_steps"].items():
            if t.get("n"):
                extra = (f", spike only deployed/only continuous {t['only_deployed']}/{t['only_continuous']}"
                         if "only_deployed" in t else "")
                lines.append(f"    {layer:<32} error (steps) mean {t['mean']:+.3f} std {t['std']:.3f} "
                             f"p1/50/99 {t['p1']:+.2f}/{t['median']:+.2f}/{t['p99']:+.2f} "
                             f"|err|<=1: {t['within_1_step']:.3f}{extra}")
    if "lava" in rep:
        lv = rep["lava"]
        lines.append(f"  lava fixed vs emulator fixed: {lv['identical_samples']}/{lv['samples']} samples identical "
                     f"(s, v, u of every population at every step); {lv['identical_arrays']}/{lv['arrays']} arrays, "
                     f"{lv['mismatched_values']} differing values [{lv['wall_s']:.0f} s]")
    return "\n".join(lines)


def dt_sweep(model, dts=(0.5, 0.25, 0.125, 0.0625, 0.03125), *, n_test: int | None = 2000, data=None,
             refire: str = "inhibit", stats: str = "data", modes=("float", "fixed"), progress: bool = False,
             log=print) -> list:
    """Accuracy and first-spike-time error against the step ``dt`` (emulator only).

    One row per (dt, mode): accuracy, its change from continuous time, the hidden and
    decision timing errors in steps and in units of tau_syn, and the step count.
    """
    rows = []
    for dt in dts:
        rep = deploy_ttfs(model, dt, refire=refire, stats=stats, n_test=n_test, data=data, modes=modes,
                          progress=progress, log=None)
        c = rep["continuous"]
        for name, e in rep["engines"].items():
            hid = e["timing_steps"]["layers.0"]
            dec = e["timing_steps"]["decision (first output spike)"]
            row = dict(dt=dt, engine=name, steps=rep["clock"]["steps"], accuracy=e["accuracy"],
                       continuous=c["accuracy"], delta_pp=100 * (e["accuracy"] - c["accuracy"]),
                       hidden_err_mean_steps=hid["mean"], hidden_err_std_steps=hid["std"],
                       hidden_err_mean_abs_tau=hid["mean_abs"] * dt, decision_err_mean_steps=dec["mean"],
                       decision_err_mean_abs_tau=dec["mean_abs"] * dt,
                       hidden_spikes_before_decision=e["hidden_spikes_before_decision_mean"])
            rows.append(row)
            if log:
                log(format_sweep_row(row))
    return rows


def format_sweep_row(r: dict) -> str:
    return (f"dt={r['dt']:<8g} {r['engine']:<15} steps {r['steps']:>4}  acc {r['accuracy']:.4f} ({r['delta_pp']:+.2f} pp)  "
            f"hidden err {r['hidden_err_mean_steps']:+.3f}±{r['hidden_err_std_steps']:.3f} steps "
            f"(|err| {r['hidden_err_mean_abs_tau']:.4f} tau)  decision err {r['decision_err_mean_steps']:+.3f} steps "
            f"(|err| {r['decision_err_mean_abs_tau']:.4f} tau)  hidden spikes before decision "
            f"{r['hidden_spikes_before_decision']:.1f}")


def plot_sweep(rows: list, path) -> None:
    """Accuracy and mean |timing error| (units of tau_syn) against dt, one line per engine mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for engine in dict.fromkeys(r["engine"] for r in rows):
        rs = [r for r in rows if r["engine"] == engine]
        dts = [r["dt"] for r in rs]
        a.plot(dts, [100 * r["accuracy"] for r in rs], "o-", label=engine)
        b.plot(dts, [r["hidden_err_mean_abs_tau"] for r in rs], "o-", label=f"hidden, {engine}")
        b.plot(dts, [r["decision_err_mean_abs_tau"] for r in rs], "s--", label=f"decision, {engine}")
    a.axhline(100 * rows[0]["continuous"], color="k", lw=0.8, label="continuous")
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("dt (units of tau_syn)")
    a.set_ylabel("test accuracy (%)")
    b.set_ylabel("mean |first-spike error| (tau_syn)")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
