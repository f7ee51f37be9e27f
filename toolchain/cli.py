"""The `spikeport` command: train | compile | simulate | verify | sweep | export | inspect | demo.

train, compile and verify come from the learning methods (`toolchain.methods`):
``--method`` choices, each method's own flags, and the dispatch (train by
``--method`` and ``--task``, compile/verify by the checkpoint's kind tag).

Every user-caused failure is a `SpikeportError`: printed as one line on
stderr, exit code 2, and no output file left behind (all writes are atomic).
Numeric flags are range-checked before any command runs (`toolchain.flags`),
and every output path is checked against the command's inputs first
(`toolchain.files.check_output`). Library warnings raised while a command runs
are held back: shown after a success, dropped on an error, so an error is
always the one line.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from models.errors import SpikeportError
from toolchain import flags, formats, methods, scaleout
from toolchain.describe import describe, format_description
from toolchain.engines import ENGINES, SIMULATE_BACKENDS
from toolchain.files import check_output, check_output_folder
from toolchain.simulate import cmd_simulate


def _cmd_train(args) -> int:
    check_output(args.out, args.config, getattr(args, "finetune", None))
    method = methods.for_training(args.method, args.task)
    _refuse_foreign_options(args, "train", method, f"--method {args.method} --task {args.task} training")
    return method.train(args)


def _cmd_compile(args) -> int:
    check_output(args.out, args.model)
    method = _method_of_file(args, "compile")
    ir, report = method.compile(args.model, args)
    formats.save(ir, args.out)
    print(ir.meta.get("quantization_mode", "fixed-point parameters as given"))
    if report:
        print(report)
    print(f"wrote {args.out}")
    return 0


def _cmd_verify(args) -> int:
    _check_lava_samples(args.lava_samples, args.samples)
    if not args.no_report:
        check_output_folder(args.report, args.model, getattr(args, "ir", None))
    method = _method_of_file(args, "verify")
    with scaleout.session(args.workers, args.cluster):
        return method.verify(args)


def _check_lava_samples(lava_samples, samples: int) -> None:
    """``--lava-samples`` runs a subset of the ``--samples`` inputs: refused (not clipped) above it."""
    if lava_samples is not None and samples is not None and lava_samples > samples:
        raise SpikeportError(f"verify --lava-samples: lava_samples={lava_samples} is outside [1, {samples}] "
                             f"(a subset of --samples {samples})")


def _method_of_file(args, verb: str):
    """The method whose checkpoint kind ``args.model`` carries (the default method for any other
    file), after refusing the flags of other methods."""
    method, recognised = methods.for_file(args.model)
    what = f"a {method.label} checkpoint" if recognised else "not one"
    _refuse_foreign_options(args, verb, method, what)
    return method


def _refuse_foreign_options(args, verb: str, method, what: str) -> None:
    """A flag another method added for ``verb`` and set away from its default is a one-line error:
    for compile/verify "FLAG applies to LABEL checkpoints only; PATH is WHAT"."""
    mine = args.method_options.get(method, [])
    for owner, actions in args.method_options.items():
        if owner is method:
            continue
        for action in actions:
            if action not in mine and getattr(args, action.dest) != action.default:
                flag = action.option_strings[0]
                owners = [m for m, acts in args.method_options.items() if action in acts]  # a shared flag: all
                if verb == "train":
                    where = "; ".join(f"--method {' | '.join(o.rules)} on --task {' | '.join(o.tasks)}" for o in owners)
                    raise SpikeportError(f"train: {flag} applies to {where} only, not to {what}")
                raise SpikeportError(f"{verb}: {flag} applies to {' and '.join(o.label for o in owners)} checkpoints "
                                     f"only; {args.model} is {what}")


def _cmd_export(args) -> int:
    """A SuperSpike checkpoint (lowered, float parameters, plus fixed ones if trained
    quantization-aware) or a network file of any format, written in ``--format``."""
    from toolchain.lower import lower  # lazy: imports torch (`spikeport -h` stays free of it)
    from toolchain.methods.superspike import checkpoint  # lazy: imports torch

    check_output(args.out, args.model)
    if formats.is_network_file(args.model):
        ir = formats.load(args.model)
    else:
        model, meta = checkpoint.load(args.model)
        ir = lower(model, name=meta.get("task", "network"))
        ir.meta.update({k: meta[k] for k in ("task", "encoding") if k in meta})
    formats.save(ir, args.out, args.format)
    print(f"wrote {args.out} ({args.format}, from {'fixed' if ir.is_fixed else 'float'} parameters)")
    return 0


def _cmd_inspect(args) -> int:
    """Show the network as it is, valid or not, and name every violation (`formats.problems`).

    Text: the description, then a "violations:" section; ``--json``: the description with a
    ``"violations"`` list (empty when valid). Exit 0 when valid; 2 when it has violations,
    with one summary line on stderr. A file that does not parse is the usual one-line error.
    """
    ir = formats.read(args.model)
    found = formats.problems(ir)
    if args.json:
        print(json.dumps({**describe(ir), "violations": found}))
    else:
        print(format_description(ir))
        if found:
            print("\n".join(["", f"violations ({len(found)}):", *(f"  {v}" for v in found)]))
    if not found:
        return 0
    print(f"spikeport: error: {args.model}: {len(found)} violation(s), listed above; the first: {found[0]}",
          file=sys.stderr)
    return 2


def _cmd_simulate(args) -> int:
    if args.emit_hw:
        check_output(args.emit_hw, args.model, args.input, flag="--emit-hw")
    else:
        check_output(args.out, args.model, args.input)
    with scaleout.session(args.workers, args.cluster):
        return cmd_simulate(args) or 0


def _cmd_sweep(args) -> int:
    """Each run is this command's `main` (train, then verify), in a worker: by its module path,
    so workers import it also when this module runs as ``python -m toolchain.cli``."""
    from toolchain import cli  # this module by name (as __main__, ``main`` would not unpickle)
    from toolchain.sweep import cmd_sweep  # lazy: the sweep machinery (and matplotlib) on use only

    check_output_folder(args.out, args.config, flag="--out")
    with scaleout.session(args.workers, args.cluster) as pool:
        return cmd_sweep(args.config, args.out, cli.main, pool)


def _cmd_results(args) -> int:
    """`spikeport results CONFIG`: the sweep runs of every entry (`toolchain.results`), then the table."""
    from toolchain import cli  # this module by name (see `_cmd_sweep`)
    from toolchain.results import cmd_results  # lazy: the sweep machinery (and matplotlib) on use only

    check_output_folder(args.out, args.config, flag="--out")
    with scaleout.session(args.workers, args.cluster) as pool:
        return cmd_results(args.config, args.out, cli.main, pool)


def _add_table_verb(sub, verb: str, func, what: str, help: str, description: str, config: str) -> None:
    """A verb that trains and verifies the runs of a JSON ``config`` into ``--out`` (sweep, results)."""
    p = sub.add_parser(verb, help=help, description=description)
    p.add_argument("config", help=config)
    p.add_argument("--out", default=verb, metavar="FOLDER", help=f"output folder (default: {verb})")
    _add_scaleout_options(p, what)
    p.set_defaults(func=func)


def _add_scaleout_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--workers N`` and ``--cluster ADDRESS`` (see `toolchain.scaleout`)."""
    parser.add_argument("--workers", type=flags.positive_int, metavar="N",
                        help=f"{what} on N local worker processes (default: 1, this process; no Ray needed)")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help=f"{what} as Ray tasks: local (a private Ray instance), auto (the cluster this machine is "
                             "in) or HOST:PORT of a head; with --workers N, N at once (default: none, no Ray; "
                             "with it, as many at once as the cluster has CPUs). Needs spikeport[ray]")


def _cmd_demo(args) -> int:
    from toolchain.demo import run_demo  # lazy: imports torch (`spikeport -h` stays free of it)

    check_output_folder(args.out, flag="--out")
    return run_demo(args.out)


class _Parser(argparse.ArgumentParser):
    """argparse with spikeport's error contract: one line on stderr, exit code 2 (usage: ``-h``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _add_method_options(verb: str, parser: argparse.ArgumentParser) -> dict:
    """Every method's own flags for ``verb``, one argument group per method that has some:
    {method: [argparse actions]} (so the flags of other methods can be refused)."""
    owned = {}
    for method in methods.registry():
        takes = (f"--method {' | '.join(method.rules)} on --task {' | '.join(method.tasks)} only"
                 if verb == "train" else f"{method.label} checkpoints only")
        recorder = _Recorder(parser.add_argument_group(f"{method.label} ({method.name}): {takes}"), parser)
        method.add_options(verb, recorder)
        owned[method] = recorder.actions
    return owned


class _Recorder:
    """An argument group (titled with the method and which runs or checkpoints take its flags)
    that remembers the actions added to it."""

    def __init__(self, group, parser):
        self.group, self.parser, self.actions = group, parser, []

    def add_argument(self, *flags, **kwargs) -> argparse.Action:
        shared = self.group._option_string_actions.get(flags[0])
        if shared is not None:  # a flag several methods take: one action, each method's help and title
            shared.help = f"{shared.help}; {kwargs.get('help', '')}"
            home = next(g for g in self.parser._action_groups if shared in g._group_actions)
            home.title = f"{home.title}; {self.group.title}"
            self.actions.append(shared)
            return shared
        action = self.group.add_argument(*flags, **kwargs)
        self.actions.append(action)
        return action


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="spikeport", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a network with one of the learning methods",
                       description="Train a network with one of the learning methods (--method) on a task; writes a "
                                   "checkpoint that compile and verify recognise by its kind.")
    t.add_argument("--task", default="digits", help=" | ".join(methods.tasks()) + " (default: digits)")
    t.add_argument("--method", choices=methods.rules(), default=methods.default().rules[0],
                   help="; ".join(f"{' | '.join(m.rules)} on {'|'.join(m.tasks)}: {m.description}"
                                  for m in methods.registry()) + " (default: %(default)s)")
    t.add_argument("--epochs", type=flags.positive_int, metavar="N",
                   help="length of training: epochs (passes over the training set) on digits | mnist | yinyang, "
                        "iterations (full-batch steps) on spike-transform (default: the method's for the task: "
                        f"{methods.epochs_help()})")
    t.add_argument("--seed", type=flags.non_negative_int,
                   help="seed of the initialisation and the data order (spike-transform: also of the teacher "
                        "and its patterns) (default: 0)")
    t.add_argument("--out", default="model.pt", help="checkpoint to write (.pt; default: model.pt)")
    t.add_argument("--config", metavar="JSON",
                   help="JSON file overriding the method's training defaults, key by key (default: none, the "
                        "defaults; an unknown key is an error)")
    t.add_argument("--threads", type=flags.positive_int, metavar="N",
                   help="torch threads (default: torch's, one per core)")
    t.add_argument("--quiet", action="store_true", help="no progress bars (default: off, bars shown)")
    t.set_defaults(func=_cmd_train, method_options=_add_method_options("train", t))

    c = sub.add_parser("compile", help="checkpoint or network file -> fixed-point IR (.onnx)",
                       description="Quantize a checkpoint (any method, recognised by its kind) or a network file "
                                   "into a fixed-point IR validated for the target.")
    c.add_argument("model", help=".pt checkpoint of any method (recognised by its kind tag), or a network file "
                                 "of any format (.onnx, .nir, .net)")
    c.add_argument("--out", default="model.onnx", help="IR file to write (default: model.onnx)")
    c.add_argument("--calibration-samples", type=flags.positive_int, default=256, metavar="N",
                   help="training samples that calibrate post-training quantization (default: 256)")
    c.add_argument("--target", default="loihi2", help="hardware target the IR is validated for (default: loihi2)")
    c.set_defaults(func=_cmd_compile, method_options=_add_method_options("compile", c))

    s = sub.add_parser("simulate", help="run an IR on the emulator, the float engine or Lava",
                       description="Run a network file on one engine and write every recorded variable.")
    s.add_argument("model", help="network file of any format (.onnx, .nir, .net)")
    s.add_argument("--backend", default="emulator", choices=list(SIMULATE_BACKENDS),
                   help="; ".join(f"{name}: {ENGINES[engine]}" for name, engine in SIMULATE_BACKENDS.items())
                        + " (default: emulator)")
    s.add_argument("--input", required=True, help="required: .npy spikes, (B, T, N) or (T, N): samples, steps, "
                                                  "input channels")
    s.add_argument("--out", required=True, help="required: .npz with every recorded <node>/<var> (LIF: s, v, u), "
                                                "each (B, T, n)")
    s.add_argument("--record", nargs="*", metavar="NODE", help="nodes to record (default: all neuron nodes)")
    s.add_argument("--emit-hw", metavar="PY",
                   help="with --backend lava: write a Loihi2HwCfg script instead of running (default: none, run)")
    _add_scaleout_options(s, "run the samples in ordered shards")
    s.set_defaults(func=_cmd_simulate)

    v = sub.add_parser("verify", help="cross-check float model, emulator and Lava; PASS/FAIL and a report",
                       description="Run the float reference, the fixed-point emulator and Lava on the same held-out "
                                   "inputs, print the measurements and the PASS/FAIL criteria, write an HTML report. "
                                   "Exit 0: every criterion passes; 1: one fails; 2: bad input.")
    v.add_argument("model", help=".pt checkpoint of any method, or a compiled network file (.onnx, .nir, .net)")
    v.add_argument("--samples", "--trials", type=flags.positive_int, metavar="N",
                   help=f"held-out samples to run: the first N of the test split (default: {flags.VERIFY_SAMPLES}; "
                        "spike-transform: every pattern of --split; gate: fresh test trials, default 1000, XOR equally many "
                        "of each of the 4 conditions; --trials is the same flag in the gate protocol's word)")
    v.add_argument("--lava-samples", "--lava-trials", type=flags.positive_int, metavar="N",
                   help="of those, how many (the first) also run on Lava (default: 20; spike-transform: all of "
                        "them; gate: 50, compared bit for bit with the emulator; --lava-trials is the same flag)")
    v.add_argument("--backends", default="float,emulator,lava",
                   help="comma-separated engines (default: float,emulator,lava): "
                        + "; ".join(f"{n}: {t}" for n, t in ENGINES.items()))
    v.add_argument("--report", default="report", metavar="FOLDER",
                   help="report folder to write: report.html, report.json, figures (default: report)")
    v.add_argument("--max-accuracy-drop", type=flags.fraction_difference, default=None, metavar="FRACTION",
                   help="fail if the deployed (fixed-point) accuracy falls more than this below the float "
                        "reference's (fraction in [-1, 1], a negative value demands a gain; default: 0.05, TTFS "
                        "and smooth 0.005; spike-transform: of the share of target spikes matched, 0.05)")
    v.add_argument("--no-report", action="store_true",
                   help="print the summary only, write no report folder (default: off, the report is written)")
    _add_scaleout_options(v, "run every engine's samples in ordered shards")
    v.set_defaults(func=_cmd_verify, method_options=_add_method_options("verify", v))

    _add_table_verb(sub, "sweep", _cmd_sweep, "run the (setting, seed) runs",
                    help="train and verify every seed x setting of a JSON config; one table",
                    description="Train and verify every (setting, seed) run of CONFIG, a JSON object: "
                                "task, method, seeds (list), settings (name -> training config keys), verify "
                                "(samples, lava_samples, backends). Writes OUT/runs/<run>/ and OUT/sweep.json, "
                                "sweep.csv, sweep.png; finished runs are not redone.",
                    config="sweep config (.json); see docs/scale-out.md")
    _add_table_verb(sub, "results", _cmd_results, "run the (task, method, seed) runs",
                    help="the results table: task x method x seeds, trained and verified; Markdown, CSV, JSON and "
                         "a plot beside the published figures",
                    description="Train and verify every (task, method, seed) entry of CONFIG (a JSON object: "
                                "entries, seeds, verify; see docs/results.md), then write OUT/results.md, "
                                "results.csv, results.json and results.png: mean, min and max over seeds of the "
                                "float, deployed and Lava figures and the Lava identity, beside the published "
                                "reference figures. Finished runs are not redone. Exit 0 when every run passes "
                                "its verify, 1 otherwise.",
                    config="results config (.json), e.g. examples/results/quick.json")

    e = sub.add_parser("export", help="write a network in another format (ONNX IR, NIR, ...)")
    e.add_argument("model", help="SuperSpike .pt checkpoint, or a network file of any format")
    e.add_argument("--format", choices=formats.names(), default="onnx",
                   help="; ".join(f"{f.name}: {f.description}" for f in formats.FORMATS.values())
                        + " (default: onnx)")
    e.add_argument("--out", required=True, help="required: the file to write")
    e.set_defaults(func=_cmd_export)

    i = sub.add_parser("inspect", help="show a network file of any format: graph, parameters, resources, "
                                       "and every violation (exit 2 if any)",
                       description="Show a network file of any format, valid or not: graph, parameters, "
                                   "resources, and every violation of its checks (ranges, finite values, "
                                   "structure, quantization metadata). Exit 0 when valid, 2 when it has "
                                   "violations (listed under 'violations', one summary line on stderr).")
    i.add_argument("model", help="network file of any format (.onnx, .nir, .net)")
    i.add_argument("--json", action="store_true",
                   help="print JSON (violations under \"violations\") (default: off, text)")
    i.set_defaults(func=_cmd_inspect)

    d = sub.add_parser("demo", help="train on digits, compile, verify against emulator and Lava")
    d.add_argument("--out", default="out/demo", metavar="FOLDER",
                   help="folder for the checkpoint, the IR and the report (default: out/demo)")
    d.set_defaults(func=_cmd_demo)
    for verb, parser in sub.choices.items():
        if verb in ("compile", "simulate", "verify", "export", "inspect"):
            group = parser.add_argument_group("network file options")
            parser.set_defaults(format_options=formats.add_arguments(group, writing=verb == "export"))
        parser.set_defaults(verb=verb, ranged_flags=flags.ranged_flags(parser))
    return p


def _format_options(args) -> dict:
    """The format options given as flags ({name: value}), refused (one line) if no network file the
    command reads or writes takes them (`toolchain.formats.check_given`)."""
    given = {name: getattr(args, f"format_{name}") for name in getattr(args, "format_options", [])
             if getattr(args, f"format_{name}") is not None}
    if given:
        out = getattr(args, "out", None)
        written = [(out, getattr(args, "format", None))] if args.verb in ("export", "compile") else []
        formats.check_given(given, read=[args.model], written=written)
    return given


def main(argv=None) -> int:
    """Run one command. Library warnings raised while it runs are held back: on success they are
    shown afterwards (they may matter), on a `SpikeportError` dropped, so the one error line is
    all stderr gets (torch, for one, warns about a foreign pickle before spikeport refuses it)."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as held:
        try:
            flags.check_flags(args.verb, args, args.ranged_flags)
            with formats.using(**_format_options(args)):
                status = int(args.func(args) or 0)
        except SpikeportError as exc:
            print(f"spikeport: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("spikeport: interrupted", file=sys.stderr)
            return 130
    _replay(held)
    return status


def _replay(held: list) -> None:
    """Issue the held-back warnings again, through the filters now in force."""
    for w in held:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


if __name__ == "__main__":
    sys.exit(main())
