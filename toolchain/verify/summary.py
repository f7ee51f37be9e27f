"""`spikeport verify` for a classification checkpoint: the printed summary and the command.

The summary table numbers steps 1..T; spike-timing columns are in steps.
Exit status of `cmd_verify`: 0 when every criterion holds, 1 when one fails,
2 on bad input (`SpikeportError`, printed as one line by the CLI).
"""
from __future__ import annotations

from pathlib import Path

from toolchain.verify.criteria import Tolerances
from toolchain.verify.report import check_replaceable
from toolchain.flags import VERIFY_SAMPLES
from toolchain.verify.run import VerifyResult, verify
from toolchain.verify.verdict import criteria_lines, failed_lines

# What each column of the printed timing table means (the report's table carries the same legend).
TIMING_LEGEND = "\n".join([
    "  per node; a train is one neuron in one sample. spikes ref/test: spikes of the reference (float) and the",
    "  test (fixed) engine; |dcount|: |spike-count difference| summed over trains; match 0/+-1/+-2: share of the",
    "  reference's spikes the test engine has at the same step, within 1, within 2 steps (one-to-one); first",
    "  |err| mean/max: |first-spike-step difference| over the trains where both fire; only one: trains where only",
    "  one of the two engines fires at all; vR: mean van Rossum distance per train (0: identical trains)"])


def format_summary(result: VerifyResult) -> str:
    """The short table `cmd_verify` prints."""
    lava = f"Lava: {result.lava_samples}" if result.lava_samples else "Lava: not run"
    lines = [f"verify {result.source}: task {result.task}, {result.samples} test samples ({lava}); "
             f"{result.compile_mode}", "",
             f"{'engine':<16}{'samples':>8}{'accuracy':>10}{'agrees w/ float':>17}{'seconds':>9}"]
    for name, e in result.engines.items():
        agree = result.agreement.get(f"float vs {name}")
        lines.append(f"{name:<16}{e['samples']:>8}{e['accuracy']:>10.1%}"
                     f"{'-' if agree is None else f'{agree:.1%}':>17}{e['seconds']:>9.2f}")
    if result.bit_identity:
        lines += ["", f"bit-identical ({result.variables_text()} of every node, step and neuron):"]
        lines += [f"  {c.label:<26}{c.identical_samples:>4}/{c.samples} samples identical" for c in result.bit_identity]
    if result.timing_pair:
        lines += ["", _timing_table(result.timing[result.timing_pair], result.timing_pair)]
    for pair, per_node in result.timing.items():
        if pair != result.timing_pair:
            m = per_node[result.output_node]["matched"]
            lines.append(f"  {pair}: {result.output_node} spikes matched {m[0]['ref']:.1%} exactly, "
                         f"{m[1]['ref']:.1%} within +-1 step")
    return "\n".join(lines + [""] + criteria_lines(result.criteria))


def _timing_table(per_node: dict, pair: str) -> str:
    lines = [f"spike timing, {pair} (steps):",
             f"  {'node':<12}{'spikes ref/test':>17}{'|dcount|':>9}{'match 0':>9}{'+-1':>7}{'+-2':>7}"
             f"{'first |err| mean/max':>22}{'only one':>9}{'vR':>7}"]
    for node, m in per_node.items():
        f, mt = m["first_spike"], m["matched"]
        lines.append(f"  {node:<12}{m['ref_spikes']:>8}/{m['test_spikes']:<8}{m['abs_count_diff']:>9}"
                     f"{mt[0]['ref']:>9.1%}{mt[1]['ref']:>7.1%}{mt[2]['ref']:>7.1%}"
                     f"{f['mean_abs']:>15.2f}/{f['max_abs']:<6}{f['only_ref'] + f['only_test']:>9}"
                     f"{m['van_rossum']['mean']:>7.3f}")
    return "\n".join(lines + [TIMING_LEGEND])


def cmd_verify(args) -> int:
    """`spikeport verify`: run, print the summary (and any failure), write the report, return 0/1.

    A ``--report`` folder that is not a previous report is refused before anything runs."""
    folder = getattr(args, "report", None) if not getattr(args, "no_report", False) else None
    if folder:
        check_replaceable(Path(folder))
    result = verify(args.model, task=args.task, samples=args.samples or VERIFY_SAMPLES, lava_samples=args.lava_samples,
                    backends=args.backends, seed=args.seed or 0, tolerances=Tolerances.from_args(args),
                    ir=getattr(args, "ir", None), lava_batching=getattr(args, "lava_batching", "tile"))
    print(format_summary(result))
    for line in failed_lines(result.criteria):
        print(line)
    if folder:
        from toolchain.verify.verify_report import write_verify_report  # lazy: imports matplotlib (~1 s); only a written report needs it

        print(f"report: {write_verify_report(result, folder) / 'report.html'}")
    return result.exit_status
