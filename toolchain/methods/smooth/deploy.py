"""Continuous theta network vs its deployed QIF network: readout, spike timing, engines, dt sweep.

Times are the theta neuron's time units; errors are in deployed steps dt. The step
convention (layer l's step n stands for time ``(n - l - 1) dt``) is `lower`'s.

Deployed readout (`readout`): the class of the first output spike before T (ties: the
larger x in that step, the neuron closest to firing); when no output neuron fires, the
largest final x ("fallback": the pseudospike rule without its input term). Accuracy is
reported with the fallback and, separately, how many trials needed it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from models.theta_network import predict, predict_ordinary
from toolchain import scaleout
from toolchain.methods.smooth.lower import calibrate_thresholds, lower_smooth, quantize_smooth
from toolchain.methods.smooth.train import input_index, input_times, load_checkpoint
from toolchain.tasks import datasets
from toolchain.verify.compare import combine, compare_bit_identity


def compile_smooth(path, k: int):
    """Checkpoint -> (network, fixed IR, report lines) at step h = 2**-k."""
    net, meta = load_checkpoint(path)
    net = net.double().eval()
    x_th, x_reset = calibrate_thresholds(k, net.neuron.tau, net.neuron.I0 - 0.25, net.T)
    ir, lines = quantize_smooth(lower_smooth(net, k, x_th, x_reset))
    ir.meta.update(task=meta.get("task"), method="smooth", run_config=meta.get("run_config", {}),
                   quantization_mode=f"smooth: QIF at h=2**-{k}, thresholds calibrated on free neurons")
    return net, ir, lines


def encode(t_in: np.ndarray, meta: dict) -> np.ndarray:
    """Input spike times (B, n_in; ``inf`` none) -> engine input (B, steps, n_in): a spike at step
    ``round(t / dt) + 1`` (array index ``round(t / dt)``)."""
    B, n = t_in.shape
    x = np.zeros((B, meta["steps"], n), bool)
    b, i = np.nonzero(np.isfinite(t_in))
    idx = np.rint(t_in[b, i] / meta["dt"]).astype(int)
    keep = idx < meta["steps"]
    x[b[keep], idx[keep], i[keep]] = True
    return x


def deployed_times(s: np.ndarray, layer: int, meta: dict) -> tuple:
    """(time of each step (steps,), the spikes (B, steps, n) that fall before T) for layer ``layer``."""
    t = (np.arange(s.shape[1]) + 1 - layer - 1) * meta["dt"]
    return t, (s.astype(bool) & (t < meta["T"] - 1e-12)[None, :, None])


def first_times(s: np.ndarray, layer: int, meta: dict) -> np.ndarray:
    """First deployed spike time (B, n) before T, ``inf`` if none."""
    t, valid = deployed_times(s, layer, meta)
    first = np.where(valid.any(1), t[valid.argmax(1)], np.inf)
    return first


def readout(s_out: np.ndarray, x_out: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """(predicted class, fallback used) per sample; see the module docstring."""
    L = meta["layers"]
    first = first_times(s_out, L, meta)
    fired = np.isfinite(first)
    step = np.rint(np.where(fired, first, 0.0) / meta["dt"]).astype(int) + L
    x_at = np.take_along_axis(x_out, np.clip(step, 0, x_out.shape[1] - 1)[:, None, :], 1)[:, 0]
    earliest = first == first.min(1, keepdims=True)
    by_spike = np.where(earliest & fired, x_at, -np.inf).argmax(1)
    fallback = ~fired.any(1)
    return np.where(fallback, x_out[:, -1].argmax(1), by_spike), fallback


@dataclass
class Continuous:
    """The float64 continuous model on a set: first spike times and counts per layer, predictions."""

    first: list
    counts: list
    pred: np.ndarray
    pred_ordinary: np.ndarray
    t_in: np.ndarray
    T: float


@torch.no_grad()
def continuous(net, x: np.ndarray, cfg: dict, batch: int = 1000) -> Continuous:
    firsts, counts, pred, ordinary, times = [], [], [], [], []
    for i in range(0, len(x), batch):
        t_in = input_times(input_index(torch.as_tensor(x[i:i + batch]).double(), cfg), net, cfg)
        out = net(t_in)
        firsts.append([s.min(1).values.numpy() for s in out["spikes"]])
        counts.append([torch.isfinite(s).sum(1).numpy() for s in out["spikes"]])
        pred.append(predict(out["t_out"]).numpy())
        ordinary.append(predict_ordinary(out["first"], net.T).numpy())
        times.append(t_in.numpy())
    layers = len(net.phases)
    return Continuous([np.concatenate([f[l] for f in firsts]) for l in range(layers)],
                      [np.concatenate([c[l] for c in counts]) for l in range(layers)],
                      np.concatenate(pred), np.concatenate(ordinary), np.concatenate(times), net.T)


@dataclass
class Deployed:
    """One engine's run on a set: first spike times and counts per layer, readout."""

    engine: str
    first: list
    counts: list
    pred: np.ndarray
    fallback: np.ndarray
    recordings: list = field(default_factory=list)  # kept only when asked (bit identity)


def run_deployed(engine: str, ir, t_in: np.ndarray, batch: int = 500, keep: bool = False,
                 progress: bool = False) -> Deployed:
    """Run ``engine`` on the encoded inputs, in batches (recording s per layer and the output x)."""
    meta = ir.meta["smooth"]
    L = meta["layers"]
    record = [f"l{l}/s" for l in range(1, L + 1)] + [f"l{L}/x"] if not keep else None
    firsts, counts, preds, falls, kept = [], [], [], [], []
    for i in tqdm(range(0, len(t_in), batch), desc=engine, leave=False, disable=not progress):
        out = scaleout.run(engine, ir, encode(t_in[i:i + batch], meta), record)
        firsts.append([first_times(out[f"l{l}/s"], l, meta) for l in range(1, L + 1)])
        counts.append([deployed_times(out[f"l{l}/s"], l, meta)[1].sum(1) for l in range(1, L + 1)])
        pred, fall = readout(out[f"l{L}/s"], out[f"l{L}/x"], meta)
        preds.append(pred)
        falls.append(fall)
        if keep:
            kept.append(out)
    return Deployed(engine, [np.concatenate([f[l] for f in firsts]) for l in range(L)],
                    [np.concatenate([c[l] for c in counts]) for l in range(L)],
                    np.concatenate(preds), np.concatenate(falls), kept)


def timing(cont: Continuous, dep: Deployed, dt: float) -> list:
    """Per layer: first-spike error in steps (neurons firing in both: median |e|, p95, max, mean)
    and spike-count agreement (fraction of neuron x sample pairs with equal counts before T)."""
    rows = []
    for l, (tc, td, cc, cd) in enumerate(zip(cont.first, dep.first, cont.counts, dep.counts), start=1):
        tc = np.where(tc < cont.T, tc, np.inf)
        both = np.isfinite(tc) & np.isfinite(td)
        err = (td[both] - tc[both]) / dt
        rows.append(dict(layer=f"l{l}", pairs=int(both.sum()), median_abs=_q(np.abs(err), 50),
                         p95_abs=_q(np.abs(err), 95), max_abs=float(np.abs(err).max(initial=0.0)),
                         mean=float(err.mean()) if err.size else math.nan,
                         only_continuous=int((np.isfinite(tc) & ~np.isfinite(td)).sum()),
                         only_deployed=int((~np.isfinite(tc) & np.isfinite(td)).sum()),
                         count_agreement=float((cc == cd).mean())))
    return rows


def _q(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if a.size else math.nan


def bit_identity(ir, t_in: np.ndarray, batch: int = 50):
    """Lava fixed_pt vs the emulator on ``t_in``, every state variable and spike of every layer."""
    meta = ir.meta["smooth"]
    chunks = []
    for i in range(0, len(t_in), batch):
        x = encode(t_in[i:i + batch], meta)
        chunks.append(compare_bit_identity("lava", scaleout.run("lava", ir, x), "emulator", scaleout.run("emulator", ir, x)))
    return combine(chunks)


def torch_identity(ir, t_in: np.ndarray, batch: int = 200):
    """The torch fixed mode (`toolchain.methods.smooth.fixed`) vs the emulator on ``t_in``, every
    state variable and spike of every layer."""
    from toolchain.methods.smooth import fixed  # lazy: the verbs that never need it stay lighter

    meta = ir.meta["smooth"]
    chunks = []
    for i in range(0, len(t_in), batch):
        x = encode(t_in[i:i + batch], meta)
        chunks.append(compare_bit_identity("torch-fixed", fixed.run(ir, x), "emulator", scaleout.run("emulator", ir, x)))
    return combine(chunks)


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float((pred == y).mean())


def load_split(task: str, n: int | None):
    data = datasets.load_task(task)
    n = len(data.x_test) if n is None else min(n, len(data.x_test))
    return data.x_test[:n].astype(np.float64), data.y_test[:n]
