"""Precise spike-train-to-spike-train learning (Banerjee 2016): exact spike-time gradients vs SuperSpike.

For every seed: a random teacher network (24 inputs -> 16 hidden -> 2 outputs,
continuous-time CUBA LIF) turns 4 Poisson-like input patterns into multi-spike
output trains over a 100-step (100 ms) window; a student of the same shape,
initialised from another seed, learns the transformation with

* ``exact``: continuous time, exact spike-time gradients of Banerjee's error
  functional (`toolchain.methods.spike_train.exact.train_exact`);
* ``surrogate``: the same initialisation discretised to Lava CUBA LIF, SuperSpike
  with the van Rossum loss (`toolchain.methods.spike_train.surrogate.train_surrogate`).

Training stops at the first iteration that meets the convergence criterion
(`match_trains`: every output train has the desired spike count, every spike
within 1 ms / 1 step of its partner) or after ``--*-iterations``; the best state
is kept. Every student is then deployed: post-training quantization, the
emulator (fixed point) and, on the first ``--lava-seeds`` seeds, Lava, scored in
steps against the target (a desired spike at t ms belongs in step ceil(t)).

Time: 1 step = 1 ms; step n covers (n-1, n] ms. Writes to ``--out``:
``results.json`` (every number), ``rasters.png`` (target vs learned vs deployed
output spikes for one seed), ``report.html`` (self-contained) and the students'
checkpoints under ``checkpoints/``.

Measured with the defaults (10 + 10 seeds, 2 workers on a shared 2-core machine, 33 min):
exact 0/10 converged in 1000 iterations (Banerjee E 7.3 ms mean; 25-88% of the trains had
the right count; deployed: 1.55 steps mean |error| over 267/312 matched target spikes);
SuperSpike 10/10 in 1871 iterations on average (deployed: 0.64 steps over 305/312);
Lava identical to the emulator in 20/20 runs. Discretising the continuous student moves
its spikes by 1.2 steps on average (27 of 322 lost): see ``vs_learned`` in results.json.

    nice -n 5 python examples/spike_transform.py                  # 10 + 10 seeds
    python examples/spike_transform.py --seeds 2 --exact-iterations 50 --surrogate-iterations 200
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

METHODS = ("exact", "surrogate")
STOP_ANY = 1e30  # stop_error: stop at the first iteration that meets the convergence criterion


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds per method (task and student init)")
    p.add_argument("--exact-iterations", type=int, default=1000)
    p.add_argument("--surrogate-iterations", type=int, default=3000)
    p.add_argument("--exact-lr", type=float, default=None, help="default: METHOD_DEFAULTS['exact']['lr']")
    p.add_argument("--surrogate-lr", type=float, default=1e-2)
    p.add_argument("--lava-seeds", type=int, default=10, help="deploy on Lava for the first N seeds per method")
    p.add_argument("--workers", type=int, default=2, help="processes (one torch thread each)")
    p.add_argument("--out", default="out/spike_transform")
    return p.parse_args(argv)


# ------------------------------------------------------------------ one seed
def run_seed(job: tuple) -> dict:
    """Train one student, deploy it, return plain numbers (and its output trains for the plot)."""
    method, seed, method_cfg, lava, out = job
    torch.set_num_threads(1)
    from models.spike_train import error_functional, raster_to_times
    from toolchain.methods.spike_train.checkpoint import save_checkpoint
    from toolchain.methods.spike_train.config import METHOD_DEFAULTS
    from toolchain.methods.spike_train.deploy import deploy, score_summary
    from toolchain.methods.spike_train.exact import make_kernel
    from toolchain.methods.spike_train.report import plain, train_lists
    from toolchain.methods.spike_train.train import train_spike_transform

    result = train_spike_transform(method, seed, None, method_cfg)
    save_checkpoint(Path(out) / "checkpoints" / f"{method}_seed{seed}.pt", result)
    start = time.perf_counter()
    dep = deploy(result.model, result.task, lava=lava)
    deployed = raster_to_times(dep["runs"]["fixed"][f"{dep['output_node']}/s"])
    kernel = make_kernel(METHOD_DEFAULTS["exact"]["kernel"])
    row = dict(result.final, deploy_seconds=time.perf_counter() - start,
               scores={engine: {k: score_summary(v) for k, v in s.items()}
                       for engine, s in dep["scores"].items()},
               deployed_error=float(error_functional(deployed, result.task.target_times, kernel).sum(-1).mean()),
               quantization=[dict(node=r.node, limited_by=r.limited_by, state_use=r.state_use,
                                  weights_clipped=sum(syn.clipped for syn in r.synapses),
                                  weights_rounded_to_zero=sum(syn.rounded_to_zero for syn in r.synapses))
                             for r in dep["reports"]],
               trains=dict(target=train_lists(result.task.target_times), learned=train_lists(dep["learned"]),
                           deployed=train_lists(deployed)))
    if lava:
        row["lava_vs_emulator"] = {k: v for k, v in dep["lava_vs_emulator"].items() if k != "keys"}
    return plain(row)


# --------------------------------------------------------------- aggregates
def aggregate(rows: list) -> dict:
    """Per method: success rate, final errors, deployed spike-time errors (pooled), Lava identity."""
    out = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        fixed = [r["scores"]["fixed"]["vs_target"] for r in mine]
        matched = sum(s["matched"] for s in fixed)
        lava = [r["lava_vs_emulator"] for r in mine if "lava_vs_emulator" in r]
        out[method] = dict(
            seeds=len(mine), converged=sum(r["converged"] for r in mine),
            success_rate=float(np.mean([r["converged"] for r in mine])),
            final_error_mean=float(np.mean([r["error"] for r in mine])),
            final_error_median=float(np.median([r["error"] for r in mine])),
            iterations_mean=float(np.mean([r["iterations"] for r in mine])),
            train_seconds_mean=float(np.mean([r["seconds"] for r in mine])),
            deployed_mean_abs_steps=float(sum(s["mean_abs"] * s["matched"] for s in fixed if s["matched"])
                                          / max(matched, 1)),
            deployed_exact_fraction=float(sum(s["exact"] * s["matched"] for s in fixed) / max(matched, 1)),
            deployed_matched=matched, deployed_missing=sum(s["missing"] for s in fixed),
            deployed_extra=sum(s["extra"] for s in fixed), target_spikes=sum(s["target_spikes"] for s in fixed),
            deployed_banerjee_error_mean=float(np.mean([r["deployed_error"] for r in mine])),
            deployed_mean_abs_steps_converged=_pooled([r for r in mine if r["converged"]]),
            lava_runs=len(lava), lava_identical_runs=sum(x["all_identical"] for x in lava),
            lava_identical_entries=sum(x["identical"] for x in lava), lava_entries=sum(x["total"] for x in lava))
    return out


def _pooled(rows: list):
    fixed = [r["scores"]["fixed"]["vs_target"] for r in rows]
    matched = sum(s["matched"] for s in fixed)
    return float(sum(s["mean_abs"] * s["matched"] for s in fixed if s["matched"]) / matched) if matched else None


def summary_lines(agg: dict) -> list:
    lines = []
    for method, a in agg.items():
        lines.append(
            f"{method:9s}: converged {a['converged']}/{a['seeds']} ({a['success_rate']:.0%}), final error "
            f"mean {a['final_error_mean']:.4g} median {a['final_error_median']:.4g} "
            f"({'Banerjee E, ms' if method == 'exact' else 'van Rossum'}), {a['iterations_mean']:.0f} iterations "
            f"and {a['train_seconds_mean']:.0f} s per seed on average")
        lines.append(
            f"{'':9s}  deployed (emulator, fixed point): mean |step error| {a['deployed_mean_abs_steps']:.3f} steps "
            f"over {a['deployed_matched']}/{a['target_spikes']} matched target spikes ({a['deployed_exact_fraction']:.0%} "
            f"in the exact step), {a['deployed_missing']} missing, {a['deployed_extra']} extra; Banerjee E of the "
            f"deployed output {a['deployed_banerjee_error_mean']:.4g} ms")
        lines.append(f"{'':9s}  Lava vs emulator: {a['lava_identical_runs']}/{a['lava_runs']} runs identical "
                     f"({a['lava_identical_entries']}/{a['lava_entries']} recorded s/u/v entries)")
    return lines


# --------------------------------------------------------------------- plot
def plot_rasters(rows: list, path: Path) -> int:
    """Target vs learned vs deployed output trains of one seed (both methods), to a PNG; returns the seed."""
    from toolchain.methods.spike_train.report import plot_rasters as plot

    seed = _plot_seed(rows)
    panels = [(f"{r['method']} (seed {seed}, {'converged' if r['converged'] else 'not converged'})", r["trains"])
              for method in METHODS for r in rows if r["method"] == method and r["seed"] == seed]
    plot(panels, path)
    return seed


def _plot_seed(rows: list) -> int:
    seeds = sorted({r["seed"] for r in rows})
    both = [s for s in seeds if all(r["converged"] for r in rows if r["seed"] == s)]
    return (both or seeds)[0]


# --------------------------------------------------------------------- html
def write_html(path: Path, data: dict, png: Path) -> None:
    from toolchain.files import atomic_path
    from toolchain.verify.report import CSS, escape as _e, image as _img, table as _table

    rows = [[_e(r["method"]), r["seed"], "yes" if r["converged"] else "no", f"{r['error']:.4g}", r["iterations"],
             f"{r['seconds']:.0f}", f"{r['scores']['fixed']['vs_target']['mean_abs']:.3f}",
             f"{r['scores']['fixed']['vs_target']['matched']}/{r['scores']['fixed']['vs_target']['target_spikes']}",
             r["scores"]["fixed"]["vs_target"]["extra"],
             _e(_lava_cell(r))] for r in data["runs"]]
    parts = ["<h1>Spike-train-to-spike-train learning (Banerjee 2016)</h1>",
             f"<p>{_e(data['description'])}</p>",
             "<h2>Summary</h2><pre>" + _e("\n".join(data["summary"])) + "</pre>",
             f"<h2>Output rasters (seed {data['plot_seed']})</h2>",
             "<p>Black: target (continuous desired times); blue: learned (exact: the continuous student; "
             "surrogate: its float discrete output); red: deployed (emulator, fixed point, spike at step n drawn "
             "at n ms).</p>", _img(png), "<h2>Every run</h2>",
             _table(["method", "seed", "converged", "final error", "iterations", "train s",
                     "deployed mean |err| (steps)", "matched", "extra", "Lava == emulator"], rows),
             "<h2>Settings</h2><pre>" + _e(json.dumps(data["settings"], indent=1)) + "</pre>"]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>spike transform</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    with atomic_path(path) as tmp:
        tmp.write_text(page)


def _lava_cell(row: dict) -> str:
    lv = row.get("lava_vs_emulator")
    if lv is None:
        return "not run"
    return f"{'identical' if lv['all_identical'] else 'DIFFERENT'} ({lv['identical']}/{lv['total']})"


def description() -> str:
    """The task and the two methods, as the module docstring states them (one line)."""
    return " ".join(__doc__.split("\n\n")[1:4]).replace("\n", " ")


# --------------------------------------------------------------------- main
def main(argv=None) -> int:
    args = parse(argv)
    from tqdm import tqdm

    from toolchain.files import atomic_path
    from toolchain.methods.spike_train.config import METHOD_DEFAULTS
    from toolchain.tasks.spike_transform import TASK_DEFAULTS

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    exact_lr = {} if args.exact_lr is None else dict(lr=args.exact_lr)
    cfgs = {"exact": dict(iterations=args.exact_iterations, stop_error=STOP_ANY, **exact_lr),
            "surrogate": dict(iterations=args.surrogate_iterations, lr=args.surrogate_lr, stop_error=STOP_ANY)}
    jobs = [(m, s, cfgs[m], s < args.lava_seeds, str(out)) for s in range(args.seeds) for m in METHODS]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(tqdm(pool.map(run_seed, jobs), total=len(jobs), desc="seeds x methods"))
    wall = time.perf_counter() - start
    agg = aggregate(rows)
    lines = summary_lines(agg) + [f"wall time {wall:.0f} s with {args.workers} worker(s)"]
    for line in lines:
        print(line)
    seed = plot_rasters(rows, out / "rasters.png")
    data = dict(description=description(), summary=lines, aggregate=agg,
                plot_seed=seed, wall_seconds=wall, runs=rows,
                settings=dict(task=TASK_DEFAULTS, methods={m: {**METHOD_DEFAULTS[m], **cfgs[m]} for m in METHODS},
                              seeds=args.seeds, lava_seeds=args.lava_seeds, workers=args.workers))
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(data, indent=1))
    write_html(out / "report.html", data, out / "rasters.png")
    print(f"wrote {out / 'results.json'}, {out / 'rasters.png'}, {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
