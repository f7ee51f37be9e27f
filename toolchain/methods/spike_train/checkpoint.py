"""Spike-transform checkpoints: the learning rule, the student's config and weights, the task
config (seed included) and the training summary.

Payload (kind ``spikeport-spike-transform-checkpoint``, `toolchain.checkpoint`)::

    {"method": "exact" | "surrogate", "config": ..., "state_dict": ..., "task": task config, "final": {...}}
"""
from __future__ import annotations

import torch

from models.errors import SpikeportError
from models.exact_spikes import ExactNetwork
from models.network import Network
from toolchain import checkpoint
from toolchain.methods.spike_train.config import KIND
from toolchain.methods.spike_train.report import plain
from toolchain.methods.spike_train.train import TransformResult
from toolchain.tasks.spike_transform import SpikeTransformTask, make_task



def save_checkpoint(path, result: TransformResult) -> None:
    """``.pt``: the rule, the model's config and weights, the task config and the summary (atomic)."""
    checkpoint.write(path, KIND, method=result.method, config=result.model.config,
                     state_dict=result.model.state_dict(), task=result.task.config, final=plain(result.final))


def load_checkpoint(path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the student of a checkpoint written by `save_checkpoint`: (model, payload).

    ``exact`` gives an `ExactNetwork` (continuous time), ``surrogate`` a discrete
    `models.network.Network`; `load` also rebuilds the task.
    """
    payload = checkpoint.read(path, KIND, required=("method", "config", "state_dict", "task"))
    factories = {"exact": lambda cfg: ExactNetwork(**cfg), "surrogate": Network}
    if not isinstance(payload["method"], str) or payload["method"] not in factories:
        raise SpikeportError(f"{path}: checkpoint method={payload['method']!r} is outside "
                             f"{{{', '.join(factories)}}}")
    model = checkpoint.build(path, factories[payload["method"]], payload["config"])
    checkpoint.load_weights(path, model, payload["state_dict"])
    return model, payload


def load(path) -> tuple[torch.nn.Module, dict, SpikeTransformTask]:
    """(model, payload, task) of a checkpoint; the task rebuilt from its stored config (and seed)."""
    model, payload = load_checkpoint(path)
    task_cfg = dict(payload["task"])
    task_cfg["weight_spread"] = tuple(task_cfg["weight_spread"])
    return model, payload, make_task(**task_cfg)
