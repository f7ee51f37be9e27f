"""`spikeport results CONFIG`: task x method x seeds, each trained and verified, one table beside the published figures.

CONFIG is a JSON object::

    {"seeds": [0, 1],
     "verify": {"samples": 360, "lava_samples": 50, "backends": "float,emulator,lava"},
     "entries": [{"task": "digits", "method": "surrogate"},
                 {"task": "digits", "method": "ttfs", "config": {"epochs": 5}},
                 {"task": "spike-transform", "method": "exact", "verify": {"samples": null}}]}

Each entry is a task and a ``--method`` value, optionally a training ``config``
(the keys ``train --config`` takes for that method), its own ``verify`` keys
(over the top-level ones; null: verify's default for the method) and a ``name``
(default ``TASK-METHOD``). Every (entry, seed) is one run of the sweep
machinery (`toolchain.sweep`: ``train`` then ``verify``, in the scale-out
pool, ``OUT/runs/<name>-seed<S>/``, resumable: a run whose result.json records
the same spec is not redone).

The table aggregates each entry over its seeds: the headline metric of its
verify (`toolchain.verify.verdict.headline`: test accuracy for classification,
the share of target spikes matched within +-1 step for spike-transform) on the
float reference, the deployed fixed-point emulator and Lava (mean, min, max),
the Lava = emulator identity (samples identical / run, summed over seeds), how
many seeds pass verify, and the published figure for that task and method
(`REFERENCES`), if any. Written atomically::

    OUT/results.md     the Markdown table, dated, with the command that made it
    OUT/results.csv    one row per entry
    OUT/results.json   the rows, every run's row, the date and the command
    OUT/results.png    float and deployed per entry (mean, min-max bars), published figures as stars
    OUT/sweep.*        every run's row (`toolchain.sweep.write_table`)
"""
from __future__ import annotations

import csv
import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import SpikeportError
from toolchain import methods
from toolchain.files import atomic_path
from toolchain.sweep import NAME, Run, check_keys, check_seeds, check_strings, check_verify_keys, read_config, sweep

KEYS = ("seeds", "verify", "entries")
ENTRY_KEYS = ("task", "method", "config", "verify", "name")


@dataclass(frozen=True)
class Reference:
    """A published figure: ``value`` (a fraction), what it is (``text``) and where it is from."""

    value: float
    text: str


# (task, --method) -> the published figures the entry stands beside
REFERENCES = {
    ("mnist", "ttfs"): [Reference(0.9714, "Mostafa 2018, TTFS, software: 97.14%")],
    ("yinyang", "ttfs"): [Reference(0.959, "Göltz et al. 2021, TTFS, software: 95.9%"),
                          Reference(0.950, "Göltz et al. 2021, TTFS, BrainScaleS-2: 95.0%")],
    ("mnist", "smooth"): [Reference(0.976, "Klos & Memmesheimer 2025, smooth exact gradients: 97.6%")],
}
COLUMNS = ("entry", "task", "method", "seeds", "metric", "float_mean", "float_min", "float_max", "deployed_mean",
           "deployed_min", "deployed_max", "lava_mean", "lava_identical_samples", "lava_samples", "passed",
           "train_seconds_mean", "published")


# ------------------------------------------------------------------ config
def read_results(path) -> list:
    """The runs of results config ``path``: entries in file order, then seeds. A bad key or value is
    one line naming the file, the entry and the key."""
    cfg = read_config(path, KEYS, "a results config")
    seeds = check_seeds(path, cfg.get("seeds"))
    common = cfg.get("verify", {})
    check_verify_keys(path, common)
    entries = cfg.get("entries")
    if not isinstance(entries, list) or not entries:
        raise SpikeportError(f"{path}: entries={entries!r} is outside the allowed values (a non-empty list of "
                             "objects with task and method)")
    runs, names = [], set()
    for i, entry in enumerate(entries):
        name, task, rule, config, check = _entry(path, i, entry, common)
        if name in names:
            raise SpikeportError(f"{path}: entries[{i}]: name {name!r} repeats an earlier entry's")
        names.add(name)
        runs += [Run(f"{name}-seed{seed}", name, seed, task, rule, config, check) for seed in seeds]
    return runs


def _entry(path, i: int, entry, common: dict) -> tuple:
    """(name, task, --method, training config, verify keys) of ``entries[i]``, checked."""
    where = f"{path}: entries[{i}]"
    if not isinstance(entry, dict):
        raise SpikeportError(f"{where}={entry!r} is outside the allowed values (an object with task and method)")
    check_keys(where, entry, ENTRY_KEYS)
    task, rule = entry.get("task"), entry.get("method")
    check_strings(where, task=task, method=rule)
    try:
        method = methods.for_training(rule, task)
    except SpikeportError as exc:
        raise SpikeportError(f"{where}: {exc}") from None
    if task not in method.tasks:
        raise SpikeportError(f"{where}: unknown task {task!r}; --method {rule} trains on {', '.join(method.tasks)}")
    name = entry.get("name", f"{task}-{rule}")
    if not isinstance(name, str) or not NAME.match(name):
        raise SpikeportError(f"{where}: name {name!r} is outside [A-Za-z0-9_.-]+ (a folder name)")
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise SpikeportError(f"{where}: config={config!r} is outside the allowed values (an object of training "
                             "config keys)")
    own = entry.get("verify", {})
    check_verify_keys(where, own)
    return name, task, rule, config, check_verify_keys(where, {**common, **own})


# ------------------------------------------------------------------ table
def aggregate(runs: list, rows: list) -> list:
    """One row per entry (`COLUMNS`) from the sweep rows of its seeds, in entry order."""
    by_entry = {}
    for run, row in zip(runs, rows):
        by_entry.setdefault(run.setting, (run, []))[1].append(row)
    return [_entry_row(run, group) for run, group in by_entry.values()]


def _entry_row(run: Run, group: list) -> dict:
    stats = {}
    for key, column in (("float", "float_accuracy"), ("deployed", "emulator_accuracy")):
        values = [r[column] for r in group if r[column] is not None]
        stats.update({f"{key}_mean": _mean(values), f"{key}_min": min(values, default=None),
                      f"{key}_max": max(values, default=None)})
    lava = [r["lava_accuracy"] for r in group if r["lava_accuracy"] is not None]
    ran = [r for r in group if r["lava_samples"]]
    return dict(entry=run.setting, task=run.task, method=run.method, seeds=len(group), metric=group[0]["metric"],
                **stats, lava_mean=_mean(lava),
                lava_identical_samples=sum(r["lava_identical_samples"] for r in ran) if ran else None,
                lava_samples=sum(r["lava_samples"] for r in ran) if ran else None,
                passed=sum(bool(r["passed"]) for r in group),
                train_seconds_mean=_mean([r["train_seconds"] for r in group]),
                published="; ".join(ref.text for ref in REFERENCES.get((run.task, run.method), [])))


def _mean(values: list):
    return float(np.mean(values)) if values else None


def markdown(rows: list, command: str, date: str) -> str:
    """The dated Markdown table of `aggregate` rows, with the command that made it and a legend."""
    lines = [f"Results of `{command}`, written {date}.", "",
             "| task | method | seeds | metric | float mean (min-max) | deployed mean (min-max) | Lava | "
             "Lava = emulator | verify passed | published |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lava = "-" if r["lava_samples"] is None else f"{r['lava_identical_samples']}/{r['lava_samples']}"
        lines.append(f"| {r['task']} | {r['method']} | {r['seeds']} | {r['metric']} | "
                     f"{_spread(r, 'float')} | {_spread(r, 'deployed')} | {_value(r, r['lava_mean'])} | {lava} | "
                     f"{r['passed']}/{r['seeds']} | {r['published'] or '-'} |")
    lines += ["", "float: the method's float reference (SuperSpike: the torch model in float64; TTFS and smooth: the "
              "exact continuous-time network; spike-transform: the emulator on the discretised float IR); deployed: "
              "the fixed-point emulator, bit-identical to Lava; Lava: the metric on the samples run on Lava; "
              "Lava = emulator: samples whose every recorded variable is identical on Lava and the emulator, summed "
              "over seeds; verify passed: seeds whose `spikeport verify` passed all its criteria."]
    return "\n".join(lines) + "\n"


def _spread(row: dict, key: str) -> str:
    if row[f"{key}_mean"] is None:
        return "-"
    return f"{_value(row, row[f'{key}_mean'])} ({_value(row, row[f'{key}_min'])}-{_value(row, row[f'{key}_max'])})"


# Metrics that are not a share of samples or spikes: shown as the plain ratio, not as a percentage
RATIO_METRICS = {"nmse": "NMSE (mean squared error / target variance)"}


def _value(row: dict, x) -> str:
    """``x`` in the unit of ``row``'s metric: a percentage, or a plain ratio (`RATIO_METRICS`)."""
    if x is None:
        return "-"
    return f"{x:.4f}" if row["metric"] in RATIO_METRICS else f"{100 * x:.1f}%"


def write_results(rows: list, table: list, out: Path, command: str, date: str) -> None:
    """results.md, results.csv, results.json and results.png (atomically)."""
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text(markdown(rows, command, date))
    with atomic_path(out / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(dict(format="spikeport-results", date=date, command=command, entries=rows,
                                       runs=table), indent=1))
    with atomic_path(out / "results.png") as tmp:
        figure(rows).savefig(tmp, dpi=100)


def figure(rows: list):
    """Float and deployed per entry (mean, min-max bars), the published figures as stars: one panel
    for the entries measured in percent, one per ratio metric (`RATIO_METRICS`), each in its own unit."""
    from matplotlib.figure import Figure

    panels = [[r for r in rows if r["metric"] not in RATIO_METRICS]]
    panels += [[r for r in rows if r["metric"] == m] for m in RATIO_METRICS]
    panels = [p for p in panels if p] or [[]]
    fig = Figure(figsize=(max(5.0, 1.1 * len(rows) + 2 * len(panels)), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False,
                        gridspec_kw=dict(width_ratios=[max(1, len(p)) for p in panels]))[0]
    for ax, panel in zip(axes, panels):
        _panel(ax, panel)
    fig.suptitle(f"mean over seeds, bars: min-max ({rows[0]['seeds'] if rows else 0} seeds)", fontsize=9)
    fig.tight_layout()
    return fig


def _panel(ax, rows: list) -> None:
    """One panel of `figure`: its rows share one metric unit."""
    ratio = bool(rows) and rows[0]["metric"] in RATIO_METRICS
    scale = 1.0 if ratio else 100.0
    xs = np.arange(len(rows))
    for shift, key, label in ((-0.12, "float", "float reference"), (0.12, "deployed", "deployed (emulator = Lava)")):
        mean, low, high = (np.array([np.nan if r[f"{key}_{s}"] is None else scale * r[f"{key}_{s}"] for r in rows])
                           for s in ("mean", "min", "max"))
        ax.errorbar(xs + shift, mean, yerr=[mean - low, high - mean], fmt="o", capsize=3, label=label)
    labelled = False
    for x, r in zip(xs, rows):
        for ref in REFERENCES.get((r["task"], r["method"]), []):
            ax.plot([x], [scale * ref.value], "*", color="tab:red", ms=10, label=None if labelled else "published")
            labelled = True
    ax.set_xticks(xs, [f"{r['task']}\n{r['method']}" for r in rows], fontsize=8)
    ax.set_ylabel(RATIO_METRICS[rows[0]["metric"]] + ", lower is better" if ratio else
                  "metric (%): test accuracy; spike-transform:\ntarget spikes matched within +-1 step", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def cmd_results(config, out, command, pool) -> int:
    """The CLI command: the runs of ``config`` through the sweep (``command``: the CLI's ``main``),
    then the table; prints the Markdown; exit 0 if every run passed its verify, else 1."""
    runs = read_results(config)
    out = Path(out)
    table = sweep(runs, out, command, pool)
    rows = aggregate(runs, table)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    write_results(rows, table, out, f"spikeport results {config} --out {out}", date)
    print((out / "results.md").read_text(), end="")
    passed = sum(r["passed"] for r in rows)
    print(f"results: {passed}/{len(table)} runs passed verify; wrote {out / 'results.md'}, results.csv, "
          "results.json, results.png")
    return 0 if passed == len(table) else 1
