"""The `spikeport` verbs for theta networks trained with smooth exact gradients (``--method smooth``).

A smooth checkpoint (kind ``spikeport-smooth-checkpoint``) is recognised by ``compile`` and
``verify`` without a flag. ``--step-exponent K`` sets the deployed step h = dt / tau = 2**-K
(default `DEFAULT_K` = 8: dt = 0.0075 time units, 273 engine steps for T = 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from models.errors import SpikeportError
from toolchain import flags
from toolchain.ir import passes
from toolchain.methods.smooth.config import DEFAULT_K
from toolchain.threads import set_threads

# Building the CLI parser loads this module: imports that pull torch stay inside the functions.
SWEEP = (6, 7, 8, 9, 10)


def add_options(verb: str, parser) -> None:
    """``--resume`` for train; ``--step-exponent`` for compile and verify; ``--sweep`` for verify."""
    if verb == "train":
        parser.add_argument("--resume", action="store_true",
                            help="continue the run in --out after its last finished epoch (same settings; only "
                                 "--epochs may grow; default: off, a new run)")
        parser.add_argument("--qat-from", metavar="CHECKPOINT",
                            help="fine-tune this smooth checkpoint quantization-aware (the loss of the deployed "
                                 "fixed-point network, computed in torch; gradients of the continuous one) and "
                                 "write --out (default: off)")
        parser.add_argument("--qat-epochs", type=flags.positive_int,
                            help="with --qat-from: fine-tuning epochs (passes over the training set; default: 1)")
        parser.add_argument("--qat-lr", type=flags.positive_float,
                            help="with --qat-from: AdaBelief learning rate (default: 1e-4)")
    if verb in ("compile", "verify", "train"):
        parser.add_argument("--step-exponent", type=flags.non_negative_int,
                            help=f"deployed step h = dt/tau = 2**-K, K in [1, 16] (default: {DEFAULT_K})")
    if verb == "verify":
        parser.add_argument("--sweep", default=",".join(map(str, SWEEP)),
                            help="step exponents K of the dt sweep, comma-separated, or 'none' (on at most 1000 of "
                                 f"the samples; default: {','.join(map(str, SWEEP))})")


def train(args: argparse.Namespace) -> int:
    """`spikeport train --method smooth --task mnist|digits|yinyang [--resume]`."""
    if getattr(args, "qat_from", None):
        return _finetune(args)
    given = [flag for flag, value in (("--qat-epochs", args.qat_epochs), ("--qat-lr", args.qat_lr)) if value]
    if given:
        raise SpikeportError(f"train: {given[0]} applies only with --qat-from CHECKPOINT")
    from toolchain.methods.smooth.train import train_smooth  # lazy: imports torch

    overrides = {"threads": args.threads} if args.threads else {}
    meta = train_smooth(args.task, epochs=args.epochs, seed=args.seed or 0, out=args.out,
                        resume=getattr(args, "resume", False), progress=not args.quiet,
                        log=None if args.quiet else print, config_file=args.config, **overrides)
    acc = meta["accuracy"]
    print(f"{args.task} (smooth): test accuracy {acc['accuracy']:.2%} with pseudospikes, "
          f"{acc['accuracy_ordinary']:.2%} from ordinary spikes, {meta['epochs']} epochs in "
          f"{meta['wall_time_s']:.0f} s -> {args.out}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    """`spikeport train --method smooth --qat-from CHECKPOINT`: quantization-aware fine-tuning."""
    from toolchain.methods.smooth.qat import finetune  # lazy: imports torch

    if args.threads:
        set_threads(args.threads)
    meta = finetune(args.qat_from, args.out, args.qat_epochs or 1, step_exponent(args), lr=args.qat_lr or 1e-4,
                    progress=not args.quiet, log=None if args.quiet else print)
    h = meta["qat"]["history"]
    print(f"{meta['task']} (smooth, QAT at h=2**-{meta['qat']['k']}): deployed accuracy "
          f"{h[0]['accuracy_deployed']:.2%} -> {h[-1]['accuracy_deployed']:.2%} (torch fixed mode, "
          f"{h[-1]['samples']} test samples) after {meta['qat']['epochs']} epochs in "
          f"{meta['qat']['wall_time_s']:.0f} s -> {args.out}")
    return 0


def step_exponent(args) -> int:
    k = DEFAULT_K if getattr(args, "step_exponent", None) is None else args.step_exponent
    if not 1 <= k <= 16:
        raise SpikeportError(f"--step-exponent={k} is outside [1, 16] (h = 2**-K)")
    return k


def compile(path: Path, args: argparse.Namespace) -> tuple:
    """`spikeport compile smooth.pt`: (fixed QIF IR validated for ``--target``, report lines)."""
    from toolchain.methods.smooth.deploy import compile_smooth  # lazy: imports torch

    _, ir, lines = compile_smooth(path, step_exponent(args))
    passes.validate(ir, args.target, require_fixed=True)
    return ir, "\n".join(lines)


def sweep_exponents(text: str) -> tuple:
    if text.strip().lower() == "none":
        return ()
    try:
        ks = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SpikeportError(f"--sweep={text!r} is outside the allowed values (comma-separated integers, "
                             f"or 'none')") from None
    bad = [k for k in ks if not 1 <= k <= 16]
    if bad:
        raise SpikeportError(f"--sweep: step exponent {bad[0]} is outside [1, 16]")
    return ks


def verify(args: argparse.Namespace) -> int:
    """`spikeport verify smooth.pt`: continuous vs deployed per layer, accuracy per engine, the dt
    sweep, Lava vs emulator; prints the summary, writes the report unless ``--no-report``.

    Exit 1 when Lava and the emulator differ on any sample, or the deployed accuracy falls more
    than ``--max-accuracy-drop`` (default 0.005) below the continuous ordinary-spike accuracy.
    """
    from toolchain.methods.smooth.verify import verify_smooth  # lazy: imports torch
    from toolchain.verify import backend_names  # lazy: imports torch
    from toolchain.verify.report import check_replaceable  # lazy: imports torch

    backends = backend_names(args.backends, ("float", "emulator", "lava"), "smooth")
    if not args.no_report:
        check_replaceable(args.report)
    return verify_smooth(args.model, step_exponent(args), samples=args.samples or flags.VERIFY_SAMPLES,
                         lava_samples=(args.lava_samples or 20) if "lava" in backends else 0,
                         sweep=sweep_exponents(args.sweep),
                         max_drop=0.005 if args.max_accuracy_drop is None else args.max_accuracy_drop,
                         report=None if args.no_report else args.report)
