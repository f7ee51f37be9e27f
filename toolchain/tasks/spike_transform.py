"""The spike-transform task: reproduce a teacher network's output spike trains.

Time unit: 1 ms = 1 step of the deployed engines. Window ``(0, T]`` ms with
``T = 100``; step ``n`` covers ``(n-1, n]`` ms, so a spike at ``t`` ms lands in
step ``ceil(t)``; input spikes sit on the integer grid (step k = k ms).

`make_task`: a *teacher* network (`models.exact_spikes.ExactNetwork`,
``n_in -> hidden -> n_out`` continuous-time CUBA LIF) with random weights
turns Poisson-like input spike trains (Bernoulli per 1-ms step) into output
spike trains; those are the desired trains. Each neuron's random weights
get a per-neuron offset calibrated so that it fires about ``rate`` spikes
per window on the patterns (so no neuron is silent or runaway). A *student*
of the same shape (`student_network`), initialised the same way from another
seed, must learn the transformation on ``patterns`` input patterns (and is
also scored on ``test_patterns`` held-out ones).

Convergence (`match_trains`): on every training pattern, every output neuron
emits as many spikes as desired and each is within ``tol`` = 1 ms of its
partner in time order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.errors import SpikeportError
from models.exact_spikes import ExactNetwork
from models.spike_events import simulate_layer
from models.spike_train import raster_to_times, times_to_raster
from toolchain.methods.config import resolve

TASK_DEFAULTS = dict(n_in=24, hidden=16, n_out=2, T=100, patterns=4, test_patterns=4, input_rate=0.04,
                     tau_syn=5.0, tau_mem=10.0, refractory=0.5, hop_delay=0.5, hidden_rate=6.0, output_rate=4.0,
                     weight_spread=(0.04, 0.12), min_target_gap=2.0)
TOLERANCE_MS = 1.0


@dataclass
class SpikeTransformTask:
    """Inputs and desired outputs; times in ms (P, n, K) inf-padded, rasters (P, T, n)."""

    x_times: torch.Tensor
    target_times: torch.Tensor
    x_test_times: torch.Tensor
    target_test_times: torch.Tensor
    teacher: ExactNetwork
    config: dict

    @property
    def T(self) -> int:
        return int(self.config["T"])

    def raster(self, times) -> torch.Tensor:
        """(P, T, n) float32 raster of spike times (a spike at t in step ceil(t))."""
        return torch.from_numpy(times_to_raster(times, self.T).astype(np.float32))


def task_config(**overrides) -> dict:
    """`TASK_DEFAULTS` with the non-None ``overrides``; an unknown name is a one-line error."""
    return resolve(TASK_DEFAULTS, what="spike-transform task", **overrides)


def make_task(seed: int = 0, **overrides) -> SpikeTransformTask:
    """Teacher, input patterns and desired output trains for one seed (deterministic)."""
    cfg = task_config(**overrides)
    rng = np.random.RandomState(seed)
    n_total = cfg["patterns"] + cfg["test_patterns"]
    for _ in range(100):  # redraw until every desired train is deployable (gaps >= min_target_gap)
        x = raster_to_times((rng.rand(n_total, cfg["T"], cfg["n_in"]) < cfg["input_rate"]).astype(np.float32))
        teacher = new_network(cfg)
        calibrate_init(teacher, x[:cfg["patterns"]], rng, cfg)
        target = torch.from_numpy(teacher.simulate(x)[-1])
        if _min_gap(target) >= cfg["min_target_gap"] and bool((torch.isfinite(target).sum(-1) > 0).all()):
            P = cfg["patterns"]
            return SpikeTransformTask(x[:P], target[:P], x[P:], target[P:], teacher, dict(cfg, seed=seed))
    raise SpikeportError(f"spike-transform task: no teacher with target gaps >= {cfg['min_target_gap']} ms "
                         f"after 100 draws (seed {seed})")


def _min_gap(times: torch.Tensor) -> float:
    gaps = times[..., 1:] - times[..., :-1]
    gaps = gaps[torch.isfinite(gaps)]
    return float(gaps.min()) if gaps.numel() else float("inf")


def new_network(cfg: dict) -> ExactNetwork:
    """An ``n_in -> hidden -> n_out`` continuous-time network (zero weights) for a task config."""
    return ExactNetwork([cfg["n_in"], cfg["hidden"], cfg["n_out"]], tau_syn=cfg["tau_syn"],
                        tau_mem=cfg["tau_mem"], refractory=cfg["refractory"], hop_delay=cfg["hop_delay"],
                        t_end=float(cfg["T"]))


def calibrate_init(net: ExactNetwork, x_times: torch.Tensor, rng: np.random.RandomState, cfg: dict) -> None:
    """Random weights: N(0, spread²) per synapse plus a per-neuron offset found by bisection so that
    each neuron fires ``hidden_rate`` / ``output_rate`` spikes per pattern on average (layer by layer)."""
    rates = [cfg["hidden_rate"], cfg["output_rate"]]
    arrivals = np.asarray(x_times, dtype=np.float64)
    for layer, w in enumerate(net.weights):
        z = rng.randn(*w.shape) * cfg["weight_spread"][layer] * 50.0 / (cfg["tau_syn"] * cfg["tau_mem"])
        offset = _bisect_offsets(net, layer, arrivals + net.delay(layer), z, rates[layer])
        with torch.no_grad():
            w.copy_(torch.from_numpy(z + offset[:, None]))
        arrivals = _simulate(net, layer, arrivals + net.delay(layer), w.detach().numpy())


def _simulate(net, layer, arrivals, weight, max_spikes=None):
    return simulate_layer(arrivals, weight, net.neuron, net.t_end, max_spikes or net.max_spikes)


def _bisect_offsets(net, layer, arrivals, z, rate, iters: int = 20):
    """Per-neuron weight offset (bisection, all neurons at once) giving ``rate`` mean spikes per pattern."""
    span = 5.0 / (net.neuron.tau_syn * net.neuron.tau_mem)  # mean drive per unit weight ∝ tau_syn tau_mem
    lo, hi = np.full(z.shape[0], -span), np.full(z.shape[0], span)
    cap = int(4 * rate + 10)  # a probe far above the rate fails fast instead of simulating a runaway
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        try:
            counts = np.isfinite(_simulate(net, layer, arrivals, z + mid[:, None], cap)).sum(-1).mean(0)
        except SpikeportError:  # runaway: far too strong somewhere; shrink the top of every range
            hi = mid
            continue
        lo, hi = np.where(counts < rate, mid, lo), np.where(counts < rate, hi, mid)
    return 0.5 * (lo + hi)


def student_network(task: SpikeTransformTask, seed: int) -> ExactNetwork:
    """A student of the teacher's shape, initialised the same way from another seed."""
    net = new_network(task.config)
    calibrate_init(net, task.x_times, np.random.RandomState(10_000 + seed), task.config)
    return net


def match_trains(out_times, target_times, tol: float = TOLERANCE_MS) -> dict:
    """Compare emitted and desired trains (P, n, K) (ms, or steps): counts and time-ordered pairing.

    Returns ``converged`` (every train has the desired count and every paired spike is within
    ``tol``), ``count_ok`` (fraction of trains with the right count), ``max_abs`` and
    ``mean_abs`` (over pairs of trains with the right count; ms).
    """
    out, tgt = sorted_times(out_times), sorted_times(target_times)
    K = max(out.shape[-1], tgt.shape[-1])
    out, tgt = _pad(out, K), _pad(tgt, K)
    same = np.isfinite(out).sum(-1) == np.isfinite(tgt).sum(-1)
    pair = same[..., None] & np.isfinite(tgt)
    err = np.abs(out[pair] - tgt[pair])
    max_abs = float(err.max(initial=0.0))
    return dict(converged=bool(same.all() and max_abs <= tol), count_ok=float(same.mean()),
                max_abs=max_abs, mean_abs=float(err.mean()) if err.size else 0.0)


def sorted_times(t) -> np.ndarray:
    """Spike times (tensor or array, inf-padded) as a float64 array sorted along the last axis."""
    return np.sort(np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64), axis=-1)


def _pad(a: np.ndarray, K: int) -> np.ndarray:
    return np.concatenate([a, np.full(a.shape[:-1] + (K - a.shape[-1],), np.inf)], axis=-1)
