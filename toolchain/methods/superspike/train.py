"""Training with SuperSpike surrogate gradients (`spikeport train --method surrogate`).

A run is fully described by a plain dict (task defaults, overridden by a
config file and flags) and is deterministic for a given seed. The checkpoint
keeps the config, the input encoding and the measured accuracies, so
`compile` and `verify` re-encode the same data the same way.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from models.errors import SpikeportError
from models.losses import LOSSES, predict
from models.network import Network
from toolchain.lower import apply_scales
from toolchain.methods.config import resolve
from toolchain.methods.superspike import checkpoint
from toolchain.methods.superspike.compile import compile_network
from toolchain.methods.superspike.config import FINETUNE_DEFAULTS, RANGES, RUN_DEFAULTS, TASK_DEFAULTS
from toolchain.tasks import augment, datasets, encoders
from toolchain.threads import set_threads


@dataclass
class TrainResult:
    model: Network
    meta: dict
    history: list = field(default_factory=list)


def resolve_config(task: str, config_file: str | None = None, **overrides) -> dict:
    """Run and task defaults (`config`) <- config file (JSON) <- non-None keyword overrides."""
    if task not in TASK_DEFAULTS:
        raise SpikeportError(f"unknown task {task!r}; choose one of {', '.join(TASK_DEFAULTS)}")
    cfg = resolve({**RUN_DEFAULTS, **TASK_DEFAULTS[task], "task": task}, config_file, ranges=RANGES, **overrides)
    if cfg["loss"] not in LOSSES:
        raise SpikeportError(f"config: loss={cfg['loss']!r} is not one of {', '.join(LOSSES)}")
    return cfg


def network_config(cfg: dict, n_in: int, n_classes: int) -> dict:
    """The `Network` config a training config describes."""
    layer = dict(du=cfg["du"], dv=cfg["dv"], weight_gain=cfg["weight_gain"], max_delay=cfg["max_delay"],
                 recurrent=cfg["recurrent"])
    sizes = list(cfg["hidden"]) + [n_classes]
    return dict(n_in=n_in, layers=[dict(layer, n=int(n)) for n in sizes], feedback=cfg["feedback"],
                slope=cfg["slope"], seed=cfg["seed"])


def encode(x: np.ndarray, encoding: dict) -> torch.Tensor:
    """Encode features in [0, 1] (B, N) as spikes (B, T, N), kept as the encoder's
    compact dtype (bool for binary spikes; MNIST stays < 1 GB)."""
    return torch.as_tensor(np.asarray(encoders.encode(x, **encoding)))


def evaluate(model: Network, x: torch.Tensor, y: np.ndarray, mode: str = "float",
             batch_size: int = 512) -> float:
    """Accuracy of spike-count readout (`models.losses.predict`)."""
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            preds.append(predict(model(x[i:i + batch_size], mode=mode)[-1].s))
    return float((np.concatenate(preds) == np.asarray(y)).mean())


def train(task: str = "digits", *, config_file=None, progress: bool = True, finetune=None,
          **overrides) -> TrainResult:
    """Train a network on ``task``; returns the model and the checkpoint meta.

    ``finetune``: a checkpoint to start from (its architecture and encoding win).
    ``mode="fixed"`` trains in Lava's integer arithmetic (quantization-aware):
    the scales come from post-training quantization of the starting network.
    A float run with ``qat_epochs > 0`` (Yin-Yang's default) ends with that many
    quantization-aware epochs (`qat_phase`); its accuracies are then the fixed-point network's.
    """
    if finetune:
        overrides = {**FINETUNE_DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    cfg = resolve_config(task, config_file, **overrides)
    torch.manual_seed(cfg["seed"])
    if cfg["threads"]:
        set_threads(int(cfg["threads"]))
    data = datasets.load_task(task)
    if cfg["shift"] and data.image_shape is None:
        raise SpikeportError(f"config: shift={cfg['shift']} needs an image task; {task} has no image shape")
    if finetune:
        model, start_meta = checkpoint.load(finetune)
        cfg["encoding"] = start_meta.get("encoding", cfg["encoding"])
    x_train, x_test = encode(data.x_train, cfg["encoding"]), encode(data.x_test, cfg["encoding"])
    y_train = torch.as_tensor(data.y_train)
    if not finetune:
        model = Network(network_config(cfg, x_train.shape[-1], data.n_classes))
    on_epoch = None
    if cfg["mode"] == "fixed":
        scale_meta = dict(task=task, encoding=cfg["encoding"])
        if not model.has_fixed_scale:
            init_fixed_scales(model, scale_meta)
        if not finetune:  # from scratch the weights move a lot: let the scales follow them
            on_epoch = lambda: init_fixed_scales(model, scale_meta)  # noqa: E731
    history = fit(model, x_train, y_train, cfg, progress=progress, on_epoch=on_epoch, image_shape=data.image_shape)
    mode = cfg["mode"]
    if mode == "float" and cfg["qat_epochs"]:
        history += qat_phase(model, x_train, y_train, cfg, progress=progress, image_shape=data.image_shape)
        mode = "fixed"
    meta = dict(task=task, encoding=cfg["encoding"], train_config=cfg, history=history,
                accuracy=dict(train=evaluate(model, x_train, data.y_train, mode),
                              test=evaluate(model, x_test, data.y_test, mode)))
    return TrainResult(model=model, meta=meta, history=history)


def qat_phase(model: Network, x: torch.Tensor, y: torch.Tensor, cfg: dict, progress: bool = True,
              image_shape=None) -> list:
    """Quantize the float-trained ``model`` (post-training scales, kept fixed) and fine-tune it
    quantization-aware for ``cfg["qat_epochs"]`` epochs at ``cfg["qat_lr"]``, in place; the
    network then deploys as trained. The same run as `spikeport train --qat --finetune` of the
    float checkpoint. Returns the phase's history, epochs numbered on from the float ones."""
    init_fixed_scales(model, dict(task=cfg["task"], encoding=cfg["encoding"]))
    phase = {**cfg, "mode": "fixed", "epochs": cfg["qat_epochs"], "lr": cfg["qat_lr"]}
    history = fit(model, x, y, phase, progress, image_shape=image_shape)
    return [dict(h, epoch=cfg["epochs"] + h["epoch"], mode="fixed") for h in history]


def init_fixed_scales(model: Network, meta: dict) -> None:
    """Give ``model`` the per-layer scales post-training quantization would choose for its
    current float weights (re-chosen from scratch if it already has scales: a scaled
    network would otherwise compile as quantization-aware, with no calibration)."""
    for layer in model.layers:
        layer.fixed_scale.zero_()
    apply_scales(model, compile_network(model, meta))


# The bar's accuracy is of the batches as they were trained, while the weights still change within the
# epoch; the summary's is of the final network on the whole training set, so the two differ.
RUNNING_ACC = "running train acc"


def fit(model: Network, x: torch.Tensor, y: torch.Tensor, cfg: dict, progress: bool = True,
        on_epoch=None, image_shape=None) -> list:
    """Mini-batch AdamW with a one-cycle learning rate; returns per-epoch loss/accuracy.

    ``on_epoch`` is called before every epoch (quantization-aware training uses
    it to re-choose the fixed-point scales). ``image_shape`` (H, W): the inputs' pixel
    grid, for ``cfg["shift"]`` (`toolchain.tasks.augment.shift_images`).
    """
    loss_fn = LOSSES[cfg["loss"]]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    batches = (len(x) + cfg["batch_size"] - 1) // cfg["batch_size"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=cfg["epochs"] * batches)
    gen = torch.Generator().manual_seed(cfg["seed"])
    history = []
    desc = f"train {cfg['task']}{' quantization-aware' if cfg['mode'] == 'fixed' else ''}"
    bar = tqdm(range(cfg["epochs"]), desc=desc, disable=not progress, unit="epoch")
    for epoch in bar:
        if on_epoch is not None:
            on_epoch()
        start, total, correct = time.perf_counter(), 0.0, 0
        for idx in torch.randperm(len(x), generator=gen).split(cfg["batch_size"]):
            batch = augment.shift_images(x[idx], image_shape, cfg["shift"], gen)
            trace = model(batch, mode=cfg["mode"])[-1]
            loss = loss_fn(trace.v if cfg["loss"] == "max-membrane" else trace.s, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += int((predict(trace.s) == y[idx].numpy()).sum())
        history.append(dict(epoch=epoch + 1, loss=total / len(x), train_acc=correct / len(x),
                            seconds=time.perf_counter() - start))
        bar.set_postfix({"loss": f"{total / len(x):.3f}", RUNNING_ACC: f"{correct / len(x):.3f}"})
    return history
