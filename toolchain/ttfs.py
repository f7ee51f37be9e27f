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
from toolchain import datasets
from toolchain.files import atomic_path

CHECKPOINT_FORMAT = "spikeport-ttfs-checkpoint"
CHECKPOINT_VERSION = 1

TTFS_TASK_DEFAULTS = {
    "digits": dict(hidden=[100], epochs=40, lr=2e-3, batch_size=32),
    "mnist": dict(hidden=[800], epochs=20, lr=1e-3, batch_size=32),
}
TTFS_RUN_DEFAULTS = dict(theta=1.0, t_max_in=1.0, init_mean=2.0, init_std=1.0, k_penalty=1.0,
                         lr_decay=0.1, clip=10.0, weight_decay=0.0, seed=0, threads=1,
                         max_train=None, bucket=16, log_every=0)


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
    `toolchain.datasets.Dataset` (tests); otherwise ``load_task(task)``.
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
            loss = ttfs_loss(z_out, yb, model.weight_sum_penalty(), cfg["k_penalty"])
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
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": model.config,
               "state_dict": model.state_dict(), "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path) -> tuple[TTFSNetwork, dict]:
    """Rebuild a TTFS network from a checkpoint written by `save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise SpikeportError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a one-line user error
        raise SpikeportError(f"{path}: not a readable TTFS checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise SpikeportError(f"{path}: not a spikeport TTFS checkpoint (format tag missing)")
    model = TTFSNetwork(payload["config"])
    model.load_state_dict(payload["state_dict"])
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
# spikes once; every extra hidden spike adds its weight to the next layer again.
# Fix (refire="inhibit", Lava-expressible): a recurrent Sparse synapse from each hidden
# neuron onto itself with weight -H_j, H_j = margin * sum_i max(W_ji, 0). The spike at
# step n reaches u at n + 1 (before v, which restarts from 0, can exceed vth again) and
# from then on
#     v[m] <= (1 - q^(m-n)) / (1 - q) * (q u[n] + sum_future w+ - H_j) <= 0,
# because u[n] + every later excitatory input <= sum_i max(W_ji, 0) (each input spikes
# once). So each hidden neuron spikes exactly once, as in continuous time. Output
# neurons need nothing: only the first output spike is read.

INPUT, OUTPUT = "input", "output"


def ttfs_clock(dt: float) -> dict:
    """Decay and threshold scale for step ``dt`` (units of tau_syn), with Lava's integer du."""
    from models import fixed_params as fp

    du_float = 1.0 - math.exp(-dt)
    du_int, _ = fp.decays_to_fixed(du_float, 0.0)
    du_eff, _ = fp.decays_from_fixed(du_int, 0)
    return dict(dt=float(dt), du_float=du_float, du=du_eff, du_int=int(du_int),
                tau_eff=-dt / math.log(1.0 - du_eff), v_scale=1.0 / du_eff)


def lower_ttfs(model: TTFSNetwork, dt: float, *, refire: str = "inhibit", inhibit_margin: float = 1.1,
               t_end: float | None = None, name: str = "ttfs"):
    """A TTFS network as a spikeport IR of Lava CUBA LIF (dv = 0) at step ``dt`` (units of tau_syn).

    ``input -> layers.0.dense -> layers.0 -> layers.1.dense -> layers.1 -> output``; with
    ``refire="inhibit"`` each hidden population also has ``layers.i.inhibit`` (diagonal
    Sparse, -H_j) from itself to itself so it spikes once (see the derivation above);
    ``refire="allow"`` leaves Lava's reset alone. ``t_end``: the last time (units of
    tau_syn) the deployed run must cover (default ``t_max_in + 3``); the step count is
    stored in ``meta["ttfs"]["steps"]``.
    """
    from toolchain import ir as irm

    if refire not in ("inhibit", "allow"):
        raise SpikeportError(f"ttfs: refire={refire!r} is not 'inhibit' or 'allow'")
    if not dt > 0:
        raise SpikeportError(f"ttfs: dt={dt} must be > 0 (units of tau_syn)")
    clock = ttfs_clock(dt)
    theta = model.theta
    t_end = float(t_end if t_end is not None else model.t_max_in + 3.0)
    steps = int(math.ceil(t_end / dt)) + 1
    ir = irm.IR(name, meta={"ttfs": dict(clock, theta=theta, t_max_in=model.t_max_in, t_end=t_end, steps=steps,
                                         refire=refire, inhibit_margin=inhibit_margin,
                                         time_units="tau_syn", input_step=f"round(t_max_in * (1 - x) / dt)",
                                         config=model.config)})
    src = ir.add(INPUT, irm.Input(model.config["n_in"], source="input"))
    last = len(model.weights) - 1
    for i, w in enumerate(model.weights):
        w = w.detach().double().cpu().numpy()
        path = f"layers.{i}"
        ir.add(f"{path}.dense", irm.Dense(w, source=path), [src])
        ir.add(path, irm.LIF(w.shape[0], du=clock["du"], dv=0.0, vth=theta / clock["du"], source=path),
               [f"{path}.dense"])
        if refire == "inhibit" and i < last:
            h = inhibit_margin * np.clip(w, 0, None).sum(1)
            ir.add(f"{path}.inhibit", irm.Sparse(-np.diag(h), source=path), [path])
            ir.connect(f"{path}.inhibit", path)
        src = path
    ir.add(OUTPUT, irm.Output(model.weights[-1].shape[0], source=f"layers.{last}"), [src])
    return ir


def encode_input(x, meta: dict) -> np.ndarray:
    """Input spikes (B, steps, n_in), bool: pixel x at index ``round(t_max_in (1 - x) / dt)``."""
    from toolchain import encoders

    m = meta["ttfs"] if "ttfs" in meta else meta
    return encoders.latency_encode(np.asarray(x), int(m["steps"]), t_min=0.0,
                                   t_max=m["t_max_in"] / m["dt"], threshold=-1.0)


def bound_stats(ir) -> dict:
    """Calibration statistics from worst-case bounds instead of data (no saturation, no wrap).

    Each input spikes once and (with refire="inhibit") each hidden neuron once, so per
    neuron ``|u| <= max(P, N + H)`` and ``-(N + H)/du <= v <= vth + P`` with P, N the sums
    of its positive and negative input weights and H its self-inhibition. Only valid when
    every population spikes at most once (refire="inhibit").
    """
    from toolchain import ir as irm

    stats = {}
    for node, op in ir.nodes(*irm.NEURONS):
        pos = np.zeros(op.n)
        neg = np.zeros(op.n)
        for syn in ir.inputs(node):
            w = ir.op(syn).weight
            pos += np.clip(w, 0, None).sum(1)
            neg += np.clip(-w, 0, None).sum(1)
        u = float(np.max(np.maximum(pos, neg)))
        v = float(np.max(np.maximum(op.vth + pos, neg / op.du)))
        stats[node] = {"u": u, "v": v}
    return stats


def snap_stats(ir, stats: dict) -> dict:
    """Stats giving each population the largest scale lam <= the quantizer's choice for
    which the feed-forward weights' largest magnitude lands exactly on 254 * 2**weight_exp,
    so the 8-bit mantissas use their whole range (at most one bit of state headroom spent)."""
    from models import fixed_point as fx
    from toolchain import ir as irm
    from toolchain.quantize import HEADROOM, choose_scale

    out = {}
    for node, _ in ir.nodes(*irm.NEURONS):
        lam, _ = choose_scale(ir, node, stats[node])
        w = max(float(np.abs(ir.op(s).weight).max()) for s in ir.inputs(node) if s.endswith(".dense"))
        exp = math.floor(math.log2(lam * w / 254.0))
        lam_snapped = 254.0 * 2.0 ** exp / w * (1 - 1e-12)  # just below, so weight_exp_for picks exp
        peak = fx.V_SAT / (HEADROOM * float(1 << fx.ACT_SHIFT) * lam_snapped)
        out[node] = {"u": min(stats[node]["u"], peak), "v": peak}
    return out


def quantize_ttfs(ir, x_cal=None, stats: str = "bound"):
    """Quantize a lowered TTFS IR with `toolchain.quantize` -> (fixed IR, reports).

    ``stats="bound"``: worst-case bounds (`bound_stats`, needs refire="inhibit");
    ``"data"``: `calibration_stats` on the encoded ``x_cal`` (float emulator run).
    Either is then snapped (`snap_stats`) so the 8-bit weights use their full range.
    """
    from toolchain import passes
    from toolchain.quantize import calibration_stats, quantize

    if stats == "bound":
        if ir.meta["ttfs"]["refire"] != "inhibit":
            raise SpikeportError("ttfs: stats='bound' needs refire='inhibit' (neurons that spike once)")
        raw = bound_stats(ir)
    elif stats == "data":
        if x_cal is None:
            raise SpikeportError("ttfs: stats='data' needs calibration inputs x_cal")
        raw = calibration_stats(ir, encode_input(x_cal, ir.meta))
    else:
        raise SpikeportError(f"ttfs: stats={stats!r} is not 'bound' or 'data'")
    fixed, reports = quantize(ir, snap_stats(ir, raw))
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
    from toolchain import ir as irm

    neurons = ir.names(*irm.NEURONS)
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
