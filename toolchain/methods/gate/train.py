"""Training gate networks by BPTT (`models.gate`), resumable, with progress and checkpoints.

Iteration i (1-based) trains on a fresh batch drawn with seed ``seed * 100003 + i``
(`batch_seed`), so a resumed run sees exactly the batches an uninterrupted one would; the
validation trials use seeds no batch uses. A checkpoint (kind `KIND`) is written every
``eval_every`` iterations and at the end: the network, the Adam state, the iteration,
the history (validation score per evaluation) and the wall time. Time in ms.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.errors import SpikeportError
from models.gate import GateNetwork, GateNeuron, readout, weighted_mse
from toolchain import checkpoint
from toolchain.methods.config import resolve
from toolchain.methods.gate import score
from toolchain.methods.gate.config import KIND, NEURON_KEYS, RANGES, RUN_DEFAULTS, TASK_DEFAULTS
from toolchain.tasks.gate_tasks import make_trials
from toolchain.threads import set_threads

VALIDATION_SEED = 7_777_777


def gate_config(task: str, config_file=None, **overrides) -> dict:
    """Run and task defaults <- config file (JSON) <- non-None keyword overrides."""
    if task not in TASK_DEFAULTS:
        raise SpikeportError(f"gate: unknown task {task!r}; choose one of {', '.join(TASK_DEFAULTS)}")
    return resolve({**RUN_DEFAULTS, **TASK_DEFAULTS[task], "task": task}, config_file, what="gate",
                   ranges=RANGES, **overrides)


def new_network(cfg: dict, trials) -> GateNetwork:
    neuron = GateNeuron(**{k: cfg[k] for k in NEURON_KEYS})
    return GateNetwork(trials.inputs.shape[2], cfg["n_rec"], trials.target.shape[2], neuron,
                       w_scale=cfg["w_scale"], u_scale=cfg["u_scale"], bias_range=cfg["bias_range"],
                       bias_mean=cfg["bias_mean"], o_scale=cfg["o_scale"], seed=cfg["seed"])


def optimizer(net: GateNetwork, cfg: dict) -> torch.optim.Adam:
    """Adam with ``lr`` for W, U, b and ``lr_readout`` for O, o_b (the readout learns faster
    than the dynamics it reads may change); both decay as exp(-iteration / tau_lr)."""
    return torch.optim.Adam([dict(params=[net.W, net.U, net.b], lr=cfg["lr"]),
                             dict(params=[net.O, net.o_b], lr=cfg["lr_readout"])],
                            betas=(cfg["beta1"], cfg["beta2"]))


def batch_seed(seed: int, iteration: int) -> int:
    return seed * 100_003 + iteration


def tensors(trials, dtype=torch.float32):
    return (torch.as_tensor(trials.inputs, dtype=dtype), torch.as_tensor(trials.target, dtype=dtype),
            torch.as_tensor(trials.weight, dtype=dtype))


def loss_of(net: GateNetwork, trials, cfg: dict) -> torch.Tensor:
    """Weighted MSE of the readout plus ``activity`` times the mean readout trace (XOR: of r**2)."""
    x, y, w = tensors(trials)
    out = readout(net, x)
    penalty = (out["r"] ** 2).mean() if cfg["task"] == "xor" else out["r"].abs().mean()
    return weighted_mse(out["o"], y, w) + cfg["activity"] * penalty


def load_checkpoint(path):
    """(network, meta) of a gate checkpoint."""
    return checkpoint.read_network(path, KIND, GateNetwork.from_config)


def train_gate(task: str, iterations=None, seed: int = 0, out="model.pt", resume: bool = False,
               progress: bool = True, log=print, config_file=None, **overrides) -> dict:
    """Train on ``task``; write the checkpoint ``out`` every ``eval_every`` iterations; returns its meta."""
    cfg = gate_config(task, config_file, iterations=iterations, seed=seed, **overrides)
    set_threads(cfg["threads"])
    probe = make_trials(task, 4, 0, cfg["dt"], cfg)
    net = new_network(cfg, probe)
    opt = optimizer(net, cfg)
    history, start, wall = [], 0, 0.0
    if resume and Path(out).is_file():
        start, history, wall = _resume(out, cfg, net, opt)
        if log:
            log(f"resuming {out} after iteration {start} of {cfg['iterations']}")
    validation = make_trials(task, cfg["eval_trials"], VALIDATION_SEED + cfg["seed"], cfg["dt"], cfg)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: float(np.exp(-(start + i) / cfg["tau_lr"])))
    bar = tqdm(range(start + 1, cfg["iterations"] + 1), desc=f"gate {task}", disable=not progress, unit="it")
    t_last = time.perf_counter()
    for it in bar:
        loss = loss_of(net, make_trials(task, cfg["batch_size"], batch_seed(cfg["seed"], it), cfg["dt"], cfg), cfg)
        opt.zero_grad()
        loss.backward()
        for p in net.parameters():  # per tensor: W's gradient can be 1000x O's, a global clip would stall O
            torch.nn.utils.clip_grad_norm_(p, cfg["clip"])
        opt.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if it % cfg["eval_every"] == 0 or it == cfg["iterations"]:
            now = time.perf_counter()
            wall += now - t_last
            history.append(dict(iteration=it, train_loss=loss.item(), wall_s=wall,
                                **score.evaluate(net, validation, cfg)))
            checkpoint.write(out, KIND, **_state(net, opt, cfg, history, it, wall))
            if log:
                log(_line(history[-1], cfg))
            t_last = time.perf_counter()
    if not Path(out).is_file():
        checkpoint.write(out, KIND, **_state(net, opt, cfg, history, start, wall))
    return checkpoint.read(out, KIND)["meta"]


def _state(net, opt, cfg, history, iteration, wall) -> dict:
    return dict(config=net.config, state_dict=net.state_dict(), optimizer=opt.state_dict(), iteration=iteration,
                history=history, meta=dict(task=cfg["task"], method="gate", run_config=cfg, iterations=iteration,
                                           wall_time_s=wall, validation=history[-1] if history else {}))


def _resume(out, cfg, net, opt):
    payload = checkpoint.read(out, KIND, required=("config", "state_dict", "optimizer", "iteration", "history"))
    stored = payload["meta"].get("run_config", {})
    changed = sorted(k for k in cfg if k != "iterations" and stored.get(k) != cfg[k])
    if changed:
        k = changed[0]
        raise SpikeportError(f"{out}: --resume with {k}={cfg[k]!r}, but the checkpoint was trained with "
                             f"{k}={stored.get(k)!r} (only iterations may change)")
    checkpoint.load_weights(out, net, payload["state_dict"])
    opt.load_state_dict(payload["optimizer"])
    return int(payload["iteration"]), list(payload["history"]), float(payload["meta"].get("wall_time_s", 0.0))


def _line(h: dict, cfg: dict) -> str:
    if cfg["task"] == "xor":
        figure = f"validation correct {h['correct']:.1%}, confident {h['confident']:.1%}"
    else:
        figure = f"validation NMSE {h['nmse']:.4f}"
    return (f"iteration {h['iteration']}: loss {h['train_loss']:.4f}, {figure}, "
            f"{h['rate_hz']:.1f} spikes/s per neuron, {h['wall_s']:.0f} s")


def history(path) -> list:
    return list(checkpoint.read(path, KIND).get("history", []))


def seconds_per_iteration(net: GateNetwork, trials, cfg: dict, repeats: int = 3) -> float:
    """Mean wall time of one training iteration (forward, backward, Adam step)."""
    opt = optimizer(net, cfg)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loss = loss_of(net, trials, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.mean(times))
