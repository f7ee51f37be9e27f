"""Training theta networks with smooth exact gradients and pseudospikes; resumable checkpoints.

Time is the theta neuron's dimensionless time (trial ``[0, T]``). Inputs (`input_times`):
with ``bins >= 1`` each feature's intensity picks a bin and the features of a bin spike
together at that bin's time (`models.theta_network.bin_times`; MNIST: one bin, pixels >= 128
spike at t = 0.0201); with ``bins = 0`` each feature spikes at ``latency_window (1 - x)``.

A checkpoint (kind `KIND`) is written after every epoch and holds the network, the
optimiser, the schedule, the data-order generator and the history, so ``resume=True``
continues an interrupted run exactly where its last epoch ended.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from models import theta
from models.errors import SpikeportError
from models.theta_network import ThetaNetwork, bin_index, bin_times, flip_bins, predict, predict_ordinary
from toolchain import checkpoint
from toolchain.methods.config import resolve
from toolchain.methods.smooth.config import KIND, RANGES, RUN_DEFAULTS, TASK_DEFAULTS
from toolchain.methods.smooth.optim import AdaBelief, exponential_decay
from toolchain.tasks import datasets
from toolchain.threads import set_threads


def smooth_config(task: str, config_file=None, **overrides) -> dict:
    """Run and task defaults <- config file (JSON) <- non-None keyword overrides."""
    if task not in TASK_DEFAULTS:
        raise SpikeportError(f"smooth: unknown task {task!r}; choose one of {', '.join(TASK_DEFAULTS)}")
    return resolve({**RUN_DEFAULTS, **TASK_DEFAULTS[task], "task": task}, config_file, what="smooth",
                   ranges=RANGES, **overrides)


def new_network(cfg: dict, n_in: int, n_classes: int) -> ThetaNetwork:
    neuron = theta.ThetaNeuron(tau=cfg["tau"], I0=cfg["I0"])
    levels = bin_times(cfg["bins"], cfg["T"]) if cfg["bins"] else None
    return ThetaNetwork([n_in, *cfg["hidden"], n_classes], T=cfg["T"], neuron=neuron, levels=levels,
                        w_scale=cfg["w_scale"], seed=cfg["seed"])


def input_index(x: torch.Tensor, cfg: dict) -> torch.Tensor:
    """The binned code's bin per feature (``bins`` = no spike); the latency code keeps x."""
    return bin_index(x, cfg["bins"]) if cfg["bins"] else x


def input_times(code: torch.Tensor, net: ThetaNetwork, cfg: dict) -> torch.Tensor:
    """Spike time per feature (B, n_in), ``inf`` for none, from `input_index`'s code."""
    if cfg["bins"]:
        levels = torch.cat([net.levels, torch.tensor([math.inf], dtype=net.levels.dtype)])
        return levels[code]
    return (cfg["latency_window"] * (1 - code)).to(net.weights[0].dtype)


def training_times(x: torch.Tensor, net: ThetaNetwork, cfg: dict, gen: torch.Generator) -> torch.Tensor:
    """A training batch's input spike times (B, n_in), with the pixel-flip augmentation."""
    code = input_index(x, cfg)
    if cfg["bins"] and cfg["p_flip"]:
        code = flip_bins(code, cfg["bins"], cfg["p_flip"], gen)
    return input_times(code, net, cfg)


@torch.no_grad()
def evaluate(net: ThetaNetwork, x, y, cfg: dict) -> dict:
    """The reference's probe: loss and accuracy with pseudospikes, accuracy from ordinary spikes
    only (``acc_ord``), hidden spikes per neuron per sample, fraction of hidden neurons that never
    fire on the whole set."""
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    loss = correct = ordinary = spikes = 0.0
    fired = [torch.zeros(n, dtype=torch.bool) for n in net.sizes[1:-1]]
    for i in range(0, len(x), cfg["eval_batch"]):
        xb, yb = x[i:i + cfg["eval_batch"]], y[i:i + cfg["eval_batch"]]
        out = net(input_times(input_index(xb, cfg), net, cfg))
        loss += float(theta.smooth_loss(out["t_out"], yb, net.T, cfg["gamma"])) * len(xb)
        correct += int((predict(out["t_out"]) == yb).sum())
        ordinary += int((predict_ordinary(out["first"], net.T) == yb).sum())
        for l, s in enumerate(out["spikes"][:-1]):
            count = torch.isfinite(s).sum(1)
            spikes += float(count.sum())
            fired[l] |= (count > 0).any(0)
    hidden = sum(net.sizes[1:-1])
    return dict(loss=loss / len(x), accuracy=correct / len(x), accuracy_ordinary=ordinary / len(x),
                spikes_per_neuron=spikes / (len(x) * hidden),
                silent_fraction=float(sum((~f).sum() for f in fired)) / hidden)


def _state(net, opt, sched, gen, cfg, history, epoch, wall) -> dict:
    return dict(config=net.config, state_dict=net.state_dict(), optimizer=opt.state_dict(),
                schedule=sched.state_dict(), generator=gen.get_state(), epoch=epoch, history=history,
                meta=dict(task=cfg["task"], method="smooth", run_config=cfg, epochs=epoch, wall_time_s=wall,
                          accuracy=history[-1] if history else {}))


def load_checkpoint(path):
    """(network, meta) of a smooth checkpoint (float32 weights as trained)."""
    return checkpoint.read_network(path, KIND, ThetaNetwork.from_config)


def train_smooth(task: str, epochs=None, seed: int = 0, out="model.pt", resume: bool = False,
                 progress: bool = True, log=print, config_file=None, **overrides) -> dict:
    """Train on ``task``; write the checkpoint ``out`` after every epoch; returns its meta."""
    cfg = smooth_config(task, config_file, epochs=epochs, seed=seed, **overrides)
    if cfg["threads"]:
        set_threads(cfg["threads"])
    data = datasets.load_task(task)
    x_train, y_train = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    if cfg["max_train"]:
        x_train, y_train = x_train[:cfg["max_train"]], y_train[:cfg["max_train"]]
    net = new_network(cfg, data.n_features, data.n_classes)
    batches = math.ceil(len(x_train) / cfg["batch_size"])
    opt = AdaBelief(net.parameters(), lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]))
    sched = exponential_decay(opt, cfg["tau_lr"] * batches)
    gen = torch.Generator().manual_seed(cfg["seed"])
    history, start, wall = [], 0, 0.0
    if resume and Path(out).is_file():
        start, history, wall = _resume(out, cfg, net, opt, sched, gen)
        if log:
            log(f"resuming {out} after epoch {start} of {cfg['epochs']}")
    if not history:
        history.append(dict(epoch=0, **evaluate(net, data.x_test, data.y_test, cfg)))
        if log:
            log(_epoch_line(history[-1], 0.0))
    for epoch in range(start + 1, cfg["epochs"] + 1):
        t0 = time.perf_counter()
        train_loss, train_acc = _epoch(net, opt, sched, gen, x_train, y_train, cfg, epoch, progress)
        wall += time.perf_counter() - t0
        history.append(dict(epoch=epoch, train_loss=train_loss, train_accuracy=train_acc,
                            epoch_s=time.perf_counter() - t0, **evaluate(net, data.x_test, data.y_test, cfg)))
        checkpoint.write(out, KIND, **_state(net, opt, sched, gen, cfg, history, epoch, wall))
        if log:
            log(_epoch_line(history[-1], wall))
    if start >= cfg["epochs"] and not Path(out).is_file():
        checkpoint.write(out, KIND, **_state(net, opt, sched, gen, cfg, history, start, wall))
    return checkpoint.read(out, KIND)["meta"]


def _resume(out, cfg, net, opt, sched, gen):
    payload = checkpoint.read(out, KIND, required=("config", "state_dict", "optimizer", "epoch", "history"))
    stored = payload["meta"].get("run_config", {})
    changed = sorted(k for k in cfg if k != "epochs" and stored.get(k) != cfg[k])
    if changed:
        k = changed[0]
        raise SpikeportError(f"{out}: --resume with {k}={cfg[k]!r}, but the checkpoint was trained with "
                             f"{k}={stored.get(k)!r} (only epochs may change)")
    checkpoint.load_weights(out, net, payload["state_dict"])
    opt.load_state_dict(payload["optimizer"])
    sched.load_state_dict(payload["schedule"])
    gen.set_state(payload["generator"])
    return int(payload["epoch"]), list(payload["history"]), float(payload["meta"].get("wall_time_s", 0.0))


def _epoch(net, opt, sched, gen, x, y, cfg, epoch: int, progress: bool):
    order = torch.randperm(len(x), generator=gen)
    total_loss = correct = 0.0
    bar = tqdm(range(0, len(x), cfg["batch_size"]), desc=f"epoch {epoch}/{cfg['epochs']}", leave=False,
               disable=not progress, unit="batch")
    for i in bar:
        idx = order[i:i + cfg["batch_size"]]
        out = net(training_times(x[idx], net, cfg, gen))
        loss = theta.smooth_loss(out["t_out"], y[idx], net.T, cfg["gamma"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        net.clamp_phases()
        total_loss += loss.item() * len(idx)
        correct += int((predict(out["t_out"].detach()) == y[idx]).sum())
        bar.set_postfix(loss=f"{loss.item():.3f}", **{"running train acc": f"{correct / min(i + len(idx), len(x)):.3f}"})
    return total_loss / len(x), correct / len(x)


def _epoch_line(h: dict, wall: float) -> str:
    return (f"epoch {h['epoch']}: test accuracy {h['accuracy']:.2%} (ordinary spikes only "
            f"{h['accuracy_ordinary']:.2%}), loss {h['loss']:.3f}, hidden silent {h['silent_fraction']:.1%}, "
            f"{h['spikes_per_neuron']:.3f} spikes/neuron/sample, {wall:.0f} s")


def history_plot(history: list, ax) -> None:
    """Test accuracy (with pseudospikes and ordinary only) against epochs, on a matplotlib axis."""
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [100 * h["accuracy"] for h in history], label="with pseudospikes")
    ax.plot(epochs, [100 * h["accuracy_ordinary"] for h in history], label="ordinary spikes only")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()


def history(path) -> list:
    """The per-epoch history a smooth checkpoint holds."""
    return list(checkpoint.read(path, KIND).get("history", []))
