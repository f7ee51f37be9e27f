"""The `spikeport` verbs for SuperSpike classification networks (``--method surrogate``).

Time: one step per synaptic hop; the input encoding (steps ``T``) is the task's
and is stored in the checkpoint. Verify is the classification cross-check
(`toolchain.verify`), which also takes compiled ``.onnx`` files.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from toolchain import flags, formats
from toolchain.methods.superspike.config import RUN_DEFAULTS, TASK_DEFAULTS, with_task
from toolchain.quantize import LayerReport, format_report

# Building the CLI parser loads this module: imports that pull torch stay inside the functions.


def add_options(verb: str, parser) -> None:
    """The flags only SuperSpike takes, per verb."""
    if verb == "train":
        parser.add_argument("--feedback", choices=["symmetric", "random", "uniform"],
                            help="feedback weights of the surrogate gradient: the forward weights, fixed random or "
                                 "uniform ones (default: symmetric)")
        parser.add_argument("--qat", action="store_true", help="train quantization-aware, in Lava fixed-point arithmetic, every epoch (default: "
                                 "off, float; a float run then ends with the config's qat_epochs quantization-aware "
                                 f"epochs: {qat_epochs_help()})")
        parser.add_argument("--finetune", help="start from this checkpoint (with --qat: quantize, then fine-tune; default: none, "
                                 "a fresh initialisation)")
    elif verb == "compile":
        parser.add_argument("--task", help="for a float network file (.nir, .onnx): the task whose training "
                                           "inputs calibrate it (default: the one the file records)")
    elif verb == "verify":
        parser.add_argument("--task", help="the task whose test set to run (default: the recorded one)")
        parser.add_argument("--max-timing-error", type=flags.non_negative_float, default=None,
                            help="fail if the output layer's mean |first-spike error| (steps, float vs fixed) "
                                 "exceeds this (default: none, not checked)")
        parser.add_argument("--min-match-1", type=flags.fraction, default=None,
                            help="fail if the fixed engine matches fewer than this share of the float output "
                                 "spikes within +-1 step (fraction; default: 0.9)")
        parser.add_argument("--ir", help="a compiled .onnx to verify against the .pt checkpoint "
                                         "(default: compile in memory)")
        parser.add_argument("--seed", type=flags.non_negative_int,
                            help="superspike: seed of a stochastic input encoder (default: 0)")
        parser.add_argument("--lava-batching", choices=["tile", "per-sample"], default="tile",
                            help="Lava runs the samples side by side in one network (tile) or one network "
                                 "per sample (per-sample, slow; default: tile)")


def qat_epochs_help() -> str:
    """Each task's default ``qat_epochs`` (quantization-aware epochs ending a float run), for the help."""
    return ", ".join(f"{task} {cfg.get('qat_epochs', RUN_DEFAULTS['qat_epochs'])}" for task, cfg in TASK_DEFAULTS.items())


def train(args: argparse.Namespace) -> int:
    """`spikeport train --method surrogate --task digits|mnist|yinyang [--qat] [--finetune X]`."""
    from toolchain.methods.superspike import checkpoint  # lazy: imports torch
    from toolchain.methods.superspike.train import train as train_network  # lazy: imports torch

    overrides = dict(epochs=args.epochs, seed=args.seed, feedback=args.feedback, threads=args.threads)
    if args.qat:
        overrides["mode"] = "fixed"
    start = time.perf_counter()
    result = train_network(args.task, config_file=args.config, progress=not args.quiet, finetune=args.finetune,
                           **overrides)
    checkpoint.save(args.out, result.model, result.meta)
    acc, cfg = result.meta["accuracy"], result.meta["train_config"]
    epochs = f"{cfg['epochs']} epoch{'s' if cfg['epochs'] != 1 else ''}"
    if cfg["mode"] == "float" and cfg["qat_epochs"]:
        epochs += f" + {cfg['qat_epochs']} quantization-aware"
    print(f"{args.task} (surrogate: SuperSpike{', quantization-aware' if args.qat else ''}): train accuracy "
          f"{acc['train']:.2%}, test accuracy {acc['test']:.2%} (final network, whole splits), {epochs} in "
          f"{time.perf_counter() - start:.0f} s -> {args.out}")
    return 0


def compile(path: Path, args: argparse.Namespace) -> tuple:
    """Checkpoint, or a network file of any format (`toolchain.formats`) -> (validated fixed IR,
    quantization report; empty for a quantization-aware or already fixed-point network)."""
    from toolchain.methods.superspike.compile import compile_checkpoint, compile_ir  # lazy: imports torch

    if formats.is_network_file(path):
        network = formats.load(path)
        meta = network.meta if network.is_fixed else with_task(network.meta, args.task)
        ir = compile_ir(network, meta, args.calibration_samples, args.target)
    else:
        ir = compile_checkpoint(path, args.calibration_samples, args.target)
    reports = [LayerReport(**r) for r in ir.meta.get("quantization", {}).values()]
    return ir, format_report(reports) if reports else ""


def verify(args: argparse.Namespace) -> int:
    """The classification cross-check (`toolchain.verify.cmd_verify`)."""
    from toolchain.verify import cmd_verify  # lazy: imports torch

    return cmd_verify(args)
