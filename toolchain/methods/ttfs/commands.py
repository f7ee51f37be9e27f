"""The `spikeport` verbs for time-to-first-spike networks (``--method ttfs``).

A TTFS checkpoint (kind ``spikeport-ttfs-checkpoint``) is recognised by
``compile`` and ``verify`` without a flag; the deployed step ``--dt`` is in
units of tau_syn (default `DEFAULT_DT` = 1/16, the step `examples/ttfs_mnist.py` justifies;
a task in `TASK_DT` has its own, chosen from the task the checkpoint records).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from toolchain import flags
from toolchain.ir import passes
from toolchain.methods.ttfs.config import DEFAULT_DT, KIND, TASK_DT, default_dt
from toolchain.quantize import format_report
from toolchain.tasks import datasets

# Building the CLI parser loads this module: imports that pull torch stay inside the functions.


def add_options(verb: str, parser) -> None:
    """``--dt`` for compile and verify."""
    if verb in ("compile", "verify"):
        parser.add_argument("--dt", type=flags.positive_float,
                            help=f"deployed step in units of tau_syn (default: {DEFAULT_DT}; per task: "
                                 f"{', '.join(f'{t} {dt}' for t, dt in TASK_DT.items())})")


def train(args: argparse.Namespace) -> int:
    """`spikeport train --method ttfs --task digits|mnist|yinyang`."""
    from toolchain.methods.ttfs.train import train_ttfs  # lazy: imports torch

    overrides = {"threads": args.threads} if args.threads else {}
    result = train_ttfs(args.task, epochs=args.epochs, seed=args.seed or 0, out=args.out,
                        progress=not args.quiet, log=None if args.quiet else print, config_file=args.config,
                        **overrides)
    acc, meta = result.meta["accuracy"], result.meta
    print(f"{args.task} (ttfs): train accuracy {acc['train']:.2%}, test accuracy {acc['test']:.2%}, "
          f"{meta['epochs']} epochs in {meta['wall_time_s']:.0f} s -> {args.out}")
    return 0


def compile_ttfs(path, dt: float, calibration_samples: int):
    """Checkpoint -> (fixed IR, layer reports): discretise at ``dt`` (units of tau_syn), calibrate on
    the first ``calibration_samples`` training samples, quantize."""
    from toolchain.methods.ttfs.lower import lower_ttfs  # lazy: imports torch
    from toolchain.methods.ttfs.quantize import quantize_ttfs  # lazy: imports torch
    from toolchain.methods.ttfs.train import load_checkpoint  # lazy: imports torch

    model, meta = load_checkpoint(path)
    model = model.double().eval()
    x_cal = datasets.load_task(meta.get("task", "mnist")).x_train[:calibration_samples].astype("float64")
    ir = lower_ttfs(model, dt, inhibit="data", x_cal=x_cal)
    fixed, reports = quantize_ttfs(ir, x_cal)
    fixed.meta.update(task=meta.get("task"), method="ttfs",
                      quantization_mode=f"post-training TTFS ({calibration_samples} calibration samples, dt={dt})")
    return fixed, reports


def compile(path: Path, args: argparse.Namespace) -> tuple:
    """`spikeport compile model.pt` for a TTFS checkpoint: (fixed IR validated for ``--target``, report)."""
    fixed, reports = compile_ttfs(path, deployed_dt(args, path), args.calibration_samples)
    passes.validate(fixed, args.target, require_fixed=True)
    return fixed, format_report(reports)


def verify(args: argparse.Namespace) -> int:
    """`spikeport verify model.pt` for a TTFS checkpoint: continuous vs deployed, Lava vs emulator;
    prints the summary, writes the report folder ``--report`` (`deploy.write_ttfs_report`: report.json,
    report.html, ttfs_float.onnx, ttfs_fixed.onnx) unless ``--no-report``.

    Exit 1 when Lava and the emulator differ on any sample, or the fixed-point
    accuracy falls more than ``--max-accuracy-drop`` (default 0.005) below
    continuous time.
    """
    from toolchain.methods.ttfs.deploy import (  # lazy: imports torch
        DEFAULT_MAX_DROP, deployment, format_deploy_report, ttfs_criteria, write_ttfs_report)
    from toolchain.verify.verdict import criteria_lines, exit_status, failed_lines
    from toolchain.verify import backend_names  # lazy: imports torch
    from toolchain.verify.report import check_replaceable  # lazy: imports torch

    backends = backend_names(args.backends, ("float", "emulator", "lava"), "TTFS")
    if not args.no_report:
        check_replaceable(args.report)
    modes = tuple(m for m, b in (("float", "float"), ("fixed", "emulator")) if b in backends) or ("fixed",)
    dep = deployment(args.model, deployed_dt(args, args.model), n_test=args.samples or flags.VERIFY_SAMPLES,
                     engines=("emulator", "lava") if "lava" in backends else ("emulator",),
                     lava_samples=args.lava_samples or 20, modes=modes, progress=True, log=None)
    crit = ttfs_criteria(dep.report, DEFAULT_MAX_DROP if args.max_accuracy_drop is None else args.max_accuracy_drop)
    summary = "\n".join([format_deploy_report(dep.report), "", *criteria_lines(crit)])
    print("\n".join([summary, *failed_lines(crit)]))
    if not args.no_report:
        folder = write_ttfs_report(dep, args.report, summary, crit, str(args.model))
        print(f"report: {Path(folder) / 'report.html'}")
    return exit_status(crit)


def deployed_dt(args: argparse.Namespace, path) -> float:
    """``--dt``, else the default step of the task the checkpoint at ``path`` records (`default_dt`)."""
    if args.dt:
        return args.dt
    from toolchain import checkpoint  # lazy: imports torch

    return default_dt(checkpoint.read(path, KIND).get("meta", {}).get("task"))
