"""Exact time-to-first-spike learning (Mostafa 2018) on MNIST, end to end.

1. train a 784-800-10 TTFS network in continuous time with exact spike-time
   gradients (`toolchain.ttfs.train_ttfs`), or reuse a checkpoint;
2. discretise it at step ``dt`` into Lava CUBA LIF neurons (dv = 0, du from
   tau_syn and dt, self-inhibition so hidden neurons spike once), quantize it,
   run it on the emulator (float and fixed, whole test set) and on Lava (fixed,
   first ``--lava-samples``), and compare first-spike times with continuous time;
3. sweep dt: accuracy and timing error against the step (emulator).

Times are in units of tau_syn. Writes to ``--out``: ``ttfs.pt`` (checkpoint),
``ttfs_float.onnx``/``ttfs_fixed.onnx`` (IRs), ``deploy.json``, ``dt_sweep.json``,
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

from toolchain import ttfs as tt  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="mnist", choices=sorted(tt.TTFS_TASK_DEFAULTS))
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
        res = tt.train_ttfs(args.task, args.epochs, args.seed, out=ckpt, threads=args.threads,
                            log=print, log_every=300)
        say(f"trained {args.task}: {res.meta['epochs']} epochs in {time.time() - start:.0f} s, "
            f"test accuracy {res.meta['accuracy']['test']:.4f} (train {res.meta['accuracy']['train']:.4f}) -> {ckpt}")
    else:
        _, meta = tt.load_checkpoint(ckpt)
        say(f"checkpoint {ckpt}: {meta.get('epochs')} epochs, {meta.get('wall_time_s', 0):.0f} s of training, "
            f"test accuracy {meta['accuracy']['test']:.4f}")

    report = tt.deploy_ttfs(ckpt, args.dt, engines=("emulator", "lava") if args.lava_samples else ("emulator",),
                            lava_samples=args.lava_samples, n_test=args.n_test or None, out_dir=out, log=print)
    say(tt.format_deploy_report(report))
    allow = tt.deploy_ttfs(ckpt, args.dt, refire="allow", n_test=args.n_test or None, log=None, progress=False)
    say("without the re-spike fix (refire='allow': Lava's reset keeps u, hidden neurons spike again):")
    say(tt.format_deploy_report(allow))

    rows = tt.dt_sweep(ckpt, n_test=args.sweep_samples or None, log=None)
    say(f"dt sweep ({args.sweep_samples or 'all'} test samples per dt, emulator):")
    for r in rows:
        say("  " + tt.format_sweep_row(r))
    (out / "dt_sweep.json").write_text(json.dumps(rows, indent=1))
    tt.plot_sweep(rows, out / "dt_sweep.png")
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
