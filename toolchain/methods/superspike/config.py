"""SuperSpike training defaults: per task, for fine-tuning, and for every run; a network's task and encoding."""
from __future__ import annotations

from typing import Optional

from models.errors import SpikeportError
from toolchain.flags import FRACTION, NON_NEGATIVE_INT, POSITIVE


TASK_DEFAULTS = {
    "digits": dict(encoding=dict(name="regular", T=20, max_rate=0.5), hidden=[128], du=0.2, dv=0.05,
                   weight_gain=3.0, epochs=30, lr=3e-3, weight_decay=2.0, batch_size=64, loss="count"),
    "yinyang": dict(encoding=dict(name="regular", T=30, max_rate=0.5), hidden=[64], du=0.2, dv=0.05,
                    weight_gain=3.0, epochs=30, lr=3e-3, weight_decay=0.01, batch_size=64, loss="count"),
    "mnist": dict(encoding=dict(name="regular", T=20, max_rate=0.5), hidden=[256], du=0.2, dv=0.05,
                  weight_gain=3.0, epochs=5, lr=2e-3, weight_decay=0.01, batch_size=128, loss="count"),
}
FINETUNE_DEFAULTS = dict(epochs=10, lr=3e-4)  # a short, gentle run from a trained network
RUN_DEFAULTS = dict(seed=0, feedback="symmetric", slope=10.0, mode="float", threads=None,
                    max_delay=0, recurrent=False)
# Ranges of SuperSpike's own config keys (shared ones: `toolchain.methods.config.RANGES`); du, dv per step
RANGES = dict(du=FRACTION, dv=FRACTION, weight_gain=POSITIVE, slope=POSITIVE, max_delay=NON_NEGATIVE_INT)


def with_task(meta: dict, task: Optional[str]) -> dict:
    """``meta`` with the task (``task`` overrides) and its input encoding filled in."""
    task = task or meta.get("task")
    if not task:
        raise SpikeportError("no task recorded in the model; pass --task")
    encoding = meta.get("encoding")
    if encoding is None:
        if task not in TASK_DEFAULTS:
            raise SpikeportError(f"unknown task {task!r}; choose one of {', '.join(TASK_DEFAULTS)}")
        encoding = TASK_DEFAULTS[task]["encoding"]
    return {**meta, "task": task, "encoding": dict(encoding)}

KIND = "spikeport-checkpoint"  # the tag of this method's checkpoints (`toolchain.checkpoint`)
