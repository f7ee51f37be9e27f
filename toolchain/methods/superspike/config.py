"""SuperSpike training defaults: per task, for fine-tuning, and for every run; a network's task and encoding."""
from __future__ import annotations

from typing import Optional

from models.errors import SpikeportError
from toolchain.flags import FRACTION, NON_NEGATIVE_INT, POSITIVE


TASK_DEFAULTS = {
    "digits": dict(encoding=dict(name="regular", T=20, max_rate=0.5), hidden=[128], du=0.2, dv=0.05,
                   weight_gain=3.0, epochs=30, lr=3e-3, weight_decay=2.0, batch_size=64, loss="count"),
    "yinyang": dict(encoding=dict(name="regular", T=30, max_rate=0.5), hidden=[128], du=0.2, dv=0.05,
                    weight_gain=3.0, epochs=60, lr=3e-3, weight_decay=0.01, batch_size=64, loss="count",
                    qat_epochs=10),
    "mnist": dict(encoding=dict(name="regular", T=20, max_rate=0.5), hidden=[512], du=0.2, dv=0.05,
                  weight_gain=3.0, epochs=45, lr=3e-3, weight_decay=0.1, batch_size=128, loss="count",
                  shift=1, slope=5.0),
}
FINETUNE_DEFAULTS = dict(epochs=10, lr=3e-4)  # a short, gentle run from a trained network
# qat_epochs: after a float run's `epochs`, this many quantization-aware fine-tuning epochs at
# learning rate qat_lr (`toolchain.methods.superspike.train.qat_phase`; 0: none, the network deploys by
# post-training quantization). The lr is FINETUNE_DEFAULTS', so the phase is `--qat --finetune`'s run.
RUN_DEFAULTS = dict(seed=0, feedback="symmetric", slope=10.0, mode="float", threads=None,
                    max_delay=0, recurrent=False, qat_epochs=0, qat_lr=FINETUNE_DEFAULTS["lr"], shift=0)
# shift: each training sample moved by a random whole-pixel offset in -shift..shift per axis, every
# epoch anew (`toolchain.tasks.augment.shift_images`; image tasks only; 0: no augmentation)
# Ranges of SuperSpike's own config keys (shared ones: `toolchain.methods.config.RANGES`); du, dv per step
RANGES = dict(du=FRACTION, dv=FRACTION, weight_gain=POSITIVE, slope=POSITIVE, max_delay=NON_NEGATIVE_INT,
              qat_epochs=NON_NEGATIVE_INT, qat_lr=POSITIVE, shift=NON_NEGATIVE_INT)


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
