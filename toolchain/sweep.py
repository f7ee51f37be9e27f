"""`spikeport sweep CONFIG`: train and verify every (setting, seed) run, one table of results.

CONFIG is a JSON object (every key optional but ``seeds``)::

    {"task": "digits", "method": "surrogate", "seeds": [0, 1, 2, 3],
     "settings": {"h16": {"hidden": [16], "epochs": 1}, "h32": {"hidden": [32], "epochs": 1}},
     "verify": {"samples": 100, "lava_samples": 20, "backends": "float,emulator,lava"}}

(``samples`` or ``lava_samples`` null: verify's own default for the method.)

A run is ``spikeport train --task T --method M --seed S --config <setting>
--threads 1`` then ``spikeport verify`` of its checkpoint, run in the worker
that takes the run (one torch thread per run: the parallelism is across
runs; a worker imports torch once for all its runs). The command is given
by the caller (the CLI passes its own ``main``), its output goes to
``train.log``/``verify.log`` in the run's folder. Runs are calls of the
active scale-out pool (`toolchain.scaleout`): local workers or Ray tasks.

Output folder::

    OUT/runs/<setting>-seed<S>/   config.json, model.pt, report/ (the verify report), *.log, result.json
    OUT/sweep.json, sweep.csv, sweep.png   the table of every run, and its plot

``result.json`` is written atomically when a run is finished, so a sweep
started again skips the runs whose result.json records the same run (task,
method, seed, setting keys, verify keys) and redoes the others.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from models.errors import SpikeportError
from toolchain import methods
from toolchain.files import atomic_path
from toolchain.flags import COUNT, NON_NEGATIVE_INT
from toolchain.methods.config import read_json
from toolchain.scaleout.calls import Call, execute, one_line, unwrap

KEYS = ("task", "method", "seeds", "settings", "verify")
VERIFY_DEFAULTS = {"samples": 100, "lava_samples": 20, "backends": "float,emulator,lava"}
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
COLUMNS = ("run", "setting", "seed", "metric", "float_accuracy", "emulator_accuracy", "lava_accuracy",
           "lava_identical_samples", "lava_samples", "passed", "train_seconds", "verify_seconds")


@dataclass(frozen=True)
class Run:
    """One (setting, seed): what `run_one` trains and verifies."""

    name: str
    setting: str
    seed: int
    task: str
    method: str
    config: dict
    verify: dict

    def spec(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ config
def read_sweep(path) -> list:
    """The runs of sweep config ``path``, settings in file order then seeds; any bad key or value
    is one line naming the file and the key."""
    cfg = read_config(path, KEYS, "a sweep config")
    task, rule = cfg.get("task", "digits"), cfg.get("method", methods.default().rules[0])
    check_strings(path, task=task, method=rule)
    method = methods.for_training(rule, task)
    if task not in method.tasks:
        raise SpikeportError(f"{path}: unknown task {task!r}; --method {rule} trains on {', '.join(method.tasks)}")
    seeds = check_seeds(path, cfg.get("seeds"))
    settings = _settings(path, cfg.get("settings", {"default": {}}))
    check = check_verify_keys(path, cfg.get("verify", {}))
    return [Run(f"{name}-seed{seed}", name, seed, task, rule, config, check)
            for name, config in settings.items() for seed in seeds]


def read_config(path, keys: tuple, what: str) -> dict:
    """The JSON object in ``path`` (``what``: "a sweep config"); not an object, or a key outside
    ``keys``, is one line naming the file."""
    cfg = read_json(path)
    if not isinstance(cfg, dict):
        raise SpikeportError(f"{path}: a JSON {type(cfg).__name__} is not {what} (a JSON object)")
    check_keys(path, cfg, keys)
    return cfg


def check_keys(where, given: dict, keys: tuple) -> None:
    """A key of ``given`` outside ``keys`` is one line: ``WHERE: unknown key 'K'; known keys: ...``."""
    unknown = [k for k in given if k not in keys]
    if unknown:
        raise SpikeportError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(keys)}")


def check_strings(where, **values) -> None:
    """Each of ``values`` must be a string (a task, a method name)."""
    for key, value in values.items():
        if not isinstance(value, str):
            raise SpikeportError(f"{where}: {key}={value!r} is outside the allowed values (a string)")


def check_seeds(path, seeds) -> list:
    if not isinstance(seeds, list) or not seeds:
        raise SpikeportError(f"{path}: seeds={seeds!r} is outside the allowed values (a non-empty list of seeds)")
    for seed in seeds:
        why = NON_NEGATIVE_INT.problem(seed)
        if why:
            raise SpikeportError(f"{path}: seeds: {why}")
    if len(set(seeds)) != len(seeds):
        raise SpikeportError(f"{path}: seeds={seeds!r} repeats a seed")
    return seeds


def _settings(path, settings) -> dict:
    if not isinstance(settings, dict) or not settings:
        raise SpikeportError(f"{path}: settings is outside the allowed values (an object: name -> training keys)")
    for name, config in settings.items():
        if not NAME.match(name):
            raise SpikeportError(f"{path}: settings: name {name!r} is outside [A-Za-z0-9_.-]+ (a folder name)")
        if not isinstance(config, dict):
            raise SpikeportError(f"{path}: settings.{name}={config!r} is outside the allowed values (an object "
                                 "of training config keys)")
    return settings


def check_verify_keys(path, given) -> dict:
    if not isinstance(given, dict):
        raise SpikeportError(f"{path}: verify={given!r} is outside the allowed values (an object)")
    check_keys(f"{path}: verify", given, tuple(VERIFY_DEFAULTS))
    out = {**VERIFY_DEFAULTS, **given}
    for key in ("samples", "lava_samples"):
        why = None if out[key] is None else COUNT.problem(out[key])  # None: verify's own default
        if why:
            raise SpikeportError(f"{path}: verify: {key}={why}")
    if not isinstance(out["backends"], str):
        raise SpikeportError(f"{path}: verify: backends={out['backends']!r} is outside the allowed values "
                             "(comma-separated engine names)")
    return out


# ------------------------------------------------------------------ one run
def run_one(run: Run, folder: str, command) -> dict:
    """Train and verify ``run`` in ``folder`` (its own, created here) with ``command(argv) -> exit
    code`` (the ``spikeport`` CLI's ``main``): the result row (see `COLUMNS`) plus ``spec``. Runs
    where it lands (a worker); a command's error is a one-line `SpikeportError`. A verify that
    FAILs its criteria is a result (``passed`` false), not an error."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    config = out / "config.json"
    with atomic_path(config) as tmp:
        tmp.write_text(json.dumps(run.config))
    start = time.perf_counter()
    _spikeport(command, out / "train.log", ["train", "--task", run.task, "--method", run.method, "--seed", str(run.seed), "--config",
                str(config), "--out", str(out / "model.pt"), "--quiet", "--threads", "1"], "train", (0,))
    trained = time.perf_counter()
    v = run.verify
    counts = [arg for key in ("samples", "lava_samples") if v[key] is not None
              for arg in (f"--{key.replace('_', '-')}", str(v[key]))]
    code = _spikeport(command, out / "verify.log", ["verify", str(out / "model.pt"), *counts, "--backends",
                                                    v["backends"], "--report", str(out / "report")], "verify", (0, 1))
    report = read_json(out / "report" / "report.json")
    return dict(run=run.name, setting=run.setting, seed=run.seed, **metrics(report), passed=code == 0,
                train_seconds=trained - start, verify_seconds=time.perf_counter() - trained, spec=run.spec())


def _spikeport(command, log: Path, argv: list, verb: str, ok: tuple) -> int:
    """``command(argv)``, its printed output written to ``log``; its exit code if in ``ok``, else a
    one-line error with the last line it printed on stderr."""
    err = io.StringIO()
    with open(log, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(err):
        code = command(argv)
    if code not in ok:
        lines = err.getvalue().strip().splitlines()
        last = one_line(lines[-1]).removeprefix("spikeport: error: ") if lines else "no message"
        raise SpikeportError(f"{verb} exited with code {code}: {last}")
    return code


def metrics(report: dict) -> dict:
    """The headline figures of a verify report.json (`toolchain.verify.verdict.headline`, which every
    method's verify writes): what they measure (``metric``: accuracy, or for spike-transform the share
    of target spikes matched within +-1 step), float reference, deployed emulator and Lava values, and
    the Lava = emulator sample count."""
    h = report["headline"]
    return dict(metric=h["metric"], float_accuracy=h["float"], emulator_accuracy=h["deployed"],
                lava_accuracy=h["lava"], lava_identical_samples=h["lava_identical_samples"],
                lava_samples=h["lava_samples"])


# ------------------------------------------------------------------ the sweep
def sweep(runs: list, out, command, pool=None, log=print) -> list:
    """Every run's row, in run order: finished ones read back, the others run (`run_one` with
    ``command``) on ``pool`` (None: in this process), each result.json written as it arrives;
    then the table files."""
    out = Path(out)
    rows = {r.name: _finished(out, r) for r in runs}
    todo = [r for r in runs if rows[r.name] is None]
    log(f"sweep: {len(runs)} runs, {len(runs) - len(todo)} already finished, {len(todo)} to run"
        + (f" on {pool.size} {pool.kind} workers" if pool is not None and todo else ""))
    calls = [Call(f"run {r.name}", run_one, (r, str(out / "runs" / r.name), command)) for r in todo]

    def done(index: int, row: dict) -> None:
        _write_json(out / "runs" / todo[index].name / "result.json", row)
        rows[todo[index].name] = row
        log(f"  {row['run']}: float {_pct(row['float_accuracy'])}, lava {_pct(row['lava_accuracy'])}, lava = "
            f"emulator on {row['lava_identical_samples']}/{row['lava_samples']} samples")

    if pool is None:
        for i, call in enumerate(calls):
            done(i, unwrap(call, execute(call)))
    else:
        pool.map(calls, on_result=done)
    table = [rows[r.name] for r in runs]
    write_table(table, out)
    return table


def _finished(out: Path, run: Run):
    """The row of a finished run with this very spec, else None."""
    path = out / "runs" / run.name / "result.json"
    if not path.is_file():
        return None
    try:
        row = json.loads(path.read_text())
    except ValueError:
        return None
    return row if row.get("spec") == json.loads(json.dumps(run.spec())) else None


def write_table(rows: list, out: Path) -> None:
    """sweep.json (every row), sweep.csv (`COLUMNS`) and sweep.png (accuracy per run), atomically."""
    _write_json(out / "sweep.json", dict(format="spikeport-sweep", runs=rows))
    with atomic_path(out / "sweep.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    with atomic_path(out / "sweep.png") as tmp:
        _plot(rows).savefig(tmp, dpi=100)


def _plot(rows: list):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(rows) + 2), 3.5))
    xs = range(len(rows))
    for key, marker in (("float_accuracy", "o"), ("emulator_accuracy", "s"), ("lava_accuracy", "x")):
        ys = [r[key] if r[key] is not None else float("nan") for r in rows]
        ax.plot(xs, ys, marker, label=key.replace("_accuracy", ""))
    ax.set_xticks(list(xs), [r["run"] for r in rows], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("held-out accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _write_json(path: Path, value) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=1))


def _pct(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def cmd_sweep(config, out, command, pool) -> int:
    """The CLI command: read ``config``, run the sweep into ``out`` with ``command`` (the CLI's
    ``main``); exit 0 if every run passed its verify, else 1."""
    runs = read_sweep(config)
    table = sweep(runs, out, command, pool)
    passed = sum(bool(r["passed"]) for r in table)
    print(f"sweep: {passed}/{len(table)} runs passed verify; wrote {Path(out) / 'sweep.csv'}, sweep.json, sweep.png")
    return 0 if passed == len(table) else 1
