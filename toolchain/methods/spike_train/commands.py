"""The `spikeport` verbs for spike-transform students (``--task spike-transform --method exact|surrogate``).

A checkpoint of kind ``spikeport-spike-transform-checkpoint`` is recognised by
``compile`` and ``verify`` without a flag. The task (teacher, input patterns,
desired trains) is rebuilt from the seed and task config the checkpoint
stores; 1 deployed step = 1 ms, so ``--dt`` does not apply.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from models.errors import SpikeportError
from toolchain import flags, quantize
from toolchain.ir import passes
from toolchain.methods.config import read_json
from toolchain.threads import set_threads

# Building the CLI parser loads this module: imports that pull torch stay inside the functions.

BACKENDS = ("float", "emulator", "lava")
DEFAULT_MIN_MATCH = 0.9  # share of target spikes the deployed output must match within +-1 step
DEFAULT_MAX_DROP = 0.05  # largest fall of that share from the float to the fixed deployment


def add_options(verb: str, parser) -> None:
    """The quantization-aware fine-tuning and split flags of verify."""
    if verb == "verify":
        parser.add_argument("--finetune-qat", type=flags.non_negative_int, default=0, metavar="N",
                            help="N iterations (full-batch Adam steps) of quantization-aware fine-tuning after "
                                 "post-training quantization (reports both; default: 0, none)")
        parser.add_argument("--qat-lr", type=flags.positive_float, default=1e-3,
                            help="with --finetune-qat: Adam learning rate (per iteration; default: 0.001)")
        parser.add_argument("--split", choices=["train", "test"],
                            help="score the training patterns or the held-out ones (default: train)")
        parser.add_argument("--min-match", type=flags.fraction, default=DEFAULT_MIN_MATCH,
                            help="fail if the deployed output (emulator, fixed point) matches fewer than this share "
                                 "of the target spikes within +-1 step (1 step = 1 ms; fraction; default: "
                                 f"{DEFAULT_MIN_MATCH})")


def train(args: argparse.Namespace) -> int:
    """``spikeport train --task spike-transform --method exact|surrogate``.

    ``--epochs`` sets the iterations (each is one full-batch pass over the training
    patterns); ``--seed`` picks the teacher, inputs and student initialisation;
    ``--config`` is a JSON file ``{"task": {...}, "method": {...}}`` overriding
    `toolchain.tasks.spike_transform.TASK_DEFAULTS` and `config.METHOD_DEFAULTS`.
    Writes the checkpoint, prints one summary line.
    """
    from toolchain.methods.spike_train.checkpoint import save_checkpoint  # lazy: imports torch
    from toolchain.methods.spike_train.train import train_spike_transform  # lazy: imports torch

    extra = _read_config(args.config)
    _check_config(args.config, args.method, extra)
    if args.threads:
        set_threads(int(args.threads))
    method = args.method
    result = train_spike_transform(method, 0 if args.seed is None else args.seed, extra.get("task"),
                                   _with_epochs(extra.get("method") or {}, args.epochs), not args.quiet)
    save_checkpoint(args.out, result)
    f = result.final
    print(f"spike-transform ({method}, seed {f['seed']}): error {f['error']:.4g} at iteration "
          f"{f['best_iteration']}/{f['iterations']}, {'converged' if f['converged'] else 'not converged'} "
          f"(right spike count in {f['count_ok']:.0%} of trains{_worst(f, method)}), {f['seconds']:.1f} s "
          f"-> {args.out}")
    return 0


def _with_epochs(method_config: dict, epochs) -> dict:
    """The ``method`` part of the config file with ``--epochs`` as its iterations, when given
    (without the flag the file's own ``iterations``, if any, stands)."""
    return method_config if epochs is None else {**method_config, "iterations": epochs}


def _read_config(path) -> dict:
    """The ``--config`` file: an object whose only keys are ``task`` and ``method``, each an object
    (`toolchain.methods.config.resolve` then checks their keys and values); {} without a file."""
    extra = read_json(path) if path else {}
    if not isinstance(extra, dict) or set(extra) - {"task", "method"}:
        found = f"keys {sorted(extra)}" if isinstance(extra, dict) else f"a JSON {type(extra).__name__}"
        raise SpikeportError(f"{path}: {found} is outside the allowed values (an object with keys 'task' "
                             "and/or 'method')")
    for key, value in extra.items():
        if not isinstance(value, dict):
            raise SpikeportError(f"{path}: {key}={value!r} is outside the allowed values (an object of "
                                 f"spike-transform {key} keys)")
    return extra


def _check_config(path, method: str, extra: dict) -> None:
    """Resolve the file's ``task`` and ``method`` parts before any work, so a bad key or value is
    one line that names the file (`toolchain.methods.config.resolve` names the key and range)."""
    from toolchain.methods.spike_train.config import method_config
    from toolchain.tasks.spike_transform import task_config  # lazy: imports torch

    try:
        task_config(**extra.get("task", {}))
        method_config(method, **extra.get("method", {}))
    except SpikeportError as exc:
        raise SpikeportError(f"{path}: {exc}") from None


def _worst(final: dict, method: str) -> str:
    """``, max |dt| ... in those`` when some train has the right count (else nothing is paired)."""
    if not final["count_ok"]:
        return ""
    return f", max |dt| {final['max_abs']:.3g} {'ms' if method == 'exact' else 'steps'} in those"


def compile(path: Path, args: argparse.Namespace) -> tuple:
    """Discretise, post-training quantize (calibrated on the training patterns) and validate for
    ``--target``: (fixed IR, quantization report)."""
    from toolchain.methods.spike_train.checkpoint import load  # lazy: imports torch
    from toolchain.methods.spike_train.deploy import compile_transform  # lazy: imports torch

    model, payload, task = load(path)
    _, fixed, reports = compile_transform(model, task.raster(task.x_times).numpy())
    passes.validate(fixed, args.target, require_fixed=True)
    fixed.meta.update(task="spike-transform", method=payload["method"], seed=payload["task"]["seed"],
                      target=args.target, quantization_mode=f"post-training ({task.x_times.shape[0]} training "
                                                            "patterns as calibration)")
    return fixed, quantize.format_report(reports)


def verify(args: argparse.Namespace) -> int:
    """`spikeport verify model.pt` for a spike-transform checkpoint: prints the summary and the criteria
    (`report.verify_criteria`), writes the report folder ``--report`` (`report.write_spike_report`)
    unless ``--no-report``. ``--samples`` / ``--lava-samples``: the first that many patterns of
    ``--split`` (default: all; more than the split has is refused). Exit 1 when a criterion fails."""
    from toolchain.methods.spike_train.checkpoint import load  # lazy: imports torch
    from toolchain.methods.spike_train.report import (  # lazy: imports torch
        format_report, verify_criteria, verify_report, write_spike_report)
    from toolchain.verify import backend_names  # lazy: imports torch
    from toolchain.verify.report import check_replaceable  # lazy: imports torch
    from toolchain.verify.verdict import criteria_lines, exit_status, failed_lines

    backends = backend_names(args.backends, BACKENDS, "spike-transform")
    model, payload, task = load(args.model)
    split = args.split or "train"
    samples, lava_samples = _pattern_counts(args, len(task.x_times if split == "train" else task.x_test_times), split)
    if not args.no_report:
        check_replaceable(args.report)
    rep = verify_report(model, payload, task, lava="lava" in backends, finetune_qat=args.finetune_qat,
                        qat_lr=args.qat_lr, split=split, samples=samples, lava_samples=lava_samples)
    max_drop = DEFAULT_MAX_DROP if args.max_accuracy_drop is None else args.max_accuracy_drop
    criteria = verify_criteria(rep, args.min_match, max_drop)
    summary = "\n".join([format_report(rep), "", *criteria_lines(criteria)])
    print("\n".join([summary, *failed_lines(criteria)]))
    if not args.no_report:
        folder = write_spike_report(rep, args.report, summary, criteria, str(args.model))
        print(f"report: {Path(folder) / 'report.html'}")
    return exit_status(criteria)


def _pattern_counts(args, available: int, split: str) -> tuple:
    """(samples, lava_samples): ``--samples`` and ``--lava-samples`` as pattern counts of the split,
    None for "all"; a count above what the split has is a one-line error (never clipped)."""
    for flag, value in (("--samples", args.samples), ("--lava-samples", args.lava_samples)):
        if value is not None and value > available:
            raise SpikeportError(f"verify {flag}: {flag[2:].replace('-', '_')}={value} is outside [1, {available}] "
                                 f"(the {split} split of this checkpoint has {available} patterns)")
    return args.samples, args.lava_samples
