"""Exact time-to-first-spike learning (Mostafa 2018) on MNIST, end to end.

1. train a 784-800-10 TTFS network in continuous time with exact spike-time
   gradients (`toolchain.methods.ttfs.train.train_ttfs`), or reuse a checkpoint;
2. discretise it at step ``dt`` into Lava CUBA LIF neurons (dv = 0, du from
   tau_syn and dt, self-inhibition so hidden neurons spike once), quantize it,
   run it on the emulator (float and fixed, whole test set) and on Lava (fixed,
   first ``--lava-samples``), and compare first-spike times with continuous time;
3. sweep dt: accuracy and timing error against the step (emulator).

Times are in units of tau_syn. Writes to ``--out``: ``ttfs.pt`` (checkpoint),
``report/`` (the deployment's report folder: ``report.json``, ``report.html``,
``ttfs_float.onnx``/``ttfs_fixed.onnx``), ``dt_sweep.json``,
``dt_sweep.png`` and ``summary.txt``.

    python examples/ttfs_mnist.py                      # full run (hours on one CPU core)
    python examples/ttfs_mnist.py --checkpoint out/ttfs_mnist/ttfs.pt   # deploy a trained net
    python examples/ttfs_mnist.py --task digits --epochs 30            # minutes
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from toolchain.files import atomic_path  # noqa: E402
from toolchain.methods.ttfs.config import TASK_DEFAULTS  # noqa: E402
from toolchain.methods.ttfs.deploy import deploy_ttfs, format_deploy_report  # noqa: E402
from toolchain.methods.ttfs.train import load_checkpoint, train_ttfs  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="mnist", choices=sorted(TASK_DEFAULTS))
    p.add_argument("--epochs", type=int, default=None, help="training epochs (task default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None, help="reuse this trained checkpoint instead of training")
    p.add_argument("--dt", type=float, default=0.0625, help="deployed step, units of tau_syn (default 1/16)")
    p.add_argument("--lava-samples", type=int, default=200)
    p.add_argument("--sweep-samples", type=int, default=2000, help="test samples per dt in the sweep (0 = all)")
    p.add_argument("--n-test", type=int, default=0, help="test samples for the deployment (0 = all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="out/ttfs_mnist")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []

    def say(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    ckpt = Path(args.checkpoint) if args.checkpoint else out / "ttfs.pt"
    if args.checkpoint is None:
        start = time.time()
        res = train_ttfs(args.task, args.epochs, args.seed, out=ckpt, threads=args.threads,
                            log=print, log_every=300)
        say(f"trained {args.task}: {res.meta['epochs']} epochs in {time.time() - start:.0f} s, "
            f"test accuracy {res.meta['accuracy']['test']:.4f} (train {res.meta['accuracy']['train']:.4f}) -> {ckpt}")
    else:
        _, meta = load_checkpoint(ckpt)
        say(f"checkpoint {ckpt}: {meta.get('epochs')} epochs, {meta.get('wall_time_s', 0):.0f} s of training, "
            f"test accuracy {meta['accuracy']['test']:.4f}")

    report = deploy_ttfs(ckpt, args.dt, engines=("emulator", "lava") if args.lava_samples else ("emulator",),
                            lava_samples=args.lava_samples, n_test=args.n_test or None, out_dir=out / "report",
                            log=print)
    say(format_deploy_report(report))
    allow = deploy_ttfs(ckpt, args.dt, refire="allow", n_test=args.n_test or None, log=None, progress=False)
    say("without the re-spike fix (refire='allow': Lava's reset keeps u, hidden neurons spike again):")
    say(format_deploy_report(allow))

    rows = dt_sweep(ckpt, n_test=args.sweep_samples or None, log=None)
    say(f"dt sweep ({args.sweep_samples or 'all'} test samples per dt, emulator):")
    for r in rows:
        say("  " + format_sweep_row(r))
    (out / "dt_sweep.json").write_text(json.dumps(rows, indent=1))
    plot_sweep(rows, out / "dt_sweep.png")
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/")
    return 0


# ------------------------------------------------------------------ dt sweep
def dt_sweep(model, dts=(0.5, 0.25, 0.125, 0.0625, 0.03125), *, n_test: int | None = 2000, data=None,
             refire: str = "inhibit", stats: str = "data", modes=("float", "fixed"), progress: bool = False,
             log=print) -> list:
    """Accuracy and first-spike-time error against the step ``dt`` (emulator only).

    One row per (dt, mode): accuracy, its change from continuous time, the hidden and
    decision timing errors in steps and in units of tau_syn, and the step count.
    """
    rows = []
    for dt in dts:
        rep = deploy_ttfs(model, dt, refire=refire, stats=stats, n_test=n_test, data=data, modes=modes,
                          progress=progress, log=None)
        c = rep["continuous"]
        for name, e in rep["engines"].items():
            hid = e["timing_steps"]["layers.0"]
            dec = e["timing_steps"]["decision (first output spike)"]
            row = dict(dt=dt, engine=name, steps=rep["clock"]["steps"], accuracy=e["accuracy"],
                       continuous=c["accuracy"], delta_pp=100 * (e["accuracy"] - c["accuracy"]),
                       hidden_err_mean_steps=hid["mean"], hidden_err_std_steps=hid["std"],
                       hidden_err_mean_abs_tau=hid["mean_abs"] * dt, decision_err_mean_steps=dec["mean"],
                       decision_err_mean_abs_tau=dec["mean_abs"] * dt,
                       hidden_spikes_before_decision=e["hidden_spikes_before_decision_mean"])
            rows.append(row)
            if log:
                log(format_sweep_row(row))
    return rows


def format_sweep_row(r: dict) -> str:
    return (f"dt={r['dt']:<8g} {r['engine']:<15} steps {r['steps']:>4}  acc {r['accuracy']:.4f} ({r['delta_pp']:+.2f} pp)  "
            f"hidden err {r['hidden_err_mean_steps']:+.3f}±{r['hidden_err_std_steps']:.3f} steps "
            f"(|err| {r['hidden_err_mean_abs_tau']:.4f} tau)  decision err {r['decision_err_mean_steps']:+.3f} steps "
            f"(|err| {r['decision_err_mean_abs_tau']:.4f} tau)  hidden spikes before decision "
            f"{r['hidden_spikes_before_decision']:.1f}")


def plot_sweep(rows: list, path) -> None:
    """Accuracy and mean |timing error| (units of tau_syn) against dt, one line per engine mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for engine in dict.fromkeys(r["engine"] for r in rows):
        rs = [r for r in rows if r["engine"] == engine]
        dts = [r["dt"] for r in rs]
        a.plot(dts, [100 * r["accuracy"] for r in rs], "o-", label=engine)
        b.plot(dts, [r["hidden_err_mean_abs_tau"] for r in rs], "o-", label=f"hidden, {engine}")
        b.plot(dts, [r["decision_err_mean_abs_tau"] for r in rs], "s--", label=f"decision, {engine}")
    a.axhline(100 * rows[0]["continuous"], color="k", lw=0.8, label="continuous")
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("dt (units of tau_syn)")
    a.set_ylabel("test accuracy (%)")
    b.set_ylabel("mean |first-spike error| (tau_syn)")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
