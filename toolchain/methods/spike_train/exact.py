"""The exact rule (Banerjee 2016): the continuous-time student, event-based forward, exact
spike-time gradients (implicit function theorem) of Banerjee's error functional
(`models.spike_train.error_functional`), Adam.

Spike-time gradients never create a spike, so two membrane terms handle creation and
deletion: `count_error` (output spikes missing / extra, or more than ``reach`` ms from
any partner) and `silent_error` (hidden neurons that fell silent on a pattern). Times in ms.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from models.errors import SpikeportError
from models.exact_spikes import ExactNetwork, membrane
from models.spike_train import difference_of_exponentials, error_functional, exponential_kernel
from toolchain.methods.spike_train.loop import Keeper, adam_cosine, iterations
from toolchain.tasks.spike_transform import SpikeTransformTask, match_trains, sorted_times
from toolchain.verify.timing import unpaired

if TYPE_CHECKING:  # annotations only
    from models.spike_train import Kernel


def make_kernel(spec) -> "Kernel":  # noqa: F821
    """``("dexp", tau_1, tau_2)`` (difference of exponentials) or ``("exp", tau)`` (ms)."""
    kind, *taus = spec
    if kind == "dexp":
        return difference_of_exponentials(*taus)
    if kind == "exp":
        return exponential_kernel(*taus)
    raise SpikeportError(f"spike-transform: kernel {spec!r} is not ('dexp', tau_1, tau_2) or ('exp', tau)")


def exact_error(model: ExactNetwork, x_times, target_times, kernel, min_slope: float = 0.0):
    """Banerjee's error (ms) summed over output neurons, mean over patterns; and all layers' times."""
    layers = model(x_times, min_slope=min_slope)
    return error_functional(layers[-1], target_times, kernel).sum(-1).mean(), layers


def unmatched_spikes(out_times, target_times, reach: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """Masks of emitted spikes without a desired partner (extra, like ``out``) and desired spikes
    without an emitted one (missing, like ``target``), from a minimum-|Δt| one-to-one assignment.

    ``reach`` None: only trains whose counts differ are assigned (none unmatched elsewhere).
    ``reach`` (ms): every train is assigned and a pair further apart than ``reach`` counts as one
    extra and one missing spike (the error functional cannot pull spikes across such distances).
    """
    out, tgt = sorted_times(out_times), sorted_times(target_times)
    extra, missing = np.zeros(out.shape, bool), np.zeros(tgt.shape, bool)
    n_out, n_tgt = np.isfinite(out).sum(-1), np.isfinite(tgt).sum(-1)
    check = (n_out != n_tgt) if reach is None else (n_out + n_tgt > 0)
    for idx in zip(*np.nonzero(check)):
        missing[idx][:n_tgt[idx]], extra[idx][:n_out[idx]] = unpaired(tgt[idx][:n_tgt[idx]], out[idx][:n_out[idx]], reach)
    return extra, missing


def count_error(model: ExactNetwork, layers: list, x_times, target_times,
                reach: Optional[float] = None) -> torch.Tensor:
    """Spike-count term (threshold units), mean over patterns: for every missing desired spike,
    ``relu(vth - V(t̂))`` (raise the membrane there); for every extra emitted spike, ``V(t)`` at its
    (fixed) time, which is exactly pushing it later, out of the window. Exact membrane gradients."""
    extra, missing = unmatched_spikes(layers[-1], target_times, reach)
    if not (extra.any() or missing.any()):
        return torch.zeros((), dtype=torch.float64)
    out = layers[-1]
    arrivals = (layers[-2] if len(layers) > 1 else torch.as_tensor(x_times, dtype=torch.float64)) \
        + model.delay(len(layers) - 1)
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    t_miss = torch.where(torch.from_numpy(missing), torch.as_tensor(target_times, dtype=torch.float64), inf)
    t_extra = torch.where(torch.from_numpy(extra), torch.sort(out.detach(), dim=-1).values, inf)
    v = membrane(torch.cat([t_miss, t_extra], dim=-1), arrivals, model.weights[-1], out, model.neuron)
    v_miss, v_extra = v[..., :t_miss.shape[-1]], v[..., t_miss.shape[-1]:]
    term = torch.relu(model.neuron.vth - v_miss)[torch.from_numpy(missing)].sum() \
        + v_extra[torch.from_numpy(extra)].sum()
    return term / out.shape[0]


def silent_error(model: ExactNetwork, layers: list, x_times) -> torch.Tensor:
    """Silent-neuron term (threshold units), mean over patterns: for every hidden neuron that emits
    no spike on a pattern, ``relu(vth - max_t V(t))`` on the 1-ms grid of ``(0, t_end]`` (raise
    the membrane at its peak until it fires again). Exact membrane gradients.

    Spike-time gradients can delete a spike (push it past ``t_end``) but never create one, so
    without this term hidden neurons fall silent one by one and, having no spikes, get no
    gradient again (the output layer has `count_error` for its missing spikes).
    """
    terms = []
    arrivals = torch.as_tensor(x_times, dtype=torch.float64)
    grid = torch.arange(1.0, model.t_end + 1.0, dtype=torch.float64)
    for layer, own in enumerate(layers[:-1]):
        arrivals = arrivals + model.delay(layer)
        silent = ~torch.isfinite(own).any(-1)  # (P, n)
        if silent.any():
            v = membrane(grid, arrivals, model.weights[layer], own, model.neuron)
            terms.append(torch.relu(model.neuron.vth - v.max(-1).values)[silent].sum())
        arrivals = own
    return sum(terms, torch.zeros((), dtype=torch.float64)) / layers[-1].shape[0]


def train_exact(model: ExactNetwork, task: SpikeTransformTask, cfg: dict, progress: bool = False) -> list:
    """Adam on Banerjee's error plus ``count_weight`` x `count_error` plus ``silent_weight`` x
    `silent_error`; exact gradients. Keeps the best state (see `Keeper`); returns one history row
    per iteration."""
    kernel = make_kernel(cfg["kernel"])
    opt, sched = adam_cosine(model.parameters(), cfg)
    keeper = Keeper(model)
    history = []
    for it in iterations(cfg, "exact", progress):
        error, layers = exact_error(model, task.x_times, task.target_times, kernel, cfg["min_slope"])
        count = count_error(model, layers, task.x_times, task.target_times, cfg.get("reach"))
        silent = silent_error(model, layers, task.x_times) if cfg.get("silent_weight") else torch.zeros(())
        match = match_trains(layers[-1], task.target_times)
        history.append(dict(iteration=it, error=error.item(), count_term=count.item(),
                            silent_term=silent.item(), **match))
        keeper.offer(error.item(), match["converged"], it)
        if match["converged"] and error.item() < cfg["stop_error"]:
            break
        opt.zero_grad()
        (error + cfg["count_weight"] * count + cfg.get("silent_weight", 0.0) * silent).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
        sched.step()
    keeper.restore()
    return history
