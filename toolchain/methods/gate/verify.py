"""`spikeport verify` for gate checkpoints: fresh trials on every engine, the verdict, the report.

On ``trials`` fresh test trials (seed ``seed``; XOR: equally many per condition) the float64
model, the deployed network on the float emulator and on the fixed-point emulator are
scored alike (`toolchain.methods.gate.score`); the first ``lava_trials`` also run on Lava
fixed_pt and are compared with the emulator bit for bit (u, x, q, s of the neurons, u of
the readout, every step). Predictive coding adds the rate-matched Poisson control
(`poisson_control`). The verdict is the shared one (`toolchain.verify.verdict`): PASS when the issue's criteria
hold on the float model and the fixed-point emulator (XOR >= 95% correct; predictive coding
NMSE <= 0.1 and below the control's) and Lava is bit-identical to the emulator. XOR's
confidence (|mean readout| >= 0.5) is spikeport's own figure, printed as information only.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from toolchain import formats
from toolchain.methods.gate import deploy, score
from toolchain.methods.gate.config import CONFIDENT, MAX_NMSE, SOLVED
from toolchain.methods.gate.train import history
from toolchain.tasks.gate_tasks import make_trials
from toolchain.verify.criteria import Criterion, identical
from toolchain.verify.report import Section, escape, plain, text_section
from toolchain.verify.verdict import conclude, headline, write_verdict_report

TITLE = "spikeport verify: gate-function exact gradients (QIF, graded gate spikes)"
CONTROL_SMOOTHING = 20.0  # ms: the window the Poisson control's rates are estimated over


def poisson_control(run: dict, net, trials, dt: float, seed: int) -> dict:
    """Each neuron replaced by an inhomogeneous Poisson train at its own rate (the network's spikes
    smoothed by a CONTROL_SMOOTHING ms box), each spike one full unit of charge, read out with the
    same O through the same synaptic trace. Returns its NMSE and its mean rate (spikes/s)."""
    rng = np.random.default_rng(seed)
    width = max(1, int(round(CONTROL_SMOOTHING / dt)))
    kernel = np.ones(width) / width
    spikes = run["spikes"].astype(np.float64)
    rate = np.apply_along_axis(lambda s: np.convolve(s, kernel, mode="same"), 1, spikes)  # per step
    poisson = rng.random(rate.shape) < rate
    keep = 1.0 - net.neuron.decay
    r = np.zeros_like(rate)
    trace = np.zeros(rate.shape[::2])
    for t in range(rate.shape[1]):
        trace = keep * trace + poisson[:, t]
        r[:, t] = trace
    o = r @ net.O.detach().double().numpy().T + net.o_b.detach().double().numpy()
    return dict(nmse=score.nmse(o, trials.target, trials.score), rate_hz=float(poisson.mean()) * 1000 / dt,
                network_rate_hz=float(spikes.mean()) * 1000 / dt)


def measure(model, trials_n: int, seed: int, lava_trials: int) -> dict:
    """Every figure of the module docstring as a JSON-ready dict (plus the IR and traces)."""
    net, ir, lines = deploy.compile_gate(model)
    cfg, task = ir.meta["run_config"], ir.meta["task"]
    trials = make_trials(task, trials_n, seed, cfg["dt"], cfg)
    t0 = time.perf_counter()
    run = deploy.float_run(net, trials)
    rep = dict(model=str(model), task=task, trials=trials_n, seed=seed, training_seed=cfg["seed"], dt=cfg["dt"],
               quantization=lines,
               engines={"float": dict(score.score_readout(run["o"], trials, task),
                                      rate_hz=float(run["spikes"].mean()) * 1000 / cfg["dt"],
                                      wall_s=time.perf_counter() - t0)})
    traces = {"float": run["o"][:4]}
    for engine in ("float-emulator", "emulator"):
        t0 = time.perf_counter()
        out = deploy.deployed(engine, ir, trials)
        rep["engines"][engine] = dict(score.score_readout(out["o"], trials, task),
                                      max_readout_difference=float(np.abs(out["o"] - run["o"]).max()),
                                      wall_s=time.perf_counter() - t0)
        traces[engine] = out["o"][:4]
        if engine == "emulator":
            rep["raster"] = deploy.spikes_of(out["record"], ir, "fixed")[0]
    if task == "predictive-coding":
        rep["control"] = poisson_control(run, net, trials, cfg["dt"], seed + 1)
    if lava_trials:
        t0 = time.perf_counter()
        bi = deploy.bit_identity(ir, deploy.slice_trials(trials, 0, lava_trials))
        rep["lava"] = dict(trials=bi.samples, identical_trials=bi.identical_samples, arrays=bi.arrays,
                           identical_arrays=bi.identical_arrays, values=bi.values, equal_values=bi.equal_values,
                           first_divergence=bi.first_divergence.describe() if bi.first_divergence else None,
                           wall_s=time.perf_counter() - t0)
    rep["history"] = history(model)
    rep["_figures"] = dict(ir=ir, trials=deploy.slice_trials(trials, 0, 4), traces=traces, float_spikes=run["spikes"][0])
    return rep


def criteria(rep: dict) -> list:
    """PASS/FAIL per criterion: the task's figure on the float model and on the fixed-point emulator
    (deployed), and Lava = emulator on every Lava trial."""
    found = []
    for engine in ("float", "emulator"):
        e = rep["engines"][engine]
        if rep["task"] == "xor":
            found.append(Criterion(f"XOR correct ({engine})", e["correct"] >= SOLVED,
                                   f"{e['correct']:.2%} of {e['trials']} trials (minimum {SOLVED:.0%})"))
        else:
            found.append(Criterion(f"predictive-coding NMSE ({engine})", e["nmse"] <= MAX_NMSE,
                                   f"{e['nmse']:.4f} (maximum {MAX_NMSE})"))
            found.append(Criterion(f"NMSE below the rate-matched Poisson control ({engine})",
                                   e["nmse"] < rep["control"]["nmse"],
                                   f"{e['nmse']:.4f} (control {rep['control']['nmse']:.4f})"))
    lava = rep.get("lava")
    if lava:
        found.append(identical("lava = emulator", lava["identical_trials"], lava["trials"],
                               "u, x, q, s of rec and u of the readout at every step", lava["first_divergence"]))
    return found


def headline_of(rep: dict) -> dict:
    """The results-table figures (`toolchain.verify.verdict.headline`): XOR's share correct or the
    predictive-coding NMSE, float model and fixed-point emulator."""
    metric = "correct" if rep["task"] == "xor" else "nmse"
    lava = rep.get("lava") or {}
    return headline(metric, rep["engines"]["float"][metric], rep["engines"]["emulator"][metric], None,
                    lava.get("identical_trials"), lava.get("trials"))


def summary(rep: dict) -> str:
    lines = [f"gate ({rep['task']}): {rep['trials']} fresh test trials (seed {rep['seed']})"]
    for name, e in rep["engines"].items():
        if rep["task"] == "xor":
            per = ", ".join(f"{e['per_condition'][c]:.1%}" for c in range(4))
            figure = f"{e['correct']:.2%} correct, {e['confident']:.2%} confident (per condition {per})"
        else:
            figure = f"NMSE {e['nmse']:.4f}"
        extra = f"; max |o - float model| {e['max_readout_difference']:.3g}" if "max_readout_difference" in e else ""
        lines.append(f"  {name}: {figure}{extra}")
    if rep["task"] == "xor":
        lines.append(f"  (confident: also |mean o| >= {CONFIDENT}; information, not a criterion)")
    if "control" in rep:
        c = rep["control"]
        lines.append(f"  rate-matched Poisson control (same O): NMSE {c['nmse']:.4f} at {c['rate_hz']:.1f} spikes/s "
                     f"per neuron (network {c['network_rate_hz']:.1f})")
    if "lava" in rep:
        lv = rep["lava"]
        lines.append(f"  lava fixed_pt = emulator: {lv['identical_trials']}/{lv['trials']} trials identical "
                     f"(u, x, q, s of rec and u of the readout at every step: {lv['identical_arrays']}/{lv['arrays']} "
                     f"arrays, {lv['equal_values']}/{lv['values']} values)")
    return "\n".join(lines)


def verify_gate(model, trials: int, seed: int, lava_trials: int, report) -> int:
    """Measure, print the summary and the shared verdict block, write the report folder; 0 on PASS, 1 on FAIL."""
    rep = measure(model, trials, seed, min(lava_trials, trials))
    crit = criteria(rep)
    return conclude(summary(rep), crit, report, lambda text, folder: write(rep, folder, text, crit))


def write(rep: dict, folder, text: str, crit: list) -> Path:
    """The report folder in the shared verify frame (`toolchain.verify.verdict.write_verdict_report`)."""
    figures = rep.pop("_figures")
    raster = rep.pop("raster")
    sections = [text_section("Summary", text),
                Section("Trials", "", [("traces.png", "input, target and readout (float model, float and fixed "
                                        "emulator) of the first test trials", traces_figure(rep, figures)),
                                       ("raster.png", "spikes of the first test trial: float model and fixed-point "
                                        "emulator", raster_figure(figures["float_spikes"], raster))])]
    if rep["history"]:
        sections.append(Section("Training", "", [("validation.png", "validation score against iterations",
                                                  history_figure(rep["history"], rep["task"]))]))
    sections.append(text_section("Quantization", "\n".join(rep["quantization"])))
    ir = figures["ir"]
    lava = rep["lava"]["trials"] if "lava" in rep else "not run"
    what = (f"<code>{escape(rep['model'])}</code>, gate (QIF, graded gate spikes) on task <b>{escape(rep['task'])}</b>, "
            f"{rep['trials']} fresh test trials (Lava: {lava}); float reference: the trained model in float64.")
    return write_verdict_report(folder, plain(rep, nan_to_none=True), crit, headline_of(rep), what, sections, TITLE,
                                seeds=dict(verify=rep["seed"], training=rep.get("training_seed")),
                                attachments={"gate_fixed.onnx": lambda path: formats.save(ir, path)})


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def traces_figure(rep: dict, figures: dict):
    plt = _plt()
    trials, traces = figures["trials"], figures["traces"]
    n = len(trials.inputs)
    dt = rep_dt(rep)
    t = np.arange(trials.inputs.shape[1]) * dt
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 4.5), sharex=True, squeeze=False)
    for j in range(n):
        axes[0, j].plot(t, trials.inputs[j], lw=0.7)
        axes[0, j].set_title(f"trial {j}" + (f" (condition {trials.condition[j]})" if rep["task"] == "xor" else ""),
                             fontsize=8)
        axes[1, j].plot(t, trials.target[j, :, 0], "k", lw=1.2, label="target")
        for name, o in traces.items():
            axes[1, j].plot(t, o[j, :, 0], lw=0.8, label=name)
        axes[1, j].set_xlabel("time (ms)")
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("readout (channel 0)")
    axes[1, 0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def rep_dt(rep: dict) -> float:
    return float(rep.get("dt", 1.0))


def raster_figure(float_spikes: np.ndarray, deployed_spikes: np.ndarray):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, s, title in ((axes[0], float_spikes, "float model"), (axes[1], deployed_spikes, "fixed-point emulator")):
        t, i = np.nonzero(s)
        ax.plot(t, i, "|", ms=3, color="k")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    axes[0].set_ylabel("neuron")
    fig.tight_layout()
    return fig


def history_figure(hist: list, task: str):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    its = [h["iteration"] for h in hist]
    if task == "xor":
        ax.plot(its, [100 * h["correct"] for h in hist], label="correct")
        ax.plot(its, [100 * h["confident"] for h in hist], label="confident")
        ax.set_ylabel("validation (%)")
    else:
        ax.semilogy(its, [h["nmse"] for h in hist], label="NMSE")
        ax.set_ylabel("validation NMSE")
    ax.set_xlabel("iteration")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
