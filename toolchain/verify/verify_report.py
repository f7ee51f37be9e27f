"""The classification verify's report: the sections of a `VerifyResult` for `toolchain.verify.report`.

    report/
      report.json        every number of the `VerifyResult`, versions, seeds, quantization
      report.html        self-contained (PNGs embedded as base64); opens offline
      raster_<k>.png     float vs fixed vs Lava spike rasters of sample k, one row per layer
      timing_hist.png    first-spike-time error histogram (float vs fixed) per node
      quantization.png   the per-layer quantization table

Rasters plot step t = 1..T on the x axis (Lava's numbering) and neuron index
on the y axis. A spike that the other side of the comparison does not have
at the same step (fixed vs float; float vs the fixed engine) is drawn in red.
A learning method extends the report by passing its own ``extra_sections``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from toolchain.verify import timing
from toolchain.verify.report import Section, escape, legend, table, verdict, write_report
from toolchain.verify.verdict import head_sections, headline, tail_section
from toolchain.verify.verdict import report_data as verdict_data

TITLE = "spikeport verify report"
MAX_RASTERS = 4
COLORS = dict(same="black", differs="tab:red")


def write_verify_report(result, folder, extra_sections=()) -> Path:
    """Write the report of a `toolchain.verify.VerifyResult` into ``folder`` (atomically);
    ``extra_sections`` (`Section`) come after the verify's own, before versions and seeds."""
    data = report_data(result)
    sections = verify_sections(result, data)
    return write_report(folder, data, sections[:-1] + list(extra_sections) + sections[-1:], TITLE)


def report_data(result) -> dict:
    """What report.json holds: the result's numbers plus the shared keys (`toolchain.verify.verdict`)."""
    return verdict_data(result.to_dict(), result.criteria, _headline(result))


def _headline(result) -> dict:
    """Accuracy of the float reference, the deployed emulator and Lava, and the Lava = emulator count."""
    acc = {name: e["accuracy"] for name, e in result.engines.items()}
    lava = next((c for c in result.bit_identity if "lava" in c.engines), None)
    return headline("accuracy", acc.get("float", acc.get("float-emulator")), acc.get("emulator"), acc.get("lava"),
                    lava and lava.identical_samples, lava and lava.samples)


def verify_sections(result, data: dict) -> list:
    """The page: verdict, criteria, engines, bit-identity, timing, quantization, figures,
    versions and seeds (always last)."""
    what = (f"<code>{escape(result.source)}</code>, task <b>{escape(result.task)}</b>, {result.samples} "
            f"held-out test samples (Lava: {result.lava_samples or 'not run'}); float reference: "
            f"{escape(result.float_engine)}; {escape(result.compile_mode)}. Steps are numbered 1..T.")
    sections = head_sections(what, result.criteria) + [Section("Engines", _engine_table(result))]
    if result.bit_identity:
        sections.append(Section(f"Bit-identical engines ({result.variables_text()} of every node, step, neuron)",
                                _exact_table(result)))
    sections += [Section(f"Spike timing: {pair}", _timing_html(per_node)) for pair, per_node in result.timing.items()]
    if result.quantization:
        header, rows = quantization_rows(result.quantization)
        sections.append(Section("Quantization", table(header, [[escape(str(c)) for c in r] for r in rows])
                                + legend(QUANTIZATION_LEGEND)))
    sections.append(Section("Figures", figures=figures(result)))
    return sections + [tail_section(data, result.seeds)]


def figures(result) -> list:
    """(file name, caption, Figure): the timing histogram, the rasters, the quantization table."""
    out = []
    if result.timing_pair:
        out.append(("timing_hist.png", f"first-spike-time error, {result.timing_pair}", timing_figure(result)))
    out += [(f"raster_{k}.png", _sample_caption(result, k), raster_figure(result, k)) for k in chosen_samples(result)]
    if result.quantization:
        out.append(("quantization.png", "quantization table", quantization_figure(result.quantization)))
    return out


# ------------------------------------------------------------------ samples
def chosen_samples(result) -> list:
    """Samples worth a raster, at most `MAX_RASTERS`: the first divergence's sample, sample 0,
    the first sample where float and fixed predict differently, and the one whose spikes
    differ most (van Rossum, summed over nodes). Lava-run samples are preferred."""
    candidates = [c.first_divergence.sample for c in result.bit_identity if c.first_divergence]
    candidates.append(0)
    ref, test = _timing_engines(result)
    if ref and test:
        pool = result.lava_samples or result.samples
        pf, pt = result.predictions(ref)[:pool], result.predictions(test)[:pool]
        disagree = np.flatnonzero(pf != pt)
        candidates += [int(disagree[0])] if disagree.size else []
        distance = sum(timing.van_rossum(result.outputs[ref][f"{n}/s"][:pool],
                                         result.outputs[test][f"{n}/s"][:pool]).sum(axis=1) for n in result.nodes)
        candidates.append(int(np.argmax(distance)))
    return list(dict.fromkeys(candidates))[:MAX_RASTERS]


def _sample_caption(result, k: int) -> str:
    preds = ", ".join(f"{e} {int(result.predictions(e)[k])}" for e in result.outputs
                      if k < result.engines[e]["samples"])
    return f"sample {k}: label {int(result.labels[k])}; predicted: {preds}"


def _timing_engines(result) -> tuple:
    if not result.timing_pair:
        return None, None
    return tuple(result.timing_pair.split(" vs "))


# ------------------------------------------------------------------ figures
def raster_figure(result, sample: int) -> Figure:
    """Rows: neuron nodes; columns: float, the fixed engine timing compares, Lava (if run).

    Red marks a spike the compared engine lacks at that step (float column: vs fixed; others: vs float).
    """
    ref, fixed = _timing_engines(result)
    engines = list(dict.fromkeys(e for e in (ref, fixed, "lava") if e in result.outputs)) or list(result.outputs)[:1]
    fig, axes = _grid(len(result.nodes), len(engines), panel=(3.8, 2.1), top=0.45)
    for row, node in enumerate(result.nodes):
        for col, engine in enumerate(engines):
            _raster(axes[row, col], result.outputs, engine, fixed if engine == ref else ref, node, sample)
    fig.suptitle(f"sample {sample} (label {int(result.labels[sample])}); red: spike not in the compared engine",
                 fontsize=9)
    return fig


def _grid(rows: int, cols: int, panel: tuple, top: float) -> tuple:
    """A figure of rows x cols panels, each ``panel`` (w, h) inches including its labels,
    with ``top`` inches for the title. Fixed margins: no layout engine (cheap to draw)."""
    w, h = panel[0] * cols, panel[1] * rows + top
    fig = Figure(figsize=(w, h))
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw=dict(
        left=0.6 / w, right=1 - 0.15 / w, bottom=0.5 / h, top=1 - top / h, wspace=0.3, hspace=0.55))
    return fig, axes


def _raster(ax, outputs: dict, engine: str, other, node: str, sample: int) -> None:
    s = outputs[engine][f"{node}/s"]
    ax.set_title(f"{engine}: {node}", fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel("neuron", fontsize=8)
    ax.tick_params(labelsize=7)
    T, n = s.shape[1], s.shape[2]
    ax.set_xlim(0.5, T + 0.5)
    ax.set_ylim(-0.5, n - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if sample >= s.shape[0]:
        ax.text(0.5, 0.5, f"not run on {engine}\n(sample {sample})", ha="center", va="center",
                transform=ax.transAxes, fontsize=8, color="gray")
        return
    spikes = s[sample] != 0
    ref = outputs[other][f"{node}/s"] if other in outputs else None
    same = spikes & (ref[sample] != 0) if ref is not None and sample < ref.shape[0] else spikes
    for mask, color in ((same, COLORS["same"]), (spikes & ~same, COLORS["differs"])):
        t, i = np.nonzero(mask)
        ax.scatter(t + 1, i, s=8 if n > 40 else 16, marker="|", color=color,
                   linewidths=1.0 if color == COLORS["same"] else 2.0)


def timing_figure(result) -> Figure:
    """Histogram of first-spike-time errors (steps, fixed minus float), one panel per node."""
    per_node = result.timing[result.timing_pair]
    fig, axes = _grid(1, len(per_node), panel=(4.2, 3.0), top=0.8)
    axes = axes[0]
    for ax, (node, m) in zip(axes, per_node.items()):
        hist, first = m["first_spike"]["histogram"], m["first_spike"]
        errors = np.array(sorted(hist), dtype=int)
        bars = ax.bar(errors, [hist[e] for e in errors], width=0.8, color="tab:blue")
        ax.bar_label(bars, fontsize=7)
        ax.set_xlabel("first-spike error (steps, fixed - float)", fontsize=8)
        ax.set_ylabel("neuron trains", fontsize=8)
        lim = max(3, int(np.abs(errors).max(initial=0)) + 1)
        ax.set_xlim(-lim, lim)
        ax.tick_params(labelsize=7)
        mt = m["matched"]
        ax.set_title(f"{node}: matched {mt[0]['ref']:.0%} / {mt[1]['ref']:.0%} / {mt[2]['ref']:.0%} (0/+-1/+-2)\n"
                     f"only float {first['only_ref']}, only fixed {first['only_test']}", fontsize=8)
    fig.suptitle(result.timing_pair, fontsize=9)
    return fig


QUANTIZATION_LEGEND = (
    "One row per population, then one (↳) per synapse into it. lam: float-to-integer scale of the population "
    "(integer units per float unit); du, dv: current and voltage decays (12-bit integers, 4096 = 1); vth: "
    "threshold (integer); state use: expected peak |state| on the calibration samples as a share of 2**23; "
    "weight_exp, sign mode: Lava Dense weight exponent and sign mode; range use: largest |integer weight| as a "
    "share of the largest representable; clipped: biases (population rows) or weights (synapse rows) limited "
    "to the range; zeroed: nonzero weights rounded to 0 / all nonzero weights; max rel err: largest relative "
    "rounding error of a weight; limited by: what chose the scale.")


def quantization_rows(quantization: dict) -> tuple[list, list]:
    """(header, rows) of the quantization table: one row per population and per synapse."""
    header = ["node", "lam", "du", "dv", "vth", "state use", "weight_exp", "sign mode", "range use",
              "clipped", "zeroed", "max rel err", "limited by"]
    rows = []
    for node, r in quantization.items():
        rows.append([node, f"{r['lam']:.4g}", r["du"], r["dv"], r["vth"], f"{r['state_use']:.1%}",
                     "", "", "", r["bias_clipped"], "", "", r["limited_by"]])
        for s in r["synapses"]:
            rows.append([f"↳ {s['node']}", "", "", "", "", "", s["weight_exp"], s["sign_mode"],
                         f"{s['range_use']:.1%}", s["clipped"], f"{s['rounded_to_zero']}/{s['nonzero']}",
                         f"{s['max_rel_error']:.2%}", ""])
    return header, rows


def quantization_figure(quantization: dict) -> Figure:
    header, rows = quantization_rows(quantization)
    fig = Figure(figsize=(10, 0.28 * (len(rows) + 1) + 0.2))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.axis("off")
    cells = ax.table(cellText=[[str(c) for c in r] for r in rows], colLabels=header, loc="center",
                     cellLoc="left")
    cells.auto_set_font_size(False)
    cells.set_fontsize(8)
    cells.auto_set_column_width(list(range(len(header))))
    cells.scale(1, 1.4)
    return fig


# --------------------------------------------------------------------- html
def _engine_table(result) -> str:
    rows = []
    for name, e in result.engines.items():
        agree = result.agreement.get(f"float vs {name}")
        rows.append([escape(name), e["samples"], f"{e['accuracy']:.1%}", "-" if agree is None else f"{agree:.1%}",
                     f"{e['seconds']:.2f}"])
    return table(["engine", "samples", "accuracy", "same prediction as float", "seconds"], rows) + legend(
        "accuracy: share of the samples whose predicted class (most output spikes) is the label; same prediction "
        "as float: share of the common samples on which the engine predicts the float reference's class; "
        "seconds: wall time of the engine's run (this machine, shared).")


def _exact_table(result) -> str:
    rows = []
    for c in result.bit_identity:
        by_node = ", ".join(f"{n}: {k}" for n, k in c.identical_by_node.items())
        rows.append([verdict(c.identical), escape(c.label), f"{c.identical_samples}/{c.samples}", escape(by_node),
                     escape(c.first_divergence.describe() if c.first_divergence else "none")])
    return table(["", "engines", "identical samples", "identical by node", "first divergence"], rows) + legend(
        "identical samples: samples on which every recorded variable of every node is equal at every step and "
        "neuron; identical by node: that count per node; first divergence: the first (sample, step, node, "
        "variable, neuron) where the two engines differ, with both values.")


def _timing_html(per_node: dict) -> str:
    rows = []
    for node, m in per_node.items():
        f, mt, vr = m["first_spike"], m["matched"], m["van_rossum"]
        rows.append([escape(node), m["ref_spikes"], m["test_spikes"], m["abs_count_diff"],
                     f"{m['same_count_fraction']:.1%}", *(f"{mt[k]['ref']:.1%}" for k in (0, 1, 2)),
                     f"{f['mean_abs']:.2f} / {f['max_abs']}", f"{f['exact_fraction']:.1%}",
                     f"{f['only_ref']} / {f['only_test']}", f"{vr['mean']:.3f}"])
    return table(["node", "ref spikes", "test spikes", "sum |count diff|", "same count", "matched 0",
                  "matched +-1", "matched +-2", "first-spike |err| mean / max (steps)", "first spike exact",
                  "first spike only ref / only test", f"van Rossum mean (tau {_tau(per_node)} steps)"], rows) + legend(
        "One row per neuron node; a train is one neuron in one sample. ref/test spikes: spikes of the reference "
        "(float) and the test (fixed) engine; sum |count diff|: |spike-count difference| summed over trains "
        "(|dcount| in the printed table); same count: share of trains with equal counts; matched 0/+-1/+-2: "
        "share of the reference's spikes paired one-to-one with a test spike at the same step, within 1, within "
        "2 steps; first-spike |err|: |first-spike-step difference| over trains where both fire; first spike "
        "exact: share of those with no difference; only ref / only test: trains where only one engine fires at "
        "all (\"only one\" in the printed table, their sum); van Rossum: mean distance per train with an "
        "exponential kernel of time constant tau (vR in the printed table; 0 for identical trains).")


def _tau(per_node: dict) -> str:
    return f"{next(iter(per_node.values()))['van_rossum']['tau']:g}" if per_node else "-"
