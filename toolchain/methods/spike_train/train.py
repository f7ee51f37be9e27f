"""Training a spike-transform student with either rule (`train_spike_transform`). Times in ms."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import torch

from toolchain.methods.spike_train.config import method_config
from toolchain.methods.spike_train.exact import train_exact
from toolchain.methods.spike_train.surrogate import discretize, train_surrogate
from toolchain.tasks.spike_transform import SpikeTransformTask, make_task, student_network


@dataclass
class TransformResult:
    """A trained student and what happened: ``history`` rows per iteration, ``final`` summary."""

    method: str
    model: torch.nn.Module
    task: SpikeTransformTask
    history: list = field(default_factory=list)
    final: dict = field(default_factory=dict)


def train_spike_transform(method: str, seed: int = 0, task_overrides: Optional[dict] = None,
                          method_overrides: Optional[dict] = None, progress: bool = False) -> TransformResult:
    """Make the task for ``seed``, initialise the student (seed ``seed``) and train it with ``method``.

    ``method``: ``exact`` (continuous student, exact gradients) or ``surrogate`` (the same
    initialisation discretised, SuperSpike). The result's ``final`` holds the error and the
    `match_trains` summary of the kept (best) state on the training patterns, the number of
    iterations run and the wall time (s).
    """
    cfg = method_config(method, **(method_overrides or {}))
    task = make_task(seed, **(task_overrides or {}))
    student = student_network(task, seed)
    start = time.perf_counter()
    if method == "exact":
        history = train_exact(student, task, cfg, progress)
        model = student
    else:
        model = discretize(student, slope=cfg["slope"])
        history = train_surrogate(model, task, cfg, progress)
    wall = time.perf_counter() - start
    best = min(history, key=lambda row: (not row["converged"], row["error"]))
    final = dict(method=method, seed=seed, iterations=len(history), best_iteration=best["iteration"],
                 error=best["error"], converged=best["converged"], count_ok=best["count_ok"],
                 max_abs=best["max_abs"], mean_abs=best["mean_abs"], seconds=wall, config=cfg)
    return TransformResult(method, model, task, history, final)
