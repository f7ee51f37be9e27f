"""The gate method's two tasks as seeded trial generators: delayed-memory XOR and predictive coding.

The protocol is spikeport's (written after Huh & Sejnowski's task descriptions; the paper's
own sizes and timings could not be read), every number a setting (`XOR_DEFAULTS`,
`PC_DEFAULTS`). Times are in ms; a trial of ``duration`` ms has ``round(duration / dt)``
steps, step n (0-based array index) covering [n dt, (n + 1) dt).

* ``xor``: 3 input channels. Channel 0 carries pulse A (amplitude a = +-1) during
  ``pulse_a`` and pulse B (b = +-1) during ``pulse_b``; channel 1 the go cue (amplitude 1)
  during ``cue``; channel 2 stays 0 (spare). Target: +1 if a != b else -1 during
  ``response``, weight 1; 0 before the cue starts, weight ``pre_cue_weight``; weight 0
  elsewhere. Condition k in 0..3 is (a, b) = (+-1, +-1) by bits; a batch cycles through them.
  ``jitter`` ms (uniform, per trial) shifts pulse B and the cue (and the response) together;
  ``noise`` adds independent Gaussian noise of that standard deviation to channels 0 and 1
  at every step, so that no two trials are alike (a test trial is never a training trial).
* ``predictive-coding``: ``channels`` inputs, each low-pass (time constant ``tau_in``)
  Gaussian white noise with unit standard deviation (an exactly discretised
  Ornstein-Uhlenbeck process started from its stationary law); target = the input; weight
  0 during the first ``washout`` ms, 1 after.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import SpikeportError

XOR_DEFAULTS = dict(duration=1000.0, pulse_a=[50.0, 100.0], pulse_b=[350.0, 400.0], cue=[650.0, 700.0],
                    response=[700.0, 950.0], score=[750.0, 950.0], pre_cue_weight=0.1, jitter=0.0, noise=0.1)
PC_DEFAULTS = dict(duration=1000.0, channels=2, tau_in=50.0, washout=50.0)
TASKS = ("xor", "predictive-coding")


@dataclass
class Trials:
    """inputs (B, T, n_in), target (B, T, n_out), weight (B, T) of the loss; condition (B,)
    (XOR: 0..3, -1 for predictive coding); score (B, T) bool: the steps scored (XOR) or all."""

    inputs: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    condition: np.ndarray
    score: np.ndarray


def steps(duration: float, dt: float) -> int:
    return int(round(duration / dt))


def _window(t: np.ndarray, span, shift: np.ndarray) -> np.ndarray:
    """(B, T) bool: t in [span[0] + shift, span[1] + shift)."""
    lo, hi = span
    return (t[None] >= lo + shift[:, None]) & (t[None] < hi + shift[:, None])


def check_windows(cfg: dict) -> None:
    """Every XOR window [start, end) is non-empty and inside the trial, also when ``jitter`` shifts
    it (all but pulse A); a one-line error naming the window otherwise."""
    for key in ("pulse_a", "pulse_b", "cue", "response", "score"):
        lo, hi = cfg[key]
        slack = 0.0 if key == "pulse_a" else cfg["jitter"]
        if not (slack <= lo < hi <= cfg["duration"] - slack):
            raise SpikeportError(f"xor: {key}={[lo, hi]} is outside [{slack:g}, {cfg['duration'] - slack:g}] ms "
                                 "(the trial, less the jitter) or empty")


def xor_trials(n: int, seed: int, dt: float, cfg: dict = XOR_DEFAULTS, conditions=None) -> Trials:
    """``n`` XOR trials; ``conditions`` (n,) in 0..3, default cycling 0, 1, 2, 3, ..."""
    check_windows(cfg)
    rng = np.random.default_rng(seed)
    cond = np.arange(n) % 4 if conditions is None else np.asarray(conditions)
    a = np.where(cond & 1, -1.0, 1.0)
    b = np.where(cond & 2, -1.0, 1.0)
    t = np.arange(steps(cfg["duration"], dt)) * dt
    shift = rng.uniform(-cfg["jitter"], cfg["jitter"], n) if cfg["jitter"] else np.zeros(n)
    zero = np.zeros(n)
    x = np.zeros((n, len(t), 3))
    x[..., 0] = a[:, None] * _window(t, cfg["pulse_a"], zero) + b[:, None] * _window(t, cfg["pulse_b"], shift)
    x[..., 1] = _window(t, cfg["cue"], shift)
    x[..., :2] += cfg["noise"] * rng.standard_normal((n, len(t), 2))
    response = _window(t, cfg["response"], shift)
    pre = t[None] < cfg["cue"][0] + shift[:, None]
    sign = np.where(a != b, 1.0, -1.0)
    target = (sign[:, None] * response)[..., None]
    weight = response + cfg["pre_cue_weight"] * pre
    return Trials(x, target, weight, cond, _window(t, cfg["score"], shift))


def xor_label(condition: np.ndarray) -> np.ndarray:
    """The correct sign (+1: a != b) of each condition."""
    return np.where((condition & 1) != ((condition & 2) >> 1), 1.0, -1.0)


def pc_trials(n: int, seed: int, dt: float, cfg: dict = PC_DEFAULTS) -> Trials:
    """``n`` predictive-coding trials (module docstring)."""
    rng = np.random.default_rng(seed)
    T, k = steps(cfg["duration"], dt), int(cfg["channels"])
    rho = np.exp(-dt / cfg["tau_in"])
    x = np.empty((n, T, k))
    x[:, 0] = rng.standard_normal((n, k))
    noise = rng.standard_normal((n, T, k)) * np.sqrt(1 - rho ** 2)
    for t in range(1, T):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    scored = np.broadcast_to(np.arange(T) * dt >= cfg["washout"], (n, T)).copy()
    return Trials(x, x.copy(), scored.astype(np.float64), np.full(n, -1), scored)


def make_trials(task: str, n: int, seed: int, dt: float, cfg: dict) -> Trials:
    """Trials of ``task`` (``cfg`` holds that task's keys)."""
    if task == "xor":
        return xor_trials(n, seed, dt, {k: cfg[k] for k in XOR_DEFAULTS})
    if task == "predictive-coding":
        return pc_trials(n, seed, dt, {k: cfg[k] for k in PC_DEFAULTS})
    raise SpikeportError(f"gate: unknown task {task!r}; choose one of {', '.join(TASKS)}")
