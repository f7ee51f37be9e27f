"""The spike-transform verify report: summary (JSON-ready), its text, and the report folder
(`toolchain.verify.report`) with the raster plot (target vs learned vs deployed output trains).
1 step = 1 ms.

    report/
      report.json        `verify_report`'s numbers (strict JSON: NaN -> null)
      report.html        the summary, the quantization table and the rasters (embedded)
      rasters.png        target vs learned vs deployed output trains
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from models.spike_train import raster_to_times
from toolchain.files import atomic_path
from toolchain.methods.spike_train.deploy import deploy, score_summary
from toolchain.verify.criteria import accuracy_change, at_least, identical
from toolchain.verify.report import Section, escape, plain, table, text_section
from toolchain.verify.report import legend as legend_html
from toolchain.verify.verdict import headline, write_verdict_report

TITLE = "spikeport verify report: spike-transform"


def verify_report(model, payload: dict, task, *, lava: bool = True, finetune_qat: int = 0,
                  qat_lr: float = 1e-3, split: str = "train", samples: int | None = None,
                  lava_samples: int | None = None) -> dict:
    """`deploy` the student on the ``split`` ("train" or "test") patterns and summarise it (JSON-ready).

    Per engine (``float``/``fixed`` emulator, ``lava``): output spike-time errors in steps
    against the target and against the learned output (`spike_time_errors` without the
    per-spike array; with ``finetune_qat``, ``fixed_ptq`` is the post-training network and
    ``fixed``/``lava`` the fine-tuned one); the Lava vs emulator identity count; the output trains
    (target, learned, deployed = emulator fixed point) for the raster plot.
    """
    dep = deploy(model, task, lava=lava, finetune_qat=finetune_qat, qat_lr=qat_lr, split=split, samples=samples,
                 lava_samples=lava_samples)
    deployed = raster_to_times(dep["runs"]["fixed"][f"{dep['output_node']}/s"])
    rep = dict(method=payload["method"], seed=payload["task"]["seed"], task=payload["task"],
               trained=payload.get("final", {}), split=split, patterns=int(len(dep["target"])), T=task.T,
               engines={name: {k: score_summary(v) for k, v in s.items()} for name, s in dep["scores"].items()},
               quantization=[dict(node=r.node, limited_by=r.limited_by, state_use=r.state_use,
                                  weights_clipped=sum(syn.clipped for syn in r.synapses),
                                  weights_rounded_to_zero=sum(syn.rounded_to_zero for syn in r.synapses))
                             for r in dep["reports"]],
               trains=dict(target=train_lists(dep["target"]), learned=train_lists(dep["learned"]),
                           deployed=train_lists(deployed)))
    if "qat" in dep:
        rep["qat"] = dep["qat"]
    if lava:
        rep["lava_vs_emulator"] = {k: v for k, v in dep["lava_vs_emulator"].items() if k != "keys"}
    return plain(rep)


SPLIT_NAMES = {"train": "training", "test": "held-out test"}


ENGINE_NAMES = {"float": "emulator float", "fixed_ptq": "emulator PTQ", "fixed": "emulator fixed",
                "lava": "lava fixed"}


def format_report(rep: dict) -> str:
    """Human-readable summary of `verify_report`."""
    lines = [f"spike-transform ({rep['method']}, seed {rep['seed']}): {rep['patterns']} {SPLIT_NAMES[rep['split']]} patterns, "
             f"{rep['T']} steps (1 step = 1 ms); output spike-time errors in steps against ceil(desired time)"]
    q = rep.get("qat")
    if q is not None:
        lines.append(f"  quantization-aware fine-tuning: {q['iterations']} iterations (lr {q['lr']:g}), van Rossum "
                     f"loss {q['ptq_error']:.4g} after PTQ -> {q['error']:.4g} kept (iteration {q['best_iteration']}, "
                     f"{'converged' if q['converged'] else 'not converged'}); emulator/lava fixed = fine-tuned")
    for name, s in rep["engines"].items():
        t = s["vs_target"]
        w = t["within_steps"]
        lines.append(f"  {ENGINE_NAMES.get(name, name):<15} vs target: mean |error| {_f(t['mean_abs'])} steps "
                     f"(max {t['max_abs']:.0f}, mean signed {t['mean_signed']:+.3f}), matched {t['matched']}/"
                     f"{t['target_spikes']}, within 0/±1 steps {w.get('0', float('nan')):.3f}/"
                     f"{w.get('1', float('nan')):.3f}, missing {t['missing']}, extra {t['extra']}; vs learned: "
                     f"mean |error| {_f(s['vs_learned']['mean_abs'])}, missing {s['vs_learned']['missing']}, "
                     f"extra {s['vs_learned']['extra']}")
    lv = rep.get("lava_vs_emulator")
    if lv is not None:
        lines.append(f"  lava fixed vs emulator fixed: {lv['identical_samples']}/{lv['samples']} patterns, "
                     f"{lv['identical']}/{lv['total']} recorded s/v/u entries identical "
                     f"({'identical' if lv['all_identical'] else 'DIFFERENT'})")
    else:
        lines.append("  lava: not run (--backends)")
    return "\n".join(lines)


MATCHED = "target spikes matched within +-1 step"


def verify_criteria(rep: dict, min_match, max_drop: float) -> list:
    """PASS/FAIL of a `verify_report`: the deployed output (emulator fixed point) matches at least
    ``min_match`` of the target spikes within +-1 step (None: not checked), that share falls at most
    ``max_drop`` from the float deployment (emulator float) to the fixed one, and Lava is identical to
    the emulator (every s, v, u) on every pattern it ran."""
    within = {name: s["vs_target"]["within_steps"]["1"] for name, s in rep["engines"].items()}
    n = rep["engines"]["fixed"]["vs_target"]["target_spikes"]
    found = [at_least(f"{MATCHED} (emulator fixed)", within["fixed"], min_match, f" of {n} target spikes"),
             accuracy_change("emulator float", "emulator fixed", within["float"], within["fixed"], max_drop,
                             measure=MATCHED)]
    lv = rep.get("lava_vs_emulator")
    if lv is not None:
        found.append(identical("lava = emulator fixed", lv["identical_samples"], lv["samples"],
                               "s, v, u of every node, step and neuron", lv["first_divergence"]))
    return [c for c in found if c is not None]


def headline_of(rep: dict) -> dict:
    """The results-table figures (`toolchain.verify.verdict.headline`): target spikes matched within +-1 step."""
    within = {name: s["vs_target"]["within_steps"]["1"] for name, s in rep["engines"].items()}
    lv = rep.get("lava_vs_emulator") or {}
    return headline(MATCHED, within.get("float"), within.get("fixed"), within.get("lava"),
                    lv.get("identical_samples"), lv.get("samples"))


def _f(x: float, fmt: str = ".3f") -> str:
    return format(x, fmt) if math.isfinite(x) else "n/a"


def write_spike_report(rep: dict, folder, summary: str, criteria: list, source: str = "") -> Path:
    """The report folder of `verify_report` ``rep`` in the shared verify frame (atomic;
    `toolchain.verify.verdict.write_verdict_report`): report.json = ``rep`` as strict JSON plus the
    shared keys, report.html = verdict and ``criteria``, ``summary`` (the printed text), the
    quantization table and the rasters, versions and seeds. Returns the folder."""
    title = (f"spike-transform, {rep['method']} (seed {rep['seed']})\n"
             "target (black), learned (blue), deployed: emulator fixed point"
             f"{', QAT-fine-tuned' if 'qat' in rep else ''} (red)")
    legend = ("<p>One row per (pattern, output neuron). Black: target (continuous desired times); blue: learned "
              "(exact: the continuous student; surrogate: its float discrete output); red: deployed (emulator, "
              "fixed point, a spike in step n drawn at n ms).</p>")
    rows = [[escape(q["node"]), escape(q["limited_by"]), f"{q['state_use']:.1%}", q["weights_clipped"],
             q["weights_rounded_to_zero"]] for q in rep["quantization"]]
    quant_legend = ("limited by: what chose the population's float-to-integer scale; state use: expected peak "
                    "|state| on the calibration patterns as a share of 2**23; weights clipped: weights limited to "
                    "the 8-bit range; weights rounded to zero: nonzero weights that became 0.")
    sections = [text_section("Summary", summary),
                Section("Quantization", table(["node", "limited by", "state use", "weights clipped",
                                               "weights rounded to zero"], rows) + legend_html(quant_legend)),
                Section("Output trains", legend, [("rasters.png", f"{SPLIT_NAMES[rep['split']]} patterns",
                                                   raster_figure([(title, rep["trains"])], rep["T"]))])]
    lv = rep.get("lava_vs_emulator")
    what = (f"<code>{escape(source)}</code>, spike-transform ({escape(rep['method'])}), {rep['patterns']} "
            f"{SPLIT_NAMES[rep['split']]} patterns (Lava: {lv['samples'] if lv else 'not run'}); float reference: "
            "the emulator on the discretised float IR; fixed: post-training quantization"
            f"{' and quantization-aware fine-tuning' if 'qat' in rep else ''}. 1 step = 1 ms.")
    return write_verdict_report(folder, plain(rep, nan_to_none=True), criteria, headline_of(rep), what, sections,
                                TITLE, seeds={"task and student": rep["seed"]})


def train_lists(times) -> list:
    """(P, n, K) inf-padded times -> nested lists of the finite times, sorted."""
    t = np.asarray(times, dtype=np.float64)
    return [[[float(x) for x in np.sort(train[np.isfinite(train)])] for train in pattern] for pattern in t]


def raster_panel(ax, trains: dict, T: int = 100) -> None:
    """Target (black), learned (blue) and deployed (red) output trains, one row per (pattern, neuron).

    ``trains``: ``{"target"|"learned"|"deployed": nested lists}`` as `train_lists` gives them
    (a deployed spike in step n drawn at n ms).
    """
    styles = [("target", "k", 0.25), ("learned", "tab:blue", 0.0), ("deployed", "tab:red", -0.25)]
    labels, y = [], 0
    for p, pattern in enumerate(trains["target"]):
        for n in range(len(pattern)):
            for name, color, dy in styles:
                times = trains[name][p][n]
                ax.scatter(times, [y + dy] * len(times), marker="|", s=120, color=color,
                           label=name if (p, n) == (0, 0) else None)
            labels.append(f"pattern {p}, out {n}")
            y -= 1
    ax.set_yticks(range(0, y, -1), labels)
    ax.set_xlim(0, T)
    ax.set_xlabel("time (ms) = step")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def raster_figure(panels: list, T: int = 100) -> Figure:
    """One `raster_panel` per ``(title, trains)``, side by side."""
    fig = Figure(figsize=(7 * len(panels), 5))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)
    for ax, (title, trains) in zip(axes[0], panels):
        raster_panel(ax, trains, T)
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_rasters(panels: list, path, T: int = 100) -> None:
    """`raster_figure` to a PNG at ``path`` (atomic)."""
    with atomic_path(path) as tmp:
        raster_figure(panels, T).savefig(tmp, dpi=110)
