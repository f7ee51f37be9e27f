"""Deployment of a trained student: discretise, post-training quantize (optionally fine-tune
quantization-aware), run on the emulator (float, fixed) and on Lava, score the output spikes.

The continuous student -> Lava CUBA LIF (``du = 1 - exp(-1/tau_syn)``, ``dv = 1 -
exp(-1/tau_mem)``, weights times the step gain; the hidden hop's half-step is modelled in
continuous time, see `models.exact_spikes`) -> IR -> quantization -> engines. 1 step = 1 ms;
output spikes are scored in steps against ``ceil(t̂)``.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from models.exact_spikes import ExactNetwork
from models.losses import van_rossum
from models.spike_train import raster_to_times, times_to_raster
from toolchain import engines, scaleout
from toolchain import ir as irm
from toolchain.ir import passes
from toolchain.lower import apply_scales, lower
from toolchain.methods.spike_train.loop import Keeper
from toolchain.methods.spike_train.surrogate import discretize
from toolchain.quantize import calibration_stats, quantize
from toolchain.tasks.spike_transform import SpikeTransformTask, match_trains, sorted_times
from toolchain.verify import compare_bit_identity
from toolchain.verify.timing import matched_fraction, optimal_pairs


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
    out, tgt = sorted_times(raster_to_times(test_steps)), sorted_times(target_times)
    errors, vs_cont, n_tgt, n_out = [], [], int(np.isfinite(tgt).sum()), int(np.isfinite(out).sum())
    for idx in np.ndindex(*tgt.shape[:-1]):
        o, t = out[idx][np.isfinite(out[idx])], tgt[idx][np.isfinite(tgt[idx])]
        i, j = optimal_pairs(np.ceil(t), o, reach=max_error)
        order = np.argsort(j, kind="stable")  # in the order of the deployed spikes
        i, j = i[order], j[order]
        errors += list(o[j] - np.ceil(t[i]))
        vs_cont += list(o[j] - t[i])
    err = np.asarray(errors)
    frac = matched_fraction(times_to_raster(target_times, np.asarray(test_steps).shape[1]), np.asarray(test_steps))
    return dict(errors=err, mean_abs=float(np.abs(err).mean()) if err.size else float("nan"),
                max_abs=float(np.abs(err).max(initial=0.0)), mean_signed=float(err.mean()) if err.size else 0.0,
                exact=float((err == 0).mean()) if err.size else 0.0, matched=int(err.size),
                missing=n_tgt - int(err.size), extra=n_out - int(err.size), target_spikes=n_tgt,
                mean_vs_continuous=float(np.mean(vs_cont)) if vs_cont else float("nan"),
                within={tol: f["ref"] for tol, f in frac.items()})


def identical_states(a: dict, b: dict) -> dict:
    """How many recorded entries (every s, v, u of every node) and patterns are identical between two
    runs (`toolchain.verify.compare_bit_identity`'s counts), and the first divergence (text or None)."""
    keys = sorted(set(a) & set(b))
    c = compare_bit_identity("a", a, "b", b, sorted({k.rpartition("/")[0] for k in keys}))
    return dict(identical=c.equal_values, total=c.values, keys=keys, samples=c.samples,
                identical_samples=c.identical_samples,
                first_divergence=c.first_divergence.describe() if c.first_divergence else None,
                all_identical=c.equal_values == c.values and set(a) == set(b))


def compile_transform(model, x_cal: np.ndarray):
    """Discretise (an `ExactNetwork`; a trained discrete `Network` is taken as is), lower and
    post-training quantize -> (float IR, fixed IR, quantization reports)."""
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

    qat = copy.deepcopy(net)
    apply_scales(qat, fixed_ir)
    x, target = task.raster(task.x_times).double(), task.raster(task.target_times).double()
    target_steps = raster_to_times(target)
    opt = torch.optim.Adam([p for p in qat.parameters() if p.requires_grad], lr=lr)
    keeper, history = Keeper(qat), []
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
           qat_lr: float = 1e-3, samples: int | None = None, lava_samples: int | None = None) -> dict:
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

    ``samples``: score the first that many patterns of the split (None: all); ``lava_samples``: Lava
    runs the first that many of those (None: all of them); the caller checks both are in range.
    """
    x_times, target = (task.x_times, task.target_times) if split == "train" else \
        (task.x_test_times, task.target_test_times)
    x_times, target = x_times[:samples], target[:samples]
    x = task.raster(x_times).numpy()
    ir, fixed, reports = compile_transform(model, task.raster(task.x_times).numpy())
    qat = None
    if finetune_qat:
        net = discretize(model) if isinstance(model, ExactNetwork) else model
        tuned, history = qat_finetune(net, task, fixed, int(finetune_qat), lr=qat_lr)
        best = min(history, key=lambda row: (not row["converged"], row["error"]))
        qat = dict(iterations=int(finetune_qat), lr=qat_lr, ptq_error=history[0]["error"],
                   ptq_converged=history[0]["converged"], best_iteration=best["iteration"],
                   error=best["error"], converged=best["converged"])
        runs = {"float": engines.run("float-emulator", ir, x), "fixed_ptq": engines.run("emulator", fixed, x)}
        fixed = lower(tuned, name="spike-transform")
        passes.validate(fixed, require_fixed=True)
        runs["fixed"] = engines.run("emulator", fixed, x)
    else:
        runs = {"float": engines.run("float-emulator", ir, x), "fixed": engines.run("emulator", fixed, x)}
    if lava:
        runs["lava"] = scaleout.run("lava", fixed, x[:lava_samples])
    out_node = ir.names(irm.Neuron)[-1]
    learned = model.simulate(x_times)[-1] if isinstance(model, ExactNetwork) else \
        raster_to_times(runs["float"][f"{out_node}/s"]).numpy()
    scores = {name: _scores(r[f"{out_node}/s"], np.asarray(target), learned) for name, r in runs.items()}
    result = dict(ir=ir, fixed_ir=fixed, reports=reports, runs=runs, scores=scores, output_node=out_node,
                  learned=learned, target=np.asarray(target))
    if qat is not None:
        result["qat"] = qat
    if lava:
        n = len(runs["lava"][f"{out_node}/s"])
        result["lava_vs_emulator"] = identical_states(runs["lava"], {k: v[:n] for k, v in runs["fixed"].items()})
    return result


def _scores(raster, target: np.ndarray, learned) -> dict:
    """`spike_time_errors` of an output raster (its first len(raster) patterns) against the target and
    the learned output."""
    n = len(raster)
    return dict(vs_target=spike_time_errors(raster, target[:n]), vs_learned=spike_time_errors(raster, learned[:n]))


def score_summary(score: dict) -> dict:
    """A `spike_time_errors` result without the per-spike array (JSON-ready; ``within_steps`` keyed by str)."""
    out = {k: v for k, v in score.items() if k not in ("errors", "within")}
    out["within_steps"] = {str(k): float(v) for k, v in score["within"].items()}
    return out
