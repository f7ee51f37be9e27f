"""Time-to-first-spike (Mostafa 2018) training in continuous time, and TTFS checkpoints.

`train_ttfs` runs the exact continuous-time model of `models.ttfs_layer` with exact
spike-time gradients. Times are in units of tau_syn; ``z = exp(t / tau_syn)``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from models.errors import SpikeportError
from models.ttfs_layer import TTFSNetwork, predict, ttfs_loss
from toolchain import checkpoint
from toolchain.methods.config import resolve
from toolchain.methods.ttfs.config import RANGES, RUN_DEFAULTS, TASK_DEFAULTS
from toolchain.tasks import datasets
from toolchain.methods.ttfs.config import KIND
from toolchain.threads import set_threads



@dataclass
class TTFSResult:
    model: TTFSNetwork
    meta: dict
    history: list = field(default_factory=list)


def ttfs_config(task: str, config_file=None, **overrides) -> dict:
    """Run and task defaults (`config`) <- config file (JSON) <- non-None keyword overrides."""
    if task not in TASK_DEFAULTS:
        raise SpikeportError(f"ttfs: unknown task {task!r}; choose one of {', '.join(TASK_DEFAULTS)}")
    return resolve({**RUN_DEFAULTS, **TASK_DEFAULTS[task], "task": task}, config_file, what="ttfs",
                   ranges=RANGES, **overrides)


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
               progress: bool = True, log=print, data=None, config_file=None, **overrides) -> TTFSResult:
    """Train a TTFS network (784-800-10 on MNIST by default) with the exact gradients.

    Adam, cross-entropy over ``-z_out`` plus ``k_penalty`` times the weight-sum
    penalty, gradient-norm clipping at ``clip``, learning rate decayed by
    ``lr_decay`` over the run (cosine). Deterministic for a given ``seed`` and
    thread count. Writes a checkpoint to ``out`` if given. ``data`` may pass a
    `toolchain.tasks.datasets.Dataset` (tests); otherwise ``load_task(task)``.
    ``config_file``: a JSON object overriding `config` defaults (flags win).
    """
    cfg = ttfs_config(task, config_file, epochs=epochs, seed=seed, **overrides)
    if cfg["threads"]:
        set_threads(int(cfg["threads"]))
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
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", **{"running train acc": f"{correct / seen:.3f}"})
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


def save_checkpoint(path, model: TTFSNetwork, meta: dict) -> None:
    """``.pt`` of kind ``spikeport-ttfs-checkpoint``: the network config, weights and meta (atomic)."""
    checkpoint.write_network(path, KIND, model, meta)


def load_checkpoint(path) -> tuple[TTFSNetwork, dict]:
    """Rebuild a TTFS network from a checkpoint written by `save_checkpoint`."""
    return checkpoint.read_network(path, KIND, TTFSNetwork)
