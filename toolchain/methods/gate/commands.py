"""The `spikeport` verbs for gate networks (``--method gate``; tasks ``xor``, ``predictive-coding``).

A gate checkpoint (kind ``spikeport-gate-checkpoint``) is recognised by ``compile`` and
``verify`` without a flag.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from models.errors import SpikeportError
from toolchain import flags
from toolchain.ir import passes
from toolchain.methods.gate.config import VERIFY_LAVA_TRIALS, VERIFY_SEED_OFFSET, VERIFY_TRIALS

# Building the CLI parser loads this module: imports that pull torch stay inside the functions.


def add_options(verb: str, parser) -> None:
    """``--resume``, ``--iterations`` for train; ``--seed`` for verify (the test trials are the shared
    ``--samples``, the Lava ones ``--lava-samples``: `VERIFY_TRIALS`, `VERIFY_LAVA_TRIALS` by default)."""
    if verb == "train":
        parser.add_argument("--resume", action="store_true",
                            help="gate: continue the run in --out after its last checkpoint "
                                 "(same settings; only --iterations may grow; default: off)")
        parser.add_argument("--iterations", type=flags.positive_int,
                            help="gate: optimiser steps, one fresh batch each (default: the task's, "
                                 "xor 500, predictive-coding 300)")
    if verb == "verify":
        parser.add_argument("--seed", type=flags.non_negative_int,
                            help=f"gate: seed of the fresh test trials (default {VERIFY_SEED_OFFSET}, "
                                 "a seed no training or validation batch uses)")


def train(args: argparse.Namespace) -> int:
    """`spikeport train --method gate --task xor|predictive-coding [--iterations N] [--resume]`."""
    from toolchain.methods.gate.train import train_gate  # lazy: imports torch

    if args.epochs is not None:
        raise SpikeportError(f"train: --epochs={args.epochs} does not apply to --method gate, which counts "
                             "optimiser steps: use --iterations")
    meta = train_gate(args.task, iterations=getattr(args, "iterations", None), seed=args.seed or 0,
                      out=args.out, resume=getattr(args, "resume", False), progress=not args.quiet,
                      log=None if args.quiet else print, config_file=args.config,
                      **({"threads": args.threads} if args.threads else {}))
    v = meta["validation"]
    figure = (f"validation correct {v['correct']:.1%}" if args.task == "xor" else f"validation NMSE {v['nmse']:.4f}")
    print(f"{args.task} (gate): {figure} after {meta['iterations']} iterations in {meta['wall_time_s']:.0f} s "
          f"-> {args.out}")
    return 0


def compile(path: Path, args: argparse.Namespace) -> tuple:
    """`spikeport compile gate.pt`: (fixed gate-QIF IR validated for ``--target``, report lines)."""
    from toolchain.methods.gate.deploy import compile_gate  # lazy: imports torch

    _, ir, lines = compile_gate(path)
    passes.validate(ir, args.target, require_fixed=True)
    return ir, "\n".join(lines)


def verify(args: argparse.Namespace) -> int:
    """`spikeport verify gate.pt [--samples N] [--seed S] [--lava-samples M]`: N fresh test trials on the float
    model, float and fixed emulator,
    Lava fixed_pt vs the emulator; PASS when the task's criteria hold on every engine and Lava is
    bit-identical to the emulator."""
    from toolchain.methods.gate.verify import verify_gate  # lazy: imports torch
    from toolchain.verify.report import check_replaceable  # lazy: imports torch

    if not args.no_report:
        check_replaceable(args.report)
    lava = "lava" in [b.strip() for b in args.backends.split(",")]
    return verify_gate(args.model, trials=args.samples or VERIFY_TRIALS,
                       seed=VERIFY_SEED_OFFSET if args.seed is None else args.seed,
                       lava_trials=(args.lava_samples or VERIFY_LAVA_TRIALS) if lava else 0,
                       report=None if args.no_report else args.report)
