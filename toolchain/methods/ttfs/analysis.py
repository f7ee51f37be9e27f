"""Deployed TTFS runs against continuous time: first-spike timing errors (steps), accuracy, sparsity."""
from __future__ import annotations

import numpy as np


def timing_errors(first: np.ndarray, t_cont: np.ndarray, dt: float) -> dict:
    """Deployed first-spike index minus continuous time / dt (steps), for neurons that spike
    in both, plus how many spike in only one of the two."""
    both = np.isfinite(first) & np.isfinite(t_cont)
    err = first[both] - t_cont[both] / dt
    return summarize(err) | dict(only_deployed=int((np.isfinite(first) & ~np.isfinite(t_cont)).sum()),
                                 only_continuous=int((~np.isfinite(first) & np.isfinite(t_cont)).sum()),
                                 both=int(both.sum()))


def summarize(err: np.ndarray) -> dict:
    if err.size == 0:
        return dict(n=0)
    q = np.percentile(err, [1, 5, 50, 95, 99])
    return dict(n=int(err.size), mean=float(err.mean()), std=float(err.std()), mean_abs=float(np.abs(err).mean()),
                p1=float(q[0]), p5=float(q[1]), median=float(q[2]), p95=float(q[3]), p99=float(q[4]),
                max_abs=float(np.abs(err).max()), within_1_step=float((np.abs(err) <= 1.0).mean()))


def hidden_spikes_before_decision(hidden_first: np.ndarray, out_first: np.ndarray) -> np.ndarray:
    """Per sample: hidden neurons that spike strictly before the first output spike
    (the ones that can have influenced it). Works for step indices and for continuous times."""
    decision = out_first.min(1, initial=np.inf)
    return (hidden_first < decision[:, None]).sum(1)


def analyse_engine(res: dict, cont: list, y: np.ndarray, dt: float, neurons: list) -> dict:
    """Accuracy, timing errors per layer and sparsity of one deployed run against the continuous model."""
    out_node = neurons[-1]
    report = dict(accuracy=float((res["pred"] == y).mean()), samples=int(len(y)),
                  no_output_spike=int((~res["any_output"]).sum()),
                  same_prediction_as_continuous=float((res["pred"] == np.argmin(cont[-1], 1)).mean()))
    report["timing_steps"] = {n: timing_errors(res["first"][n], c, dt) for n, c in zip(neurons, cont)}
    fin = np.isfinite(res["t_out_interp"]) & np.isfinite(cont[-1])
    report["timing_steps"][out_node + " (interpolated)"] = summarize(res["t_out_interp"][fin] - cont[-1][fin] / dt)
    winner_disc = res["first"][out_node].min(1)
    winner_cont = cont[-1].min(1)
    ok = np.isfinite(winner_disc) & np.isfinite(winner_cont)
    report["timing_steps"]["decision (first output spike)"] = summarize(winner_disc[ok] - winner_cont[ok] / dt)
    report["spikes_per_neuron_max"] = {n: int(c.max(initial=0)) for n, c in res["spike_counts"].items()}
    report["hidden_spikes_total_mean"] = float(res["spike_counts"][neurons[0]].sum(1).mean())
    report["hidden_spikes_before_decision_mean"] = float(
        hidden_spikes_before_decision(res["first"][neurons[0]], res["first"][out_node]).mean())
    report["decision_step_mean"] = float(winner_disc[np.isfinite(winner_disc)].mean())
    return report

