"""`spikeport verify` for smooth checkpoints: the numbers, the PASS/FAIL verdict and the report.

Compared on the first ``samples`` test samples: the continuous float64 theta network
(accuracy with pseudospikes and from ordinary spikes only) against the deployed QIF
network at step h = 2**-k on the float emulator and the fixed-point emulator (accuracy
with the fallback readout, per-layer first-spike error in steps, spike-count agreement),
Lava fixed_pt against the emulator (every state variable and spike) on the first
``lava_samples``, the torch fixed mode (QAT's forward) against the emulator on as many (at
least `TORCH_SAMPLES`), and a sweep over step exponents (fixed-point emulator).
"""
from __future__ import annotations

import math
import time
from pathlib import Path


from toolchain import formats
from toolchain.methods.smooth import deploy
from toolchain.methods.smooth.train import history, history_plot
from toolchain.verify.criteria import accuracy_change, identical
from toolchain.verify.report import Section, escape, legend, plain, table, text_section
from toolchain.verify.verdict import conclude, headline, write_verdict_report

TITLE = "spikeport verify: smooth exact gradients (theta/QIF)"
SWEEP_SAMPLES = 1000
TORCH_SAMPLES = 20  # torch fixed mode vs emulator: on the Lava samples, at least this many


def measure(model, k: int, samples, lava_samples: int, sweep=(), progress: bool = True) -> dict:
    """Every figure of the module docstring as a JSON-ready dict (plus the IR under ``"ir"``)."""
    net, ir, lines = deploy.compile_smooth(model, k)
    meta = ir.meta["smooth"]
    x, y = deploy.load_split(ir.meta["run_config"]["task"], samples)
    cont = deploy.continuous(net, x, ir.meta["run_config"])
    rep = dict(model=str(model), task=ir.meta["run_config"]["task"], samples=len(y), k=k, dt=meta["dt"],
               steps=meta["steps"], quantization=lines,
               continuous=dict(accuracy=deploy.accuracy(cont.pred, y),
                               accuracy_ordinary=deploy.accuracy(cont.pred_ordinary, y)), engines={})
    for engine in ("float-emulator", "emulator"):
        t0 = time.perf_counter()
        dep = deploy.run_deployed(engine, ir, cont.t_in, progress=progress)
        rep["engines"][engine] = dict(accuracy=deploy.accuracy(dep.pred, y), fallback=int(dep.fallback.sum()),
                                      accuracy_without_fallback=float(((dep.pred == y) & ~dep.fallback).mean()),
                                      same_prediction=float((dep.pred == cont.pred_ordinary).mean()),
                                      timing=deploy.timing(cont, dep, meta["dt"]), wall_s=time.perf_counter() - t0)
    if lava_samples:
        t0 = time.perf_counter()
        bi = deploy.bit_identity(ir, cont.t_in[:lava_samples])
        rep["lava"] = dict(samples=bi.samples, identical_samples=bi.identical_samples, arrays=bi.arrays,
                           identical_arrays=bi.identical_arrays, values=bi.values, equal_values=bi.equal_values,
                           first_divergence=bi.first_divergence.describe() if bi.first_divergence else None,
                           wall_s=time.perf_counter() - t0)
    n_torch = min(max(lava_samples, TORCH_SAMPLES), len(y))
    t0 = time.perf_counter()
    ti = deploy.torch_identity(ir, cont.t_in[:n_torch])
    rep["torch_fixed"] = dict(samples=ti.samples, identical_samples=ti.identical_samples, arrays=ti.arrays,
                              identical_arrays=ti.identical_arrays,
                              first_divergence=ti.first_divergence.describe() if ti.first_divergence else None,
                              wall_s=time.perf_counter() - t0)
    rep["sweep"] = [_sweep_point(model, kk, cont, y, progress) for kk in sweep]
    rep["history"] = history(model)
    rep["ir"] = ir
    return rep


def _sweep_point(model, k: int, cont, y, progress: bool) -> dict:
    net, ir, _ = deploy.compile_smooth(model, k)
    n = min(SWEEP_SAMPLES, len(y))
    dep = deploy.run_deployed("emulator", ir, cont.t_in[:n], progress=progress)
    sub = deploy.Continuous([f[:n] for f in cont.first], [c[:n] for c in cont.counts], cont.pred[:n],
                            cont.pred_ordinary[:n], cont.t_in[:n], cont.T)
    rows = deploy.timing(sub, dep, ir.meta["smooth"]["dt"])
    return dict(k=k, dt=ir.meta["smooth"]["dt"], steps=ir.meta["smooth"]["steps"], samples=n,
                accuracy=deploy.accuracy(dep.pred, y[:n]), fallback=int(dep.fallback.sum()),
                median_abs=[r["median_abs"] for r in rows], p95_abs=[r["p95_abs"] for r in rows])


def criteria(rep: dict, max_drop: float) -> list:
    """PASS/FAIL: Lava and the torch fixed mode identical to the emulator on every sample they ran, and
    the deployed (fixed-point emulator) accuracy at most ``max_drop`` below the continuous ordinary-spike
    accuracy."""
    found = []
    lava = rep.get("lava")
    if lava:
        found.append(identical("lava = emulator", lava["identical_samples"], lava["samples"],
                               "u, x, s of every layer at every step", lava["first_divergence"]))
    tf = rep["torch_fixed"]
    found.append(identical("torch fixed mode (QAT's) = emulator", tf["identical_samples"], tf["samples"],
                           "u, x, s of every layer at every step", tf["first_divergence"]))
    found.append(accuracy_change("continuous (ordinary spikes)", "emulator", rep["continuous"]["accuracy_ordinary"],
                                 rep["engines"]["emulator"]["accuracy"], max_drop))
    return found


def headline_of(rep: dict) -> dict:
    """The results-table figures (`toolchain.verify.verdict.headline`): accuracy, the continuous network
    (with pseudospikes, as trained) as float."""
    lava = rep.get("lava") or {}
    return headline("accuracy", rep["continuous"]["accuracy"], rep["engines"]["emulator"]["accuracy"], None,
                    lava.get("identical_samples"), lava.get("samples"))


def summary(rep: dict) -> str:
    c = rep["continuous"]
    lines = [f"smooth ({rep['task']}): {rep['samples']} test samples, deployed step h = 2**-{rep['k']} "
             f"(dt = {rep['dt']:.4g} time units, {rep['steps']} steps)",
             f"  continuous (float64, exact): accuracy {c['accuracy']:.2%} with pseudospikes, "
             f"{c['accuracy_ordinary']:.2%} ordinary spikes only"]
    for name, e in rep["engines"].items():
        lines.append(f"  {name}: accuracy {e['accuracy']:.2%} ({e['fallback']} by the no-spike fallback; "
                     f"{e['accuracy'] - c['accuracy_ordinary']:+.2%} vs continuous ordinary)")
        for r in e["timing"]:
            lines.append(f"    {r['layer']}: first-spike error median {r['median_abs']:.2f}, p95 {r['p95_abs']:.2f}, "
                         f"max {r['max_abs']:.2f} steps (mean {r['mean']:+.2f}; {r['pairs']} pairs), "
                         f"spike counts equal {r['count_agreement']:.2%}")
    if "lava" in rep:
        lv = rep["lava"]
        lines.append(f"  lava fixed_pt = emulator: {lv['identical_samples']}/{lv['samples']} samples identical "
                     f"(u, x, s of every layer at every step: {lv['identical_arrays']}/{lv['arrays']} arrays)")
    tf = rep["torch_fixed"]
    lines.append(f"  torch fixed mode (QAT's) = emulator: {tf['identical_samples']}/{tf['samples']} samples identical "
                 f"({tf['identical_arrays']}/{tf['arrays']} arrays)")
    for p in rep["sweep"]:
        lines.append(f"  sweep k={p['k']} (dt={p['dt']:.4g}, {p['steps']} steps): emulator accuracy "
                     f"{p['accuracy']:.2%} on {p['samples']}, median |error| per layer "
                     f"{', '.join(f'{m:.2f}' for m in p['median_abs'])} steps")
    return "\n".join(lines)


def verify_smooth(model, k: int, samples, lava_samples: int, sweep, max_drop: float, report) -> int:
    """Measure, print the summary and verdict, write the report folder; 0 on PASS, 1 on FAIL."""
    rep = measure(model, k, samples, lava_samples, sweep)
    crit = criteria(rep, max_drop)
    return conclude(summary(rep), crit, report, lambda text, folder: write(rep, folder, text, crit))


def write(rep: dict, folder, text: str, crit: list) -> Path:
    """The report folder in the shared verify frame (`toolchain.verify.verdict.write_verdict_report`)."""
    ir = rep.pop("ir")
    sections = [text_section("Summary", text), Section("Spike timing (steps): deployed time minus continuous "
                                                       "time, divided by dt", timing_table(rep))]
    if rep["sweep"]:
        sections.append(Section("Step sweep", "", [("step_sweep.png", "emulator accuracy and first-spike error "
                                                    "against the step exponent k (dt = tau 2**-k)", sweep_figure(rep))]))
    if rep["history"]:
        sections.append(Section("Training", "", [("accuracy_epochs.png", "test accuracy against epochs (continuous)",
                                                  history_figure(rep["history"]))]))
    sections.append(text_section("Quantization", "\n".join(rep["quantization"])))
    attachments = {"smooth_fixed.onnx": lambda path: formats.save(ir, path)}
    what = (f"<code>{escape(rep['model'])}</code>, smooth (theta/QIF) on task <b>{escape(rep['task'])}</b>, "
            f"{rep['samples']} test samples (Lava: {rep['lava']['samples'] if 'lava' in rep else 'not run'}); "
            f"float reference: the continuous float64 theta network; deployed at h = 2**-{rep['k']} "
            f"(dt = {rep['dt']:.4g} time units, {rep['steps']} steps).")
    return write_verdict_report(folder, plain(rep, nan_to_none=True), crit, headline_of(rep), what, sections,
                                TITLE, seeds={}, attachments=attachments)


def timing_table(rep: dict) -> str:
    rows = []
    for name, e in rep["engines"].items():
        for r in e["timing"]:
            rows.append([escape(name), r["layer"], r["pairs"], _f(r["median_abs"]), _f(r["p95_abs"]),
                         _f(r["max_abs"]), _f(r["mean"]), r["only_continuous"], r["only_deployed"],
                         f"{r['count_agreement']:.4f}"])
    return table(["engine", "layer", "neuron x sample pairs firing in both", "median |error|", "p95 |error|",
                  "max |error|", "mean error", "first spike only in continuous", "only deployed",
                  "spike counts equal (fraction)"], rows) + legend(
        "Errors are first-spike times in steps: deployed time minus continuous time, divided by dt (positive: "
        "late); pairs: (neuron, sample) pairs whose first spike exists in both; only in continuous / only "
        "deployed: pairs with a first spike in one of the two only; spike counts equal: share of pairs with the "
        "same number of spikes.")


def _f(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def sweep_figure(rep: dict):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [p["k"] for p in rep["sweep"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(ks, [100 * p["accuracy"] for p in rep["sweep"]], "o-", label="emulator (fixed point)")
    a.axhline(100 * rep["continuous"]["accuracy_ordinary"], color="gray", ls="--", label="continuous, ordinary")
    a.set_xlabel("k (dt = tau 2**-k)")
    a.set_ylabel("accuracy (%)")
    a.legend(fontsize=8)
    layers = len(rep["sweep"][0]["median_abs"])
    for l in range(layers):
        b.plot(ks, [p["median_abs"][l] for p in rep["sweep"]], "o-", label=f"l{l + 1} median")
        b.plot(ks, [p["p95_abs"][l] for p in rep["sweep"]], "x--", label=f"l{l + 1} p95")
    b.set_xlabel("k")
    b.set_ylabel("|first-spike error| (steps)")
    b.legend(fontsize=7)
    fig.tight_layout()
    return fig


def history_figure(history: list):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    history_plot(history, ax)
    fig.tight_layout()
    return fig
