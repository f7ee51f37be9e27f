"""Scores of gate networks on trials: XOR correctness and confidence, predictive-coding NMSE, rates.

XOR (per trial): the mean readout over the scored window (``score``, default 750-950 ms);
correct when its sign is the XOR label, confident when also ``|mean| >= 0.5``.
Predictive coding: normalised MSE = mean over scored steps and channels of (o - i)**2
divided by the variance of i over the same steps.
Works on any readout array (float model, deployed engines): `score_readout`.
"""
from __future__ import annotations

import numpy as np
import torch

from toolchain.methods.gate.config import CONFIDENT
from toolchain.tasks.gate_tasks import xor_label


def score_readout(o: np.ndarray, trials, task: str) -> dict:
    """Figures of the readout ``o`` (B, T, n_out) on ``trials``."""
    if task == "xor":
        mask = trials.score.astype(np.float64)
        mean = (o[..., 0] * mask).sum(1) / mask.sum(1)
        right = np.sign(mean) == xor_label(trials.condition)
        per = {int(c): float(right[trials.condition == c].mean()) for c in range(4)}
        return dict(correct=float(right.mean()), confident=float((right & (np.abs(mean) >= CONFIDENT)).mean()),
                    per_condition=per, trials=len(mean))
    return dict(nmse=nmse(o, trials.target, trials.score), trials=len(o))


def nmse(o: np.ndarray, target: np.ndarray, scored: np.ndarray) -> float:
    """sum (o - target)**2 / sum (target - mean target)**2 over the scored steps and channels."""
    m = scored[..., None].astype(bool).repeat(target.shape[2], 2)
    err = ((o - target) ** 2)[m].sum()
    return float(err / ((target[m] - target[m].mean()) ** 2).sum())


@torch.no_grad()
def evaluate(net, trials, cfg: dict) -> dict:
    """The float model's score on ``trials`` plus its mean firing rate (spikes/s per neuron)."""
    from models.gate import drive_of
    from models.gate_kernel import run

    arrays = run(net.recurrent(), drive_of(net, torch.as_tensor(trials.inputs, dtype=net.U.dtype)), net.neuron)
    o = arrays["r"] @ net.O.detach().double().numpy().T + net.o_b.detach().double().numpy()
    rate = float(arrays["spikes"].mean()) * 1000.0 / cfg["dt"]
    return dict(score_readout(o, trials, cfg["task"]), rate_hz=rate)
