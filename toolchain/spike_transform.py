"""Spike-train-to-spike-train learning (Banerjee 2016): a teacher-student task, two learning
rules, and deployment of the result to the discrete engines.

Time unit: 1 ms = 1 step of the deployed engines. Window ``(0, T]`` ms with
``T = 100``; step ``n`` covers ``(n-1, n]`` ms, so a spike at ``t`` ms lands in
step ``ceil(t)``; input spikes sit on the integer grid (step k = k ms).

Task (`make_task`). A *teacher* network (`models.exact_spikes.ExactNetwork`,
``n_in -> hidden -> n_out`` continuous-time CUBA LIF) with random weights
turns Poisson-like input spike trains (Bernoulli per 1-ms step) into output
spike trains; those are the desired trains. Each neuron's random weights
get a per-neuron offset calibrated so that it fires about ``rate`` spikes
per window on the patterns (so no neuron is silent or runaway). A *student*
of the same shape, initialised the same way from another seed, must learn
the transformation on ``patterns`` input patterns (and is also scored on
``test_patterns`` held-out ones).

Learning rules (`train_spike_transform`):

* ``exact``: the student itself in continuous time, event-based forward,
  exact spike-time gradients (implicit function theorem) of Banerjee's error
  functional (`models.spike_train.error_functional`), Adam. Spike-time
  gradients never create a spike, so two membrane terms handle creation and
  deletion: `count_error` (output spikes missing / extra, or more than
  ``reach`` ms from any partner) and `silent_error` (hidden neurons that fell
  silent on a pattern).
* ``surrogate``: the same student initialisation discretised to Lava's CUBA
  LIF (`models.network.Network`, 1 step = 1 ms, the discretisation
  `deployed_network` uses), trained with SuperSpike surrogate gradients on
  the van Rossum distance to the target raster, Adam.

Convergence (`match_trains`): on every training pattern, every output neuron
emits as many spikes as desired and each is within ``tol`` = 1 ms (exact:
continuous times vs the teacher's times; surrogate: step vs the target's
step ``ceil(t̂)``) of its partner in time order.

Deployment (`deploy`): the continuous student -> Lava CUBA LIF (`du = 1 -
exp(-1/tau_syn)`, `dv = 1 - exp(-1/tau_mem)`, weights times the step gain;
the hidden hop's half-step is modelled in continuous time, see
`models.exact_spikes`) -> IR -> post-training quantization -> emulator and
Lava; output spikes are scored in steps against ``ceil(t̂)``.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from models.errors import SpikeportError
from models.exact_spikes import ExactNetwork, membrane, simulate_layer
from models.spike_train import (difference_of_exponentials, error_functional, exponential_kernel,
                                raster_to_times, times_to_raster)

if TYPE_CHECKING:  # annotations only: models.network is imported where it is used
    from models.network import Network
    from models.spike_train import Kernel

TASK_DEFAULTS = dict(n_in=24, hidden=16, n_out=2, T=100, patterns=4, test_patterns=4, input_rate=0.04,
                     tau_syn=5.0, tau_mem=10.0, refractory=0.5, hop_delay=0.5, hidden_rate=6.0, output_rate=4.0,
                     weight_spread=(0.04, 0.12), min_target_gap=2.0)
METHOD_DEFAULTS = {
    "exact": dict(iterations=1000, lr=3e-3, kernel=("dexp", 10.0, 2.5), min_slope=0.02, clip=10.0,
                  count_weight=10.0, reach=5.0, silent_weight=10.0, stop_error=1e-4),
    "surrogate": dict(iterations=3000, lr=1e-2, tau=5.0, slope=2.0, clip=10.0, stop_error=1e-4),
}
TOLERANCE_MS = 1.0


# ------------------------------------------------------------------- task
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
    cfg = copy.deepcopy(TASK_DEFAULTS)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise SpikeportError(f"spike-transform task: unknown option(s) {sorted(unknown)}; known: {sorted(cfg)}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


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


# ------------------------------------------------------------ convergence
def match_trains(out_times, target_times, tol: float = TOLERANCE_MS) -> dict:
    """Compare emitted and desired trains (P, n, K) (ms, or steps): counts and time-ordered pairing.

    Returns ``converged`` (every train has the desired count and every paired spike is within
    ``tol``), ``count_ok`` (fraction of trains with the right count), ``max_abs`` and
    ``mean_abs`` (over pairs of trains with the right count; ms).
    """
    out, tgt = _np(out_times), _np(target_times)
    K = max(out.shape[-1], tgt.shape[-1])
    out, tgt = _pad(out, K), _pad(tgt, K)
    same = np.isfinite(out).sum(-1) == np.isfinite(tgt).sum(-1)
    pair = same[..., None] & np.isfinite(tgt)
    err = np.abs(out[pair] - tgt[pair])
    max_abs = float(err.max(initial=0.0))
    return dict(converged=bool(same.all() and max_abs <= tol), count_ok=float(same.mean()),
                max_abs=max_abs, mean_abs=float(err.mean()) if err.size else 0.0)


def _np(t) -> np.ndarray:
    return np.sort(np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64), axis=-1)


def _pad(a: np.ndarray, K: int) -> np.ndarray:
    return np.concatenate([a, np.full(a.shape[:-1] + (K - a.shape[-1],), np.inf)], axis=-1)


# ---------------------------------------------------------------- training
@dataclass
class TransformResult:
    """A trained student and what happened: ``history`` rows per iteration, ``final`` summary."""

    method: str
    model: torch.nn.Module
    task: SpikeTransformTask
    history: list = field(default_factory=list)
    final: dict = field(default_factory=dict)


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
    from scipy.optimize import linear_sum_assignment

    out, tgt = _np(out_times), _np(target_times)
    extra, missing = np.zeros(out.shape, bool), np.zeros(tgt.shape, bool)
    n_out, n_tgt = np.isfinite(out).sum(-1), np.isfinite(tgt).sum(-1)
    check = (n_out != n_tgt) if reach is None else (n_out + n_tgt > 0)
    for idx in zip(*np.nonzero(check)):
        o, t = out[idx][:n_out[idx]], tgt[idx][:n_tgt[idx]]
        rows, cols = linear_sum_assignment(np.abs(o[:, None] - t[None, :]))
        if reach is not None:
            near = np.abs(o[rows] - t[cols]) <= reach
            rows, cols = rows[near], cols[near]
        extra[idx][:len(o)] = ~np.isin(np.arange(len(o)), rows)
        missing[idx][:len(t)] = ~np.isin(np.arange(len(t)), cols)
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
    `silent_error`; exact gradients. Keeps the best state (see `_Keeper`); returns one history row
    per iteration."""
    kernel = make_kernel(cfg["kernel"])
    opt, sched = _optimizer(model.parameters(), cfg)
    keeper = _Keeper(model)
    history = []
    for it in _iterations(cfg, "exact", progress):
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


class _Keeper:
    """Remembers the lowest-error state, preferring states that meet the convergence criterion."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.key, self.state, self.iteration = model, None, None, None

    def offer(self, error: float, converged: bool, iteration: int) -> None:
        key = (not converged, error)
        if self.key is None or key < self.key:
            self.key, self.iteration = key, iteration
            self.state = copy.deepcopy(self.model.state_dict())

    def restore(self) -> None:
        self.model.load_state_dict(self.state)


def _optimizer(params, cfg):
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["iterations"], eta_min=cfg["lr"] * 0.05)
    return opt, sched


def _iterations(cfg, name, progress):
    from tqdm import tqdm

    return tqdm(range(cfg["iterations"]), desc=f"spike-transform ({name})", disable=not progress)


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


def method_config(method: str, **overrides) -> dict:
    """Training options of ``method`` (`METHOD_DEFAULTS`) with ``overrides``; unknown names are an error."""
    if method not in METHOD_DEFAULTS:
        raise SpikeportError(f"spike-transform: method {method!r} is not one of {sorted(METHOD_DEFAULTS)}")
    cfg = copy.deepcopy(METHOD_DEFAULTS[method])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise SpikeportError(f"spike-transform ({method}): unknown option(s) {sorted(unknown)}; known: {sorted(cfg)}")
    cfg.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if v is not None})
    if int(cfg["iterations"]) < 1:
        raise SpikeportError(f"spike-transform ({method}): iterations={cfg['iterations']} is outside [1, inf)")
    return cfg


# ------------------------------------------------------- discretisation
def discretize(model: ExactNetwork, slope: float = 2.0) -> "Network":  # noqa: F821
    """The continuous student as Lava's CUBA LIF, 1 step = 1 ms (`models.network.Network`, float).

    ``du = 1 - exp(-1/tau_syn)``, ``dv = 1 - exp(-1/tau_mem)``, ``vth`` unchanged, no bias,
    weights times `ContinuousLIF.step_gain` (exact sub-threshold sampling at integer ms, see
    `models.exact_spikes`). The hidden hop's one step is the continuous ``hop_delay`` (0.5 ms)
    plus the rounding of a spike to the end of its step.
    """
    from models.network import Network

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
    from models.losses import van_rossum

    x, target = task.raster(task.x_times), task.raster(task.target_times)
    target_steps = raster_to_times(target)
    opt, sched = _optimizer(net.parameters(), cfg)
    keeper = _Keeper(net)
    history = []
    for it in _iterations(cfg, "surrogate", progress):
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


# ------------------------------------------------------------- deployment
def spike_time_errors(test_steps, target_times, max_error: float = 5.0) -> dict:
    """Deployed output steps vs desired times, scored in steps against ``ceil(t̂)``.

    ``test_steps``: (P, T, n) raster; ``target_times``: (P, n, K) ms. Spikes are
    paired one-to-one by a minimum-|Δ| assignment per train, pairs further than
    ``max_error`` steps apart are not matches. Returns the signed errors
    (step - ceil(t̂)), ``mean_abs``, ``max_abs``, ``exact`` (fraction of pairs
    with error 0), ``matched``/``missing``/``extra`` counts, the error of the
    same steps against the continuous t̂ (``mean_vs_continuous``, ms: ceil adds
    ~+0.5), and `toolchain.verify.timing.matched_fraction` at 0/1/2 steps.
    """
    from scipy.optimize import linear_sum_assignment

    from toolchain.verify.timing import matched_fraction

    out, tgt = _np(raster_to_times(test_steps)), _np(target_times)
    errors, vs_cont, n_tgt, n_out = [], [], int(np.isfinite(tgt).sum()), int(np.isfinite(out).sum())
    for idx in np.ndindex(*tgt.shape[:-1]):
        o, t = out[idx][np.isfinite(out[idx])], tgt[idx][np.isfinite(tgt[idx])]
        if not (len(o) and len(t)):
            continue
        rows, cols = linear_sum_assignment(np.abs(o[:, None] - np.ceil(t)[None, :]))
        keep = np.abs(o[rows] - np.ceil(t[cols])) <= max_error
        errors += list(o[rows][keep] - np.ceil(t[cols][keep]))
        vs_cont += list(o[rows][keep] - t[cols][keep])
    err = np.asarray(errors)
    frac = matched_fraction(times_to_raster(target_times, np.asarray(test_steps).shape[1]), np.asarray(test_steps))
    return dict(errors=err, mean_abs=float(np.abs(err).mean()) if err.size else float("nan"),
                max_abs=float(np.abs(err).max(initial=0.0)), mean_signed=float(err.mean()) if err.size else 0.0,
                exact=float((err == 0).mean()) if err.size else 0.0, matched=int(err.size),
                missing=n_tgt - int(err.size), extra=n_out - int(err.size), target_spikes=n_tgt,
                mean_vs_continuous=float(np.mean(vs_cont)) if vs_cont else float("nan"),
                within={tol: f["ref"] for tol, f in frac.items()})


def identical_states(a: dict, b: dict) -> dict:
    """How many recorded entries (every s, v, u of every node) are identical between two runs
    (`toolchain.verify.compare_exact`'s value counts)."""
    from toolchain.verify import compare_exact

    keys = sorted(set(a) & set(b))
    c = compare_exact("a", a, "b", b, sorted({k.rpartition("/")[0] for k in keys}))
    return dict(identical=c.equal_values, total=c.values, keys=keys,
                all_identical=c.equal_values == c.values and set(a) == set(b))


def compile_transform(model, x_cal: np.ndarray):
    """Discretise (an `ExactNetwork`; a trained discrete `Network` is taken as is), lower and
    post-training quantize -> (float IR, fixed IR, quantization reports)."""
    from toolchain.ir import passes
    from toolchain.lower import lower
    from toolchain.quantize import calibration_stats, quantize

    net = discretize(model) if isinstance(model, ExactNetwork) else model
    ir = lower(net, name="spike-transform")
    fixed, reports = quantize(ir, calibration_stats(ir, x_cal))
    passes.validate(fixed, require_fixed=True)
    return ir, fixed, reports


def qat_finetune(net, task: SpikeTransformTask, fixed_ir, iterations: int, lr: float = 1e-3, tau: float = 5.0,
                 clip: float = 10.0, progress: bool = False) -> tuple:
    """Quantization-aware fine-tuning of a discretised student: ``net`` (a `models.network.Network`,
    not modified) gets the scales post-training quantization chose (``fixed_ir``) and is trained
    ``iterations`` full-batch Adam steps in fixed mode (Lava ``fixed_pt`` arithmetic, straight-through)
    on the van Rossum distance to the target raster of the training patterns.

    The state with the lowest loss (preferring `match_trains` convergence) is kept, the PTQ start
    (iteration 0) included, so the result is never worse than PTQ on that criterion. Returns
    (fine-tuned copy, history rows ``iteration, error, converged, ...``).
    """
    from tqdm import tqdm

    from models.losses import van_rossum
    from toolchain.quantize import apply_scales

    qat = copy.deepcopy(net)
    apply_scales(qat, fixed_ir)
    x, target = task.raster(task.x_times).double(), task.raster(task.target_times).double()
    target_steps = raster_to_times(target)
    opt = torch.optim.Adam([p for p in qat.parameters() if p.requires_grad], lr=lr)
    keeper, history = _Keeper(qat), []
    for it in tqdm(range(iterations + 1), desc="spike-transform (QAT)", disable=not progress):
        s = qat(x, mode="fixed")[-1].s
        loss = van_rossum(s, target, tau)
        match = match_trains(raster_to_times(s.detach()), target_steps)
        history.append(dict(iteration=it, error=loss.item(), **match))
        keeper.offer(loss.item(), match["converged"], it)
        if it == iterations:
            break
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(qat.parameters(), clip)
        opt.step()
    keeper.restore()
    return qat, history


def deploy(model, task: SpikeTransformTask, *, lava: bool = True, split: str = "train", finetune_qat: int = 0,
           qat_lr: float = 1e-3) -> dict:
    """Run the quantized student on the emulator (float and fixed) and on Lava, and score it.

    ``model``: the continuous `ExactNetwork` (discretised here) or a discrete
    `models.network.Network` (the surrogate-trained student). Calibration uses the
    training inputs. ``split``: score the training or the held-out test patterns.
    Returns the rasters (``runs``: ``float``, ``fixed``, ``lava`` -> {node/s|v|u:
    (P, T, n)}), per engine the scores (`spike_time_errors`, in steps) against the
    target (``vs_target``) and against the trained model's own output
    (``vs_learned``: its continuous times, or its float raster), the learned output
    times (``learned``, ms) and the Lava vs emulator identity count (`identical_states`).

    ``finetune_qat`` > 0: after post-training quantization, `qat_finetune` that many
    iterations (Adam, ``qat_lr``) from the PTQ scales; ``fixed`` and ``lava`` then run the
    fine-tuned integers, ``fixed_ptq`` the post-training ones, and ``qat`` summarises the run
    (van Rossum loss at the PTQ start and at the kept iteration).
    """
    from backends.emulator import run

    x_times, target = (task.x_times, task.target_times) if split == "train" else \
        (task.x_test_times, task.target_test_times)
    x = task.raster(x_times).numpy()
    ir, fixed, reports = compile_transform(model, task.raster(task.x_times).numpy())
    qat = None
    if finetune_qat:
        from toolchain.ir import passes
        from toolchain.lower import lower

        net = discretize(model) if isinstance(model, ExactNetwork) else model
        tuned, history = qat_finetune(net, task, fixed, int(finetune_qat), lr=qat_lr)
        best = min(history, key=lambda row: (not row["converged"], row["error"]))
        qat = dict(iterations=int(finetune_qat), lr=qat_lr, ptq_error=history[0]["error"],
                   ptq_converged=history[0]["converged"], best_iteration=best["iteration"],
                   error=best["error"], converged=best["converged"])
        runs = {"float": run(ir, x, mode="float"), "fixed_ptq": run(fixed, x, mode="fixed")}
        fixed = lower(tuned, name="spike-transform")
        passes.validate(fixed, require_fixed=True)
        runs["fixed"] = run(fixed, x, mode="fixed")
    else:
        runs = {"float": run(ir, x, mode="float"), "fixed": run(fixed, x, mode="fixed")}
    if lava:
        from backends.lava.runner import run_lava

        runs["lava"] = run_lava(fixed, x, mode="fixed")
    out_node = ir.names(_neuron_role())[-1]
    learned = model.simulate(x_times)[-1] if isinstance(model, ExactNetwork) else \
        raster_to_times(runs["float"][f"{out_node}/s"]).numpy()
    scores = {name: dict(vs_target=spike_time_errors(r[f"{out_node}/s"], target),
                         vs_learned=spike_time_errors(r[f"{out_node}/s"], learned))
              for name, r in runs.items()}
    result = dict(ir=ir, fixed_ir=fixed, reports=reports, runs=runs, scores=scores, output_node=out_node,
                  learned=learned, target=np.asarray(target))
    if qat is not None:
        result["qat"] = qat
    if lava:
        result["lava_vs_emulator"] = identical_states(runs["lava"], runs["fixed"])
    return result


def _neuron_role():
    from toolchain import ir as irm

    return irm.Neuron


# --------------------------------------------------------------- report
def score_summary(score: dict) -> dict:
    """A `spike_time_errors` result without the per-spike array (JSON-ready; ``within_steps`` keyed by str)."""
    out = {k: v for k, v in score.items() if k not in ("errors", "within")}
    out["within_steps"] = {str(k): float(v) for k, v in score["within"].items()}
    return out


def train_lists(times) -> list:
    """(P, n, K) inf-padded times -> nested lists of the finite times, sorted."""
    t = np.asarray(times, dtype=np.float64)
    return [[[float(x) for x in np.sort(train[np.isfinite(train)])] for train in pattern] for pattern in t]


def raster_panel(ax, trains: dict, T: int = 100) -> None:
    """Target (black), learned (blue) and deployed (red) output trains, one row per (pattern, neuron).

    ``trains``: ``{"target"|"learned"|"deployed": nested lists}`` as `train_lists` gives them
    (a deployed spike in step n drawn at n ms).
    """
    styles = [("target", "k", 0.25), ("learned", "tab:blue", 0.0), ("deployed", "tab:red", -0.25)]
    labels, y = [], 0
    for p, pattern in enumerate(trains["target"]):
        for n in range(len(pattern)):
            for name, color, dy in styles:
                times = trains[name][p][n]
                ax.scatter(times, [y + dy] * len(times), marker="|", s=120, color=color,
                           label=name if (p, n) == (0, 0) else None)
            labels.append(f"pattern {p}, out {n}")
            y -= 1
    ax.set_yticks(range(0, y, -1), labels)
    ax.set_xlim(0, T)
    ax.set_xlabel("time (ms) = step")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def plot_rasters(panels: list, path, T: int = 100) -> None:
    """One `raster_panel` per ``(title, trains)`` side by side, to a PNG at ``path`` (atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolchain.files import atomic_path

    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5), sharey=True, squeeze=False)
    for ax, (title, trains) in zip(axes[0], panels):
        raster_panel(ax, trains, T)
        ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


# -------------------------------------------------------- checkpoints, CLI
CHECKPOINT_FORMAT = "spikeport-spike-transform-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path, result: TransformResult) -> None:
    """``.pt``: format tag, method, the model's config and weights, the task config and the summary (atomic)."""
    from toolchain.checkpoint import write_payload

    write_payload(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, method=result.method, config=result.model.config,
                  state_dict=result.model.state_dict(), task=result.task.config, final=_plain(result.final))


def load_checkpoint(path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the student of a checkpoint written by `save_checkpoint`: (model, payload).

    ``exact`` gives an `ExactNetwork` (continuous time), ``surrogate`` a discrete
    `models.network.Network`; the task is rebuilt with ``make_task(**payload["task"])``.
    """
    from models.network import Network
    from toolchain.checkpoint import load_weights, read_payload

    payload = read_payload(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
    model = ExactNetwork(**payload["config"]) if payload["method"] == "exact" else Network(payload["config"])
    load_weights(path, model, payload["state_dict"])
    return model, payload


def _plain(d: dict, nan_to_none: bool = False) -> dict:
    """Tuples -> lists, numpy scalars -> Python (for torch's weights_only loader and JSON);
    with ``nan_to_none`` NaN/inf -> None, so the result is strict JSON."""
    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        v = v.item() if isinstance(v, np.generic) else v
        return None if nan_to_none and isinstance(v, float) and not math.isfinite(v) else v
    return conv(d)


def cmd_train_spike_transform(args) -> int:
    """``spikeport train --task spike-transform --method exact|surrogate``.

    ``--epochs`` sets the iterations (each is one full-batch pass over the training
    patterns); ``--seed`` picks the teacher, inputs and student initialisation;
    ``--config`` is a JSON file ``{"task": {...}, "method": {...}}`` overriding
    `TASK_DEFAULTS` and `METHOD_DEFAULTS`. Writes the checkpoint, prints one summary line.
    """
    import json
    from pathlib import Path

    extra = {}
    if args.config:
        try:
            extra = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            raise SpikeportError(f"{args.config}: not a readable JSON config ({type(exc).__name__})") from None
        if not isinstance(extra, dict) or set(extra) - {"task", "method"}:
            raise SpikeportError(f"{args.config}: expected an object with keys 'task' and/or 'method'")
    if args.threads:
        torch.set_num_threads(int(args.threads))
    method = args.method or "exact"
    result = train_spike_transform(method, 0 if args.seed is None else args.seed, extra.get("task"),
                                   dict(extra.get("method") or {}, iterations=args.epochs), not args.quiet)
    save_checkpoint(args.out, result)
    f = result.final
    print(f"spike-transform ({method}, seed {f['seed']}): error {f['error']:.4g} at iteration "
          f"{f['best_iteration']}/{f['iterations']}, {'converged' if f['converged'] else 'not converged'} "
          f"(right spike count in {f['count_ok']:.0%} of trains{_worst(f, method)}), {f['seconds']:.1f} s "
          f"-> {args.out}")
    return 0


def _worst(final: dict, method: str) -> str:
    """``, max |dt| ... in those`` when some train has the right count (else nothing is paired)."""
    if not final["count_ok"]:
        return ""
    return f", max |dt| {final['max_abs']:.3g} {'ms' if method == 'exact' else 'steps'} in those"
