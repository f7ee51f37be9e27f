"""The surrogate rule: the same student initialisation discretised to Lava's CUBA LIF
(`models.network.Network`, 1 step = 1 ms, the discretisation deployment uses), trained with
SuperSpike surrogate gradients on the van Rossum distance to the target raster, Adam.
"""
from __future__ import annotations

import torch

from models.exact_spikes import ExactNetwork
from models.losses import van_rossum
from models.network import Network
from models.spike_train import raster_to_times
from toolchain.methods.spike_train.loop import Keeper, adam_cosine, iterations
from toolchain.tasks.spike_transform import SpikeTransformTask, match_trains


def discretize(model: ExactNetwork, slope: float = 2.0) -> Network:
    """The continuous student as Lava's CUBA LIF, 1 step = 1 ms (`models.network.Network`, float).

    ``du = 1 - exp(-1/tau_syn)``, ``dv = 1 - exp(-1/tau_mem)``, ``vth`` unchanged, no bias,
    weights times `ContinuousLIF.step_gain` (exact sub-threshold sampling at integer ms, see
    `models.exact_spikes`). The hidden hop's one step is the continuous ``hop_delay`` (0.5 ms)
    plus the rounding of a spike to the end of its step.
    """
    nr = model.neuron
    layer = dict(du=nr.du, dv=nr.dv, vth=nr.vth, bias=False)
    net = Network(dict(n_in=model.sizes[0], layers=[dict(layer, n=n) for n in model.sizes[1:]], slope=slope))
    with torch.no_grad():
        for dst, w in zip(net.layers, model.weights):
            dst.weight.copy_((w * nr.step_gain).to(dst.weight.dtype))
    return net


def train_surrogate(net, task: SpikeTransformTask, cfg: dict, progress: bool = False) -> list:
    """SuperSpike surrogate gradients on the van Rossum distance to the target raster (Adam),
    float mode of `models.network.Network`. Same convergence criterion, in steps."""
    x, target = task.raster(task.x_times), task.raster(task.target_times)
    target_steps = raster_to_times(target)
    opt, sched = adam_cosine(net.parameters(), cfg)
    keeper = Keeper(net)
    history = []
    for it in iterations(cfg, "surrogate", progress):
        s = net(x)[-1].s
        loss = van_rossum(s, target, cfg["tau"])
        match = match_trains(raster_to_times(s.detach()), target_steps)
        history.append(dict(iteration=it, error=loss.item(), **match))
        keeper.offer(loss.item(), match["converged"], it)
        if match["converged"] and loss.item() < cfg["stop_error"]:
            break
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg["clip"])
        opt.step()
        sched.step()
    keeper.restore()
    return history
