"""A task whose output *is* spike timing: reproduce a target raster.

Frozen random input spikes (``n_in`` channels, ``T`` steps) must be turned
into a fixed target raster on ``n_out`` output neurons, trained with the van
Rossum loss (SuperSpike surrogate). It measures what quantization does to
spike times: post-training quantization (PTQ) versus quantization-aware
fine-tuning (QAT) in Lava's integer arithmetic, scored by the fraction of
target spikes that the *deployed* network hits within +-1 step.

Time: steps t = 1..T (index 0 is t = 1), one step per synaptic hop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from models.errors import SpikeportError
from models.losses import van_rossum
from models.network import Network


@dataclass
class RasterTask:
    x: torch.Tensor  # (1, T, n_in) input spikes
    target: torch.Tensor  # (1, T, n_out) target spikes


def make_raster_task(n_in: int = 50, n_out: int = 50, T: int = 100, seed: int = 0,
                     input_rate: float = 0.05, spikes_per_neuron=(2, 4), min_gap: int = 8) -> RasterTask:
    """Frozen Poisson-like input and a random multi-spike target raster.

    Target spikes fall in steps [10, T-5) with at least ``min_gap`` steps
    between spikes of one neuron (so +-1-step matching is unambiguous).
    """
    first, last = 10, T - 6  # target spikes fall in steps [first, last] (indices)
    if last < first or (spikes_per_neuron[1] - 1) * min_gap > last - first:
        raise SpikeportError(f"raster task: {spikes_per_neuron[1]} spikes {min_gap} steps apart do not fit in "
                             f"indices [{first}, {last}] (T={T})")
    rng = np.random.RandomState(seed)
    x = (rng.rand(1, T, n_in) < input_rate).astype(np.float32)
    target = np.zeros((1, T, n_out), dtype=np.float32)
    for j in range(n_out):
        k = rng.randint(spikes_per_neuron[0], spikes_per_neuron[1] + 1)
        times: list[int] = []
        while len(times) < k:
            free = [t for t in range(first, last + 1) if all(abs(t - o) >= min_gap for o in times)]
            if not free:  # earlier draws left no room (short T): draw this neuron again
                times = []
                continue
            t = rng.randint(first, last + 1)
            if t in free:
                times.append(t)
        target[0, times, j] = 1
    return RasterTask(torch.from_numpy(x), torch.from_numpy(target))


def raster_network(task: RasterTask, hidden: int = 200, seed: int = 0) -> Network:
    """n_in -> hidden -> n_out LIF network; a shallow surrogate (slope 2) learns timing best here."""
    layer = dict(du=0.5, dv=0.2, weight_gain=2.0)
    return Network(dict(n_in=task.x.shape[-1], layers=[dict(layer, n=hidden), dict(layer, n=task.target.shape[-1])],
                        seed=seed, slope=2.0))


def fit_raster(model: Network, task: RasterTask, steps: int, lr: float, mode: str = "float",
               tau: float = 5.0, progress: bool = False) -> list[float]:
    """Full-batch Adam on the van Rossum distance; returns the loss per step."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in tqdm(range(steps), disable=not progress, desc=f"raster ({mode})"):
        loss = van_rossum(model(task.x, mode=mode)[-1].s, task.target, tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def hit_fraction(spikes: np.ndarray, target: np.ndarray, tolerance: int = 1) -> float:
    """Fraction of target spikes matched one-to-one by an output spike within ``tolerance`` steps."""
    from toolchain.verify.timing import matched_fraction

    return float(matched_fraction(np.asarray(target), np.asarray(spikes), (tolerance,))[tolerance]["ref"])
