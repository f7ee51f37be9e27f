"""Deployment of a trained TTFS network: discretise, quantize, run on the emulator and on Lava,
and compare with continuous time (`deploy_ttfs`, `format_deploy_report`, `write_ttfs_report`).

Times are in units of tau_syn; a deployed step is ``dt``; step index ``i`` stands for ``i * dt``.

    report/              `write_ttfs_report` (`toolchain.verify.report`), atomically
      report.json        `deploy_ttfs`'s numbers (strict JSON: NaN -> null)
      report.html        summary, per-engine accuracy and timing tables, quantization, figure
      timing_errors.png  first-spike-time error percentiles (steps) per engine and layer
      ttfs_float.onnx    the discretised float IR
      ttfs_fixed.onnx    the quantized IR the fixed-point engines ran
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.ttfs_layer import TTFSNetwork
from toolchain import formats, scaleout
from toolchain.ir import IR
from toolchain.methods.ttfs.analysis import analyse_engine, hidden_spikes_before_decision
from toolchain.methods.ttfs.lower import encode_input, layer_nodes, lower_ttfs
from toolchain.methods.ttfs.quantize import quantize_ttfs
from toolchain.methods.ttfs.readout import continuous_times, output_readout, run_deployed, vth_effective
from toolchain.methods.ttfs.train import load_checkpoint
from toolchain.quantize import format_report
from toolchain.tasks import datasets
from toolchain.verify import compare_bit_identity
from toolchain.verify.criteria import accuracy_change, identical
from toolchain.verify.report import Section, check_replaceable, escape, legend, plain, table, text_section
from toolchain.verify.verdict import criteria_lines, headline, write_verdict_report

DEFAULT_MAX_DROP = 0.005  # verify --max-accuracy-drop for TTFS checkpoints: continuous minus fixed accuracy

TITLE = "spikeport verify report: TTFS"


@dataclass
class Deployment:
    """What `deployment` computes: ``report`` (the numbers, see `deploy_ttfs`), the discretised
    float IR ``ir`` and the quantized IR ``irq``."""

    report: dict
    ir: IR
    irq: IR


def deploy_ttfs(model, dt: float = 0.0625, *, out_dir=None, **options) -> dict:
    """`deployment`'s report dict (``options`` as there); with ``out_dir`` also writes the report
    folder there (`write_ttfs_report`; refused before the run if ``out_dir`` is not a report folder)."""
    if out_dir is not None:
        check_replaceable(out_dir)
    dep = deployment(model, dt, **options)
    if out_dir is not None:
        crit = ttfs_criteria(dep.report, DEFAULT_MAX_DROP)
        write_ttfs_report(dep, out_dir, "\n".join([format_deploy_report(dep.report), "", *criteria_lines(crit)]), crit)
    return dep.report


def deployment(model, dt: float = 0.0625, *, refire: str = "inhibit", stats: str = "data",
               t_end: float | None = None, n_test: int | None = None, engines=("emulator",),
               lava_samples: int = 200, lava_chunk: int = 25, modes=("float", "fixed"), data=None,
               batch_size: int = 250, calibration_samples: int = 256, progress: bool = True,
               log=print) -> Deployment:
    """Discretise, quantize and run a trained TTFS network; compare with continuous time.

    Quantization (`quantize_ttfs`) calibrates on the first ``calibration_samples``
    *training* samples (``stats="data"``) or uses the worst-case bounds (``"bound"``).

    ``model``: a `TTFSNetwork` or a checkpoint path; ``dt``: the deployed step (units of
    tau_syn). Runs the float and the fixed IR on the emulator over ``n_test`` test samples
    (all by default); with ``"lava"`` in ``engines`` also runs the fixed IR on Lava for the
    first ``lava_samples`` and counts the samples whose s, v, u (every population, every
    step) equal the emulator's. Writes nothing.
    """
    meta = {}
    if not isinstance(model, TTFSNetwork):
        model, meta = load_checkpoint(model)
    model = model.double().eval()
    task = meta.get("task", "mnist")
    data = data if data is not None else datasets.load_task(task)
    x, y = data.x_test.astype(np.float64), data.y_test
    if n_test:
        x, y = x[:n_test], y[:n_test]
    say = log or (lambda *_: None)
    t0 = time.time()
    cont = continuous_times(model, x)
    cont_pred = np.argmin(cont[-1], 1)
    t_first_out = cont[-1].min(1)
    x_cal = data.x_train[:calibration_samples].astype(np.float64)
    ir = lower_ttfs(model, dt, refire=refire, inhibit="data" if stats == "data" else "bound", x_cal=x_cal,
                    t_end=t_end)
    m = ir.meta["ttfs"]
    # the continuous model fed the grid-rounded input times isolates the input rounding
    x_grid = 1.0 - np.floor(m["t_max_in"] * (1.0 - x) / dt + 0.5) * dt / m["t_max_in"]
    cont_grid = continuous_times(model, np.clip(x_grid, 0.0, 1.0))
    neurons = layer_nodes(ir)
    report = dict(task=task, dt=dt, clock=m, refire=refire, stats=stats, samples=int(len(y)),
                  continuous=dict(accuracy=float((cont_pred == y).mean()),
                                  accuracy_grid_inputs=float((np.argmin(cont_grid[-1], 1) == y).mean()),
                                  no_output_spike=int(np.isinf(t_first_out).sum()),
                                  output_after_t_end=int((t_first_out > m["t_end"]).sum()),
                                  decision_time_mean=float(t_first_out[np.isfinite(t_first_out)].mean()),
                                  decision_time_p99=float(np.percentile(t_first_out[np.isfinite(t_first_out)], 99)),
                                  hidden_spikes_before_decision_mean=float(
                                      hidden_spikes_before_decision(cont[0], cont[-1]).mean()),
                                  hidden_spikes_total_mean=float(np.isfinite(cont[0]).sum(1).mean())),
                  engines={})
    say(f"continuous: accuracy {report['continuous']['accuracy']:.4f} (grid inputs "
        f"{report['continuous']['accuracy_grid_inputs']:.4f}); dt={dt} tau_syn, {m['steps']} steps, "
        f"du={m['du']:.6f} (du_int {m['du_int']}), tau_eff={m['tau_eff']:.5f}")
    irq, qreports = quantize_ttfs(ir, x_cal, stats=stats)
    report["quantization"] = format_report(qreports)
    say(report["quantization"])
    results = {}
    for mode in modes:
        t = time.time()
        res = run_deployed(irq if mode == "fixed" else ir, x, mode=mode, batch_size=batch_size, progress=progress)
        results[mode] = res
        rep = analyse_engine(res, cont, y, dt, neurons)
        rep["wall_s"] = time.time() - t
        report["engines"][f"emulator/{mode}"] = rep
        say(f"emulator {mode}: accuracy {rep['accuracy']:.4f} (same prediction as continuous "
            f"{rep['same_prediction_as_continuous']:.4f}), no output spike {rep['no_output_spike']}, "
            f"hidden spikes before decision {rep['hidden_spikes_before_decision_mean']:.1f} [{rep['wall_s']:.0f} s]")
    if "lava" in engines:
        report["lava"] = lava_identity(irq, x[:lava_samples], chunk=lava_chunk, log=say)
        lava_pred = np.asarray(report["lava"]["predictions"])
        report["lava"]["accuracy"] = float((lava_pred == y[:len(lava_pred)]).mean())
    report["wall_s"] = time.time() - t0
    return Deployment(report, ir, irq)


def lava_identity(irq, x, *, chunk: int = 25, log=print) -> dict:
    """Run the fixed IR on Lava and on the emulator (every population's s, v, u) and count
    identical samples and arrays."""
    same_samples = total = arrays_same = arrays_total = mismatched_values = 0
    lava_pred, t0 = [], time.time()
    for i in range(0, len(x), chunk):
        xin = encode_input(x[i:i + chunk], irq.meta)
        emu = scaleout.run("emulator", irq, xin)
        lava = scaleout.run("lava", irq, xin)
        c = compare_bit_identity("emulator", emu, "lava", lava, sorted({k.rpartition("/")[0] for k in emu}))
        same_samples += c.identical_samples
        arrays_same += c.identical_arrays
        arrays_total += c.arrays
        mismatched_values += c.values - c.equal_values
        total += len(xin)
        out_node = [k for k in emu if k.endswith("/s")][-1].split("/")[0]
        vth = vth_effective(irq, out_node, "fixed")
        lava_pred.append(output_readout(lava[f"{out_node}/s"], lava[f"{out_node}/v"], lava[f"{out_node}/u"], vth)[0])
        if log:
            log(f"  lava: {total}/{len(x)} samples, identical so far {same_samples} [{time.time() - t0:.0f} s]")
    return dict(samples=total, identical_samples=same_samples, identical_arrays=arrays_same,
                arrays=arrays_total, mismatched_values=mismatched_values,
                predictions=np.concatenate(lava_pred).tolist(), wall_s=time.time() - t0)


def format_deploy_report(rep: dict) -> str:
    """A short human-readable summary of `deploy_ttfs`'s report."""
    c = rep["continuous"]
    lines = [f"TTFS deployment: dt = {rep['dt']} tau_syn ({rep['clock']['steps']} steps), refire={rep['refire']}, "
             f"stats={rep['stats']}, {rep['samples']} test samples",
             f"  continuous time: accuracy {c['accuracy']:.4f}, with grid-rounded inputs {c['accuracy_grid_inputs']:.4f}, "
             f"decision at t = {c['decision_time_mean']:.3f} tau (p99 {c['decision_time_p99']:.3f}), "
             f"hidden spikes before decision {c['hidden_spikes_before_decision_mean']:.1f} "
             f"(of {c['hidden_spikes_total_mean']:.1f} that ever spike)"]
    for name, e in rep["engines"].items():
        lines.append(f"  {name}: accuracy {e['accuracy']:.4f} ({e['accuracy'] - c['accuracy']:+.4f}), same prediction as "
                     f"continuous {e['same_prediction_as_continuous']:.4f}, no output spike {e['no_output_spike']}, "
                     f"hidden spikes before decision {e['hidden_spikes_before_decision_mean']:.1f}, "
                     f"max spikes/neuron {e['spikes_per_neuron_max']}")
        for layer, t in e["timing_steps"].items():
            if t.get("n"):
                extra = (f", spike only deployed/only continuous {t['only_deployed']}/{t['only_continuous']}"
                         if "only_deployed" in t else "")
                lines.append(f"    {layer:<32} error (steps) mean {t['mean']:+.3f} std {t['std']:.3f} "
                             f"p1/50/99 {t['p1']:+.2f}/{t['median']:+.2f}/{t['p99']:+.2f} "
                             f"|err|<=1: {t['within_1_step']:.3f}{extra}")
    if "lava" in rep:
        lv = rep["lava"]
        lines.append(f"  lava fixed vs emulator fixed: {lv['identical_samples']}/{lv['samples']} samples identical "
                     f"(s, v, u of every population at every step); {lv['identical_arrays']}/{lv['arrays']} arrays, "
                     f"{lv['mismatched_values']} differing values [{lv['wall_s']:.0f} s]")
    return "\n".join(lines)



# ------------------------------------------------------------------- verdict
def ttfs_criteria(rep: dict, max_drop: float) -> list:
    """PASS/FAIL of a deployment: Lava identical to the emulator (s, v, u) on every sample it ran, and
    the fixed-point accuracy at most ``max_drop`` below continuous time (`toolchain.verify.criteria`)."""
    found = []
    lava = rep.get("lava")
    if lava:
        found.append(identical("lava = emulator fixed", lava["identical_samples"], lava["samples"],
                               "s, v, u of every population at every step"))
    fixed = rep["engines"].get("emulator/fixed")
    if fixed:
        found.append(accuracy_change("continuous", "emulator fixed", rep["continuous"]["accuracy"], fixed["accuracy"],
                                     max_drop))
    return found


def headline_of(rep: dict) -> dict:
    """The results-table figures (`toolchain.verify.verdict.headline`): accuracy, continuous time as float."""
    fixed, lava = rep["engines"].get("emulator/fixed", {}), rep.get("lava") or {}
    return headline("accuracy", rep["continuous"]["accuracy"], fixed.get("accuracy"), lava.get("accuracy"),
                    lava.get("identical_samples"), lava.get("samples"))


# ------------------------------------------------------------------- report
def write_ttfs_report(dep: Deployment, folder, summary: str, criteria: list, source: str = "") -> Path:
    """The report folder of ``dep`` in the shared verify frame (atomic;
    `toolchain.verify.verdict.write_verdict_report`): report.json = ``dep.report`` as strict JSON plus the
    shared keys, report.html = verdict and ``criteria``, ``summary`` (the printed text), the engine and
    timing tables, the quantization and `timing_figure`, versions; plus both IRs. Returns the folder."""
    rep = dep.report
    figure = [("timing_errors.png", "first-spike-time error percentiles (steps), deployed vs continuous",
               timing_figure(rep["engines"]))] if _timed_layers(rep["engines"]) else []
    files = ("<p><code>ttfs_float.onnx</code>: the float IR discretised at dt; <code>ttfs_fixed.onnx</code>: "
             "the quantized IR the fixed-point engines ran (read with <code>toolchain.formats.load</code>).</p>")
    sections = [text_section("Summary", summary), Section("Engines", engine_table(rep) + legend(ENGINE_LEGEND)),
                Section("First-spike timing (steps): deployed step minus continuous time / dt",
                        timing_table(rep) + legend(TIMING_LEGEND), figure),
                text_section("Quantization", rep["quantization"]), Section("Files", files)]
    irs = {"ttfs_float.onnx": dep.ir, "ttfs_fixed.onnx": dep.irq}
    attachments = {name: (lambda path, ir=ir: formats.save(ir, path)) for name, ir in irs.items()}
    lava = rep.get("lava")
    what = (f"<code>{escape(source)}</code>, TTFS on task <b>{escape(rep['task'])}</b>, {rep['samples']} test "
            f"samples (Lava: {lava['samples'] if lava else 'not run'}); float reference: the exact continuous-time "
            f"network; deployed at dt = {rep['dt']} tau_syn ({rep['clock']['steps']} steps), post-training "
            "quantization.")
    return write_verdict_report(folder, plain(rep, nan_to_none=True), criteria, headline_of(rep), what, sections,
                                TITLE, seeds={}, attachments=attachments)


ENGINE_LEGEND = (
    "vs continuous: accuracy change against continuous time (signed); same prediction as continuous: share of "
    "samples with the continuous network's class; no output spike: samples where no output neuron fires; hidden "
    "spikes before decision: mean hidden spikes per sample before the first output spike; decision (steps): mean "
    "step of the first output spike; max spikes/neuron: most spikes one neuron emits in a sample (TTFS neurons "
    "should fire once); seconds: wall time (this machine, shared). The second table counts the samples whose "
    "s, v, u of every population at every step are identical on Lava and the emulator.")
TIMING_LEGEND = (
    "Error of each first spike in steps: deployed step minus continuous time / dt (positive: late). spikes: "
    "neurons firing in both; mean, p1..p99, std: signed error statistics; mean |err|, max |err|: of its "
    "magnitude; |err| <= 1: share within one step; only deployed / only continuous: neurons that fire in "
    "one of the two only.")


def engine_table(rep: dict) -> str:
    """Accuracy, agreement and sparsity per engine against continuous time (HTML)."""
    c = rep["continuous"]
    rows = [["continuous", rep["samples"], f"{c['accuracy']:.4f}", "", "", c["no_output_spike"],
             f"{c['hidden_spikes_before_decision_mean']:.1f}", f"{c['decision_time_mean'] / rep['dt']:.2f}", "", ""]]
    for name, e in rep["engines"].items():
        rows.append([escape(name), e["samples"], f"{e['accuracy']:.4f}", f"{e['accuracy'] - c['accuracy']:+.4f}",
                     f"{e['same_prediction_as_continuous']:.4f}", e["no_output_spike"],
                     f"{e['hidden_spikes_before_decision_mean']:.1f}", f"{e['decision_step_mean']:.2f}",
                     escape(", ".join(f"{n}: {k}" for n, k in e["spikes_per_neuron_max"].items())),
                     f"{e['wall_s']:.1f}"])
    html = table(["engine", "samples", "accuracy", "vs continuous", "same prediction as continuous",
                  "no output spike", "hidden spikes before decision", "decision (steps)", "max spikes/neuron",
                  "seconds"], rows)
    if "lava" in rep:
        lv = rep["lava"]
        html += table(["lava fixed vs emulator fixed", "identical samples", "identical arrays",
                       "differing values", "seconds"],
                      [["s, v, u of every population at every step", f"{lv['identical_samples']}/{lv['samples']}",
                        f"{lv['identical_arrays']}/{lv['arrays']}", lv["mismatched_values"], f"{lv['wall_s']:.1f}"]])
    return html


def timing_table(rep: dict) -> str:
    """First-spike-time error statistics (steps) per engine and layer (HTML)."""
    rows = [[escape(name), escape(layer), t["n"], *(f"{t[k]:+.3f}" for k in ("mean", "p1", "p5", "median", "p95",
                                                                            "p99")),
             f"{t['std']:.3f}", f"{t['mean_abs']:.3f}", f"{t['max_abs']:.2f}", f"{t['within_1_step']:.3f}",
             f"{t['only_deployed']}/{t['only_continuous']}" if "only_deployed" in t else ""]
            for name, e in rep["engines"].items() for layer, t in e["timing_steps"].items() if t.get("n")]
    return table(["engine", "layer", "spikes", "mean", "p1", "p5", "median", "p95", "p99", "std", "mean |err|",
                  "max |err|", "|err| <= 1", "only deployed / only continuous"], rows)


def _timed_layers(engines: dict) -> list:
    return list(dict.fromkeys(layer for e in engines.values() for layer, t in e["timing_steps"].items()
                              if t.get("n")))


def timing_figure(engines: dict):
    """First-spike-time error (steps, deployed step minus continuous time / dt) per layer, one bar per
    engine, from the report's percentiles: p1-p99 thin, p5-p95 thick, median |, mean o."""
    from matplotlib.figure import Figure

    layers, n = _timed_layers(engines), len(engines)
    fig = Figure(figsize=(8, 1.2 + 0.28 * len(layers) * (n + 1)))
    ax = fig.subplots()
    for k, (name, e) in enumerate(engines.items()):
        label = name
        for i, layer in enumerate(layers):
            t = e["timing_steps"].get(layer, {})
            if not t.get("n"):
                continue
            y = -(i * (n + 1) + k)
            ax.plot([t["p1"], t["p99"]], [y, y], color=f"C{k}", lw=1)
            ax.plot([t["p5"], t["p95"]], [y, y], color=f"C{k}", lw=6, solid_capstyle="butt", label=label)
            ax.plot([t["median"]], [y], "|", color="k", ms=12)
            ax.plot([t["mean"]], [y], "o", color="white", mec="k", ms=5)
            label = None
    ax.set_yticks([-(i * (n + 1) + (n - 1) / 2) for i in range(len(layers))], layers)
    ax.axvline(0, color="gray", lw=0.8)
    ax.set_xlabel("first-spike error (steps): deployed step - continuous time / dt", fontsize=9)
    ax.set_title("p1-p99 thin, p5-p95 thick, median |, mean o", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
