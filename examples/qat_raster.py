"""Spike timing as the output: post-training quantization vs quantization-aware training.

For every seed, `raster_task` (next to this script) freezes 50 Poisson-like input channels
over 100 steps and a random target raster on 50 output neurons (2-4 spikes
each, >= 8 steps apart). A 50-200-50 LIF network learns it with the van Rossum
loss (SuperSpike surrogate, float mode). Then, each scored on the *deployed*
network (the fixed-point emulator running the compiled integers) by the
fraction of target spikes hit within +-1 step (one-to-one matching):

* ``ptq``: the float network, post-training quantized (`toolchain.quantize`,
  calibrated on the task input);
* ``ptq_more``: control for the extra training QAT gets: the float network
  trained ``--qat-steps`` more float steps at ``--qat-lr``, then quantized;
* ``qat``: the float network at the PTQ scales, fine-tuned ``--qat-steps`` steps
  in Lava's integer arithmetic (straight-through rounding), lowered as trained;
* ``qat_scratch``: trained in integer arithmetic from the initialisation
  (scales re-chosen from the float weights every ``--rescale-every`` steps),
  unless ``--scratch-steps 0``.

Identity: on the task input and ``--lava-patterns - 1`` jittered copies (each
input spike moved by -1/0/+1 step), the torch fixed-point forward, the emulator
and Lava (``fixed_pt``, the first ``--lava-seeds`` seeds) must agree on s, v and
u of both layers at every step, for the PTQ and the QAT network.

Time: steps t = 1..T, one step per synaptic hop (input -> hidden -> output adds
two). Writes ``--out``/results.json (every number) and raster.png (target vs
PTQ vs QAT deployed output spikes, first seed).

    nice -n 5 .venv/bin/python examples/qat_raster.py
    .venv/bin/python examples/qat_raster.py --seeds 0 --qat-steps 50 --scratch-steps 0   # quick look
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from toolchain.ir import passes  # noqa: E402
from toolchain.files import atomic_path  # noqa: E402
from toolchain.lower import lower  # noqa: E402
from toolchain.lower import apply_scales
from toolchain.quantize import calibration_stats, quantize  # noqa: E402
from raster_task import fit_raster, hit_fraction, make_raster_task, raster_network  # noqa: E402

NODES = ("layers.0", "layers.1")
OUT = "layers.1"


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="task + initialisation seeds")
    p.add_argument("--float-steps", type=int, default=400)
    p.add_argument("--float-lr", type=float, default=3e-3)
    p.add_argument("--qat-steps", type=int, default=200)
    p.add_argument("--qat-lr", type=float, default=3e-4)
    p.add_argument("--scratch-steps", type=int, default=400, help="0: skip QAT from scratch")
    p.add_argument("--scratch-lr", type=float, default=3e-3)
    p.add_argument("--rescale-every", type=int, default=100, help="QAT from scratch: re-choose scales")
    p.add_argument("--lava-patterns", type=int, default=3, help="task input + N-1 jittered copies")
    p.add_argument("--lava-seeds", type=int, default=1, help="run Lava for the first N seeds (0: never)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="out/qat_raster")
    args = p.parse_args(argv)
    for name in ("float_steps", "qat_steps", "lava_patterns", "threads", "rescale_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


# ------------------------------------------------------------ deployment
def ptq(model, x: np.ndarray):
    """Post-training quantization calibrated on ``x``: the fixed IR (validated)."""
    ir = lower(model, name="raster")
    q, _ = quantize(ir, calibration_stats(ir, x.astype(np.float64)))
    passes.validate(q, "loihi2", require_fixed=True)
    return q


def qat_ir(model):
    """A QAT network lowered with the integers it trained with (validated)."""
    ir = lower(model, name="raster")
    passes.validate(ir, "loihi2", require_fixed=True)
    return ir


def emulate(ir, x: np.ndarray) -> dict:
    from backends.emulator import run

    return run(ir, x, mode="fixed")


def torch_fixed(model, x: np.ndarray) -> dict:
    with torch.no_grad():
        traces = model(torch.as_tensor(x, dtype=torch.float64), mode="fixed")
    out = {}
    for node, tr in zip(NODES, traces):
        out.update({f"{node}/s": tr.s.numpy(), f"{node}/v": tr.v_post.numpy(), f"{node}/u": tr.u.numpy()})
    return out


def identical_samples(a: dict, b: dict, n: int) -> int:
    """Samples whose s, v, u agree exactly in every node at every step."""
    same = np.ones(n, dtype=bool)
    for node in NODES:
        for var in ("s", "v", "u"):
            x, y = np.asarray(a[f"{node}/{var}"], dtype=np.float64), np.asarray(b[f"{node}/{var}"], dtype=np.float64)
            same &= (x == y).reshape(n, -1).all(axis=1)
    return int(same.sum())


def jittered(x: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """The pattern plus ``copies`` versions with every spike moved by -1, 0 or +1 step."""
    rng = np.random.RandomState(1000 + seed)
    out = [x[0]]
    T = x.shape[1]
    for _ in range(copies):
        y = np.zeros_like(x[0])
        t, n = np.nonzero(x[0])
        y[np.clip(t + rng.randint(-1, 2, size=t.size), 0, T - 1), n] = 1
        out.append(y)
    return np.stack(out)


def with_scales_from(model, ir):
    m = copy.deepcopy(model)
    apply_scales(m, ir)
    return m


# ------------------------------------------------------------------ one seed
def run_seed(seed: int, args, lava: bool) -> tuple[dict, dict]:
    task = make_raster_task(seed=seed)
    x = np.rint(task.x.numpy()).astype(np.int32)
    target = task.target.numpy()
    res = dict(seed=seed, target_spikes=int(target.sum()), seconds={})
    rasters = {"target": target[0]}

    t0 = time.perf_counter()
    net = raster_network(task, seed=seed)
    res["float_loss"] = fit_raster(net, task, args.float_steps, args.float_lr, progress=True)[-1]
    with torch.no_grad():
        res["float_hits"] = hit_fraction(net(task.x)[-1].s.numpy(), target)
    res["seconds"]["float"] = time.perf_counter() - t0

    ir_ptq = ptq(net, x)
    out_ptq = emulate(ir_ptq, x)
    res["ptq_hits"] = hit_fraction(out_ptq[f"{OUT}/s"], target)
    res["ptq_scales"] = {k: v["lam"] for k, v in ir_ptq.meta["quantization"].items()}
    rasters["ptq"] = out_ptq[f"{OUT}/s"][0]

    more = copy.deepcopy(net)
    fit_raster(more, task, args.qat_steps, args.qat_lr, progress=True)
    with torch.no_grad():
        res["float_more_hits"] = hit_fraction(more(task.x)[-1].s.numpy(), target)
    res["ptq_more_hits"] = hit_fraction(emulate(ptq(more, x), x)[f"{OUT}/s"], target)

    t0 = time.perf_counter()
    qat = with_scales_from(net, ir_ptq)
    res["qat_loss"] = fit_raster(qat, task, args.qat_steps, args.qat_lr, mode="fixed", progress=True)[-1]
    res["seconds"]["qat"] = time.perf_counter() - t0
    ir_q = qat_ir(qat)
    out_qat = emulate(ir_q, x)
    res["qat_hits"] = hit_fraction(out_qat[f"{OUT}/s"], target)
    res["qat_torch_fixed_hits"] = hit_fraction(torch_fixed(qat, x)[f"{OUT}/s"], target)
    rasters["qat"] = out_qat[f"{OUT}/s"][0]

    if args.scratch_steps:
        scratch = raster_network(task, seed=seed)
        done = 0
        while done < args.scratch_steps:
            steps = min(args.rescale_every, args.scratch_steps - done)
            for layer in scratch.layers:
                layer.fixed_scale.zero_()
            apply_scales(scratch, ptq(scratch, x))
            fit_raster(scratch, task, steps, args.scratch_lr, mode="fixed", progress=True)
            done += steps
        res["qat_scratch_hits"] = hit_fraction(emulate(qat_ir(scratch), x)[f"{OUT}/s"], target)

    # identity: torch fixed == emulator (== Lava) on the pattern and jittered copies
    patterns = jittered(x, args.lava_patterns - 1, seed)
    res["identity"] = {}
    for name, model, ir in (("ptq", with_scales_from(net, ir_ptq), ir_ptq), ("qat", qat, ir_q)):
        emu = emulate(ir, patterns)
        ident = dict(patterns=len(patterns), torch_fixed_eq_emulator=identical_samples(torch_fixed(model, patterns),
                                                                                       emu, len(patterns)))
        if lava:
            from backends.lava.runner import run_lava

            ident["emulator_eq_lava"] = identical_samples(emu, run_lava(ir, patterns, mode="fixed"), len(patterns))
        res["identity"][name] = ident
    return res, rasters


# ---------------------------------------------------------------- outputs
def plot(rasters: dict, res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = rasters["target"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, key in zip(axes, ("ptq", "qat")):
        got = rasters[key]
        tt, tn = np.nonzero(target)
        ax.scatter(tt + 1, tn, s=60, facecolors="none", edgecolors="0.6", label="target")
        gt, gn = np.nonzero(got)
        near = np.array([target[max(t - 1, 0):t + 2, n].any() for t, n in zip(gt, gn)], dtype=bool)
        ax.scatter(gt[near] + 1, gn[near], s=12, c="tab:blue", label="deployed, within +-1 step of a target")
        ax.scatter(gt[~near] + 1, gn[~near], s=18, c="tab:red", marker="x", label="deployed, no target nearby")
        ax.set_title(f"{key.upper()} deployed (emulator): {res[key + '_hits']:.1%} of target spikes hit (+-1)")
        ax.set_xlabel("step t")
    axes[0].set_ylabel("output neuron")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(f"raster task, seed {res['seed']}: {res['target_spikes']} target spikes, 50 in -> 200 -> 50 out, "
                 "T = 100")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, first_rasters = [], None
    for i, seed in enumerate(args.seeds):
        res, rasters = run_seed(seed, args, lava=i < args.lava_seeds)
        results.append(res)
        first_rasters = first_rasters or (rasters, res)
        print(f"seed {seed}: target hits (+-1 step), deployed: PTQ {res['ptq_hits']:.1%}, "
              f"QAT {res['qat_hits']:.1%} (float {res['float_hits']:.1%}; control: float +{args.qat_steps} steps "
              f"{res['float_more_hits']:.1%}, its PTQ {res['ptq_more_hits']:.1%}"
              + (f"; QAT from scratch {res['qat_scratch_hits']:.1%}" if "qat_scratch_hits" in res else "") + ")")
        for name, ident in res["identity"].items():
            lava = f", emulator = Lava {ident['emulator_eq_lava']}/{ident['patterns']}" if "emulator_eq_lava" in ident \
                else ""
            print(f"  {name}: torch-fixed = emulator {ident['torch_fixed_eq_emulator']}/{ident['patterns']} "
                  f"patterns{lava} (s, v, u, both layers, every step)")
    keys = ["float_hits", "ptq_hits", "float_more_hits", "ptq_more_hits", "qat_hits", "qat_scratch_hits"]
    mean = {k: float(np.mean([r[k] for r in results])) for k in keys if all(k in r for r in results)}
    wins = sum(r["qat_hits"] > r["ptq_hits"] for r in results)
    identical = all(v["torch_fixed_eq_emulator"] == v["patterns"] and v.get("emulator_eq_lava", v["patterns"])
                    == v["patterns"] for r in results for v in r["identity"].values())
    summary = dict(mean=mean, qat_beats_ptq_seeds=wins, seeds=len(results), all_identical=identical,
                   args=vars(args), results=results)
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    plot(*first_rasters, out / "raster.png")
    print(f"mean over {len(results)} seeds: " + ", ".join(f"{k} {v:.1%}" for k, v in mean.items()))
    print(f"QAT beats PTQ on {wins}/{len(results)} seeds; fixed-point engines identical on every pattern: "
          f"{identical}; wrote {out / 'results.json'}, {out / 'raster.png'}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
