"""The `spikeport` command: train | compile | simulate | verify | export | inspect | demo.

Every user-caused failure is a `SpikeportError`: printed as one line on
stderr, exit code 2, and no output file left behind (all writes are atomic).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from models.errors import SpikeportError
from toolchain.engines import ENGINES, SIMULATE_BACKENDS


def _cmd_train(args) -> int:
    if args.task == "spike-transform":
        from toolchain.spike_transform import cmd_train_spike_transform

        return cmd_train_spike_transform(args)
    if args.method == "ttfs":
        from toolchain.ttfs_commands import train_command

        return train_command(args)
    if args.method != "surrogate":
        raise SpikeportError(f"train: --method {args.method} applies to --task spike-transform only "
                             "(classification tasks: surrogate | ttfs)")
    from toolchain import checkpoint
    from toolchain.train import train

    overrides = dict(epochs=args.epochs, seed=args.seed, feedback=args.feedback, threads=args.threads)
    if args.qat:
        overrides["mode"] = "fixed"
    result = train(args.task, config_file=args.config, progress=not args.quiet, finetune=args.finetune,
                   **overrides)
    checkpoint.save(args.out, result.model, result.meta)
    acc = result.meta["accuracy"]
    print(f"{args.task}: train accuracy {acc['train']:.2%}, test accuracy {acc['test']:.2%} -> {args.out}")
    return 0


# compile/verify options that only one kind of checkpoint takes: argparse dest -> (flag, kind)
KIND_OPTIONS = {"dt": ("--dt", "TTFS"), "finetune_qat": ("--finetune-qat", "spike-transform"),
                "split": ("--split", "spike-transform")}


def _method_command(args, command: str, name: str):
    """``compile_command``/``verify_command`` of the module that owns the checkpoint's format tag
    (TTFS, spike transform), or None for a SuperSpike checkpoint or any other file. An option
    another kind of checkpoint takes (`KIND_OPTIONS`) is refused, naming the option and the kind."""
    kind, module = _checkpoint_kind(args.model)
    for dest, (flag, owner) in KIND_OPTIONS.items():
        if getattr(args, dest, None) not in (None, 0) and owner != kind:
            raise SpikeportError(f"{command}: {flag} applies to {owner} checkpoints only; {args.model} is "
                                 + (f"a {kind} checkpoint" if kind else "not one"))
    return getattr(importlib.import_module(module), name) if module else None


def _checkpoint_kind(path) -> tuple:
    """(kind, command module) of a TTFS or spike-transform checkpoint, by its format tag;
    (None, None) for any other file."""
    from pathlib import Path

    from toolchain import spike_transform, ttfs
    from toolchain.checkpoint import format_of

    if Path(path).suffix != ".pt" or not Path(path).is_file():
        return None, None
    owners = {ttfs.CHECKPOINT_FORMAT: ("TTFS", "toolchain.ttfs_commands"),
              spike_transform.CHECKPOINT_FORMAT: ("spike-transform", "toolchain.spike_transform_commands")}
    return owners.get(format_of(path), (None, None))


def _cmd_compile(args) -> int:
    command = _method_command(args, "compile", "compile_command")
    if command is not None:
        return command(args)
    from toolchain import formats
    from toolchain.compiler import compile_checkpoint
    from toolchain.quantize import format_report

    ir = compile_checkpoint(args.model, args.calibration_samples, args.target)
    formats.save(ir, args.out)
    print(ir.meta["quantization_mode"])
    if "quantization" in ir.meta:
        print(format_report(list(_reports(ir))))
    print(f"wrote {args.out}")
    return 0


def _reports(ir):
    from toolchain.quantize import LayerReport

    for r in ir.meta["quantization"].values():
        yield LayerReport(**r)


def _cmd_export(args) -> int:
    from toolchain import checkpoint, formats
    from toolchain.lower import lower

    model, meta = checkpoint.load(args.model)
    ir = lower(model, name=meta.get("task", "network"))
    ir.meta.update({k: meta[k] for k in ("task", "encoding") if k in meta})
    formats.save(ir, args.out, args.format)
    print(f"wrote {args.out} ({args.format}, {'fixed' if ir.is_fixed else 'float'} parameters)")
    return 0


def _cmd_inspect(args) -> int:
    from toolchain import formats
    from toolchain.describe import describe, format_description

    ir = formats.load(args.model)
    print(json.dumps(describe(ir)) if args.json else format_description(ir))
    return 0


def _cmd_simulate(args) -> int:
    from toolchain.simulate import cmd_simulate

    return cmd_simulate(args) or 0


def _cmd_verify(args) -> int:
    command = _method_command(args, "verify", "verify_command")
    if command is not None:
        return command(args)
    from toolchain.verify import cmd_verify

    return cmd_verify(args)


def _cmd_demo(args) -> int:
    from toolchain.demo import run_demo

    return run_demo(args.out)


class _Parser(argparse.ArgumentParser):
    """argparse with spikeport's error contract: one line on stderr, exit code 2 (usage: ``-h``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="spikeport", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a network (SuperSpike surrogate gradients)")
    t.add_argument("--task", default="digits", help="digits | mnist | yinyang | spike-transform")
    t.add_argument("--method", choices=["surrogate", "ttfs", "exact"], default="surrogate",
                   help="surrogate: SuperSpike (default); ttfs: exact time-to-first-spike (Mostafa 2018, "
                        "digits|mnist); exact: exact spike-time gradients (Banerjee 2016, spike-transform)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--out", default="model.pt")
    t.add_argument("--config", help="JSON file overriding the task's training defaults")
    t.add_argument("--feedback", choices=["symmetric", "random", "uniform"])
    t.add_argument("--qat", action="store_true", help="train in Lava fixed-point arithmetic")
    t.add_argument("--finetune", help="start from this checkpoint (with --qat: quantize, then fine-tune)")
    t.add_argument("--threads", type=int)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_cmd_train)

    c = sub.add_parser("compile", help="checkpoint -> fixed-point IR (.onnx)")
    c.add_argument("model")
    c.add_argument("--out", default="model.onnx")
    c.add_argument("--calibration-samples", type=int, default=256)
    c.add_argument("--target", default="loihi2")
    c.add_argument("--dt", type=float, help="TTFS checkpoints: deployed step in units of tau_syn (default 1/16)")
    c.set_defaults(func=_cmd_compile)

    s = sub.add_parser("simulate", help="run an IR on the emulator, the float engine or Lava")
    s.add_argument("model")
    s.add_argument("--backend", default="emulator", choices=list(SIMULATE_BACKENDS),
                   help="; ".join(f"{name}: {ENGINES[engine]}" for name, engine in SIMULATE_BACKENDS.items()))
    s.add_argument("--input", required=True, help=".npy spikes, (B, T, N) or (T, N)")
    s.add_argument("--out", required=True, help=".npz with every recorded <node>/<var> (LIF: s, v, u)")
    s.add_argument("--record", nargs="*", help="nodes to record (default: all neuron nodes)")
    s.add_argument("--emit-hw", help="with --backend lava: write a Loihi2HwCfg script instead of running")
    s.set_defaults(func=_cmd_simulate)

    v = sub.add_parser("verify", help="cross-check float model, emulator and Lava; write a report")
    v.add_argument("model", help=".pt checkpoint or compiled .onnx")
    v.add_argument("--task")
    v.add_argument("--samples", type=int, default=100)
    v.add_argument("--lava-samples", type=int)
    v.add_argument("--backends", default="float,emulator,lava",
                   help="comma-separated engines: " + "; ".join(f"{n}: {t}" for n, t in ENGINES.items()))
    v.add_argument("--report", default="report")
    v.add_argument("--max-timing-error", type=float, default=None,
                   help="fail if the output layer's mean |first-spike error| (steps, float vs fixed) exceeds this")
    v.add_argument("--min-match-1", type=float, default=None,
                   help="fail if fewer float output spikes are matched within +-1 step (fraction; default 0.9)")
    v.add_argument("--max-accuracy-drop", type=float, default=None,
                   help="fail if float minus fixed test accuracy exceeds this (fraction; default 0.05)")
    v.add_argument("--ir", help="a compiled .onnx to verify against the .pt checkpoint (default: compile in memory)")
    v.add_argument("--no-report", action="store_true", help="print the summary only, write no report folder")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--dt", type=float, help="TTFS checkpoints: deployed step in units of tau_syn (default 1/16)")
    v.add_argument("--finetune-qat", type=int, default=0, metavar="N",
                   help="spike-transform checkpoints: N iterations of quantization-aware fine-tuning after "
                        "post-training quantization (reports both)")
    v.add_argument("--qat-lr", type=float, default=1e-3, help="with --finetune-qat: Adam learning rate")
    v.add_argument("--split", choices=["train", "test"],
                   help="spike-transform checkpoints: score the training patterns (default) or held-out ones")
    v.set_defaults(func=_cmd_verify)

    e = sub.add_parser("export", help="write the float network as ONNX IR or NIR")
    e.add_argument("model")
    e.add_argument("--format", choices=["onnx", "nir"], default="onnx")
    e.add_argument("--out", required=True)
    e.set_defaults(func=_cmd_export)

    i = sub.add_parser("inspect", help="show an IR file: graph, parameters, resources")
    i.add_argument("model")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_inspect)

    d = sub.add_parser("demo", help="train on digits, compile, verify against emulator and Lava")
    d.add_argument("--out", default="out/demo")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpikeportError as exc:
        print(f"spikeport: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikeport: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
