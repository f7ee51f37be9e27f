"""Exact event-based forward simulation of a layer of continuous-time CUBA LIF neurons.

The neuron model and its units are `models.continuous_lif` (time in ms, ``v`` in
threshold units). A layer's presynaptic spike arrivals are all known before it
runs. Between two arrivals ``v`` is ``A exp(-x/tau_mem) + D exp(-x/tau_syn)``, a
function with at most one extremum (closed form), so whether ``v`` reaches
threshold in an interval is decided exactly, and the crossing is found by a
bracketed Newton/bisection to machine precision. A neuron's spikes are found one
at a time (round r finds the first crossing after spike r-1, over all intervals
at once), batched over samples and neurons in numpy. No gradient flows here:
`models.exact_spikes.implicit_times` rebuilds the times with exact gradients.
"""
from __future__ import annotations

import math
import numpy as np

from models.continuous_lif import ContinuousLIF
from models.errors import SpikeportError

INF = math.inf


# ------------------------------------------------------- event-based forward
def simulate_layer(arrivals: np.ndarray, weight: np.ndarray, neuron: ContinuousLIF, t_end: float,
                   max_spikes: int = 100) -> np.ndarray:
    """Exact spike times (ms) of one layer, (B, n, K) padded with inf.

    arrivals: (B, n_pre, Kp) times (ms) at which presynaptic spikes reach the
    layer (delay included), inf-padded; weight: (n, n_pre). Spikes are
    searched in ``(0, t_end]``. More than ``max_spikes`` spikes in one neuron
    is an error (nothing is truncated silently).
    """
    ev_t, ev_w = _sorted_events(np.asarray(arrivals, dtype=np.float64), np.asarray(weight, np.float64), t_end)
    B, n, E = ev_w.shape
    sums = _prefix_sums(ev_t, ev_w, neuron)
    starts = ev_t[:, None, :]  # interval e runs from arrival e to arrival e+1 (the last to t_end)
    ends = np.concatenate([ev_t[:, 1:], np.full((B, 1), t_end)], axis=1)[:, None, :]
    t_free = np.zeros((B, n))  # the search for the next crossing starts here (end of the last hold)
    reset = np.zeros((B, n))  # Σ_f c_f exp((t_f + r)/tau_mem): the resets add exp(-t/tau_mem) * reset to v
    spikes = []
    active = np.ones((B, n), dtype=bool)
    for _ in range(max_spikes + 1):
        t_new = _next_crossing(starts, ends, sums, t_free, reset, active, neuron)
        found = np.isfinite(t_new)
        if not found.any():
            break
        if len(spikes) == max_spikes:
            raise SpikeportError(f"exact simulation: a neuron fires more than max_spikes={max_spikes} spikes "
                                 f"before t_end={t_end} ms (runaway weights?)")
        spikes.append(t_new)
        t_free = np.where(found, t_new + neuron.refractory, t_free)
        reset = reset + np.where(found, _reset_coefficient(t_free, ev_t, sums, reset, neuron)
                                 * np.exp(np.where(found, t_free, 0.0) / neuron.tau_mem), 0.0)
        active = found
    if not spikes:
        return np.full((B, n, 1), INF)
    return np.stack(spikes, axis=-1)


def _reset_coefficient(t_free, ev_t, sums, reset, neuron):
    """``c_f``: the jump that sets v to 0 at the end of the hold, ``-v_free(t_f + r)`` (-vth if r = 0)."""
    if neuron.refractory == 0:
        return np.full(t_free.shape, -neuron.vth)
    _, v_in = _drive_at(t_free, ev_t, sums, neuron)
    return -(v_in + np.exp(-t_free / neuron.tau_mem) * reset)


def _drive_at(t, ev_t, sums, neuron):
    """u and the input part of v at times t (B, n), from the prefix sums (arrivals at or before t)."""
    idx = (ev_t[:, None, :] <= t[..., None]).sum(-1) - 1
    has = idx >= 0
    take = lambda a: np.take_along_axis(a, np.maximum(idx, 0)[..., None], axis=-1)[..., 0]  # noqa: E731
    u = np.where(has, np.exp(-t / neuron.tau_syn) * take(sums[0]), 0.0)
    v = np.where(has, neuron.c * np.exp(-t / neuron.tau_mem) * take(sums[1]) - neuron.c * u, 0.0)
    return u, v


def _sorted_events(arrivals, weight, t_end):
    """Arrivals before t_end sorted per sample: times (B, E) and each neuron's weight (B, n, E)."""
    B, n_pre, Kp = arrivals.shape
    t = arrivals.reshape(B, n_pre * Kp)
    pre = np.repeat(np.arange(n_pre), Kp)
    order = np.argsort(t, axis=1, kind="stable")
    t = np.take_along_axis(t, order, axis=1)
    w = weight[:, pre[order]].transpose(1, 0, 2)  # (B, n, E)
    late = ~(t < t_end)
    return np.where(late, t_end, t), np.where(late[:, None, :], 0.0, w)


def _prefix_sums(ev_t, ev_w, neuron):
    """Σ_{e'<=e} W exp(t_e'/tau) for tau_syn and tau_mem: u and v at any later time follow in closed form."""
    limit = max(ev_t.max(initial=0.0) / neuron.tau_syn, ev_t.max(initial=0.0) / neuron.tau_mem)
    if limit > 600:
        raise SpikeportError(f"exact simulation: t_end/tau = {limit:.0f} > 600 overflows float64 prefix sums")
    return (np.cumsum(ev_w * np.exp(ev_t / neuron.tau_syn)[:, None, :], axis=-1),
            np.cumsum(ev_w * np.exp(ev_t / neuron.tau_mem)[:, None, :], axis=-1))


def _next_crossing(starts, ends, sums, t_free, reset, active, neuron):
    """First threshold crossing after ``t_free`` for every neuron, (B, n); inf where none."""
    ts, tm, c = neuron.tau_syn, neuron.tau_mem, neuron.c
    s = np.maximum(starts, t_free[..., None])  # (B, n, E) interval starts after the last hold
    width = ends - s
    usable = active[..., None] & (width >= 0) & (ends > t_free[..., None])
    u = np.exp(-s / ts) * sums[0]
    v = c * (np.exp(-s / tm) * sums[1] - u) + np.exp(-s / tm) * reset[..., None]
    A, D = v + c * u, -c * u  # v(s + x) = A exp(-x/tm) + D exp(-x/ts)
    lo, hi, crosses = _crossing_bracket(A, D, np.maximum(width, 0.0), neuron)
    crosses &= usable
    first = crosses.argmax(axis=-1)[..., None]
    found = crosses.any(axis=-1)
    pick = lambda a: np.take_along_axis(a, first, axis=-1)[..., 0][found]  # noqa: E731
    t_new = np.full(found.shape, INF)
    t_new[found] = pick(s) + _solve_crossing(pick(A), pick(D), pick(lo), pick(hi), neuron)
    return t_new


def _crossing_bracket(A, D, width, neuron):
    """For ``f(x) = A e^{-x/tm} + D e^{-x/ts} - vth`` on [0, width]: does f exceed 0, and a bracket
    [lo, hi] on which f is increasing with f(lo) <= 0 < f(hi) (f has at most one extremum)."""
    ts, tm, vth = neuron.tau_syn, neuron.tau_mem, neuron.vth
    f = lambda x: A * np.exp(-x / tm) + D * np.exp(-x / ts) - vth  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = -D * tm / (A * ts)  # f'(x*) = 0 at exp(x*(1/ts - 1/tm)) = ratio
        x_star = np.where(ratio > 0, np.log(np.where(ratio > 0, ratio, 1.0)) / (1 / ts - 1 / tm), -1.0)
    inside = (x_star > 0) & (x_star < width)
    is_max = inside & (A * (1 / tm - 1 / ts) < 0)
    is_min = inside & ~is_max
    f_end, f_star = f(width), np.where(inside, f(np.where(inside, x_star, 0.0)), -INF)
    at_start = f(0.0) > 0  # only by rounding, right at an arrival: the crossing is the arrival time
    crosses = np.where(is_max, f_star > 0, f_end > 0) | at_start
    lo = np.where(is_min & ~at_start, x_star, 0.0)
    hi = np.where(at_start, 0.0, np.where(is_max, x_star, width))
    return lo, hi, crosses


def _solve_crossing(A, D, lo, hi, neuron, iters: int = 100):
    """Root of the increasing ``f`` in [lo, hi] to machine precision.

    Newton from the current point; if that step leaves the bracket, Newton from
    the bracket's other end (one side always converges monotonically, as f has
    at most one inflection point); bisection if both leave it.
    """
    ts, tm, vth = neuron.tau_syn, neuron.tau_mem, neuron.vth

    def f_and_slope(x):
        em, es = np.exp(-x / tm), np.exp(-x / ts)
        return A * em + D * es - vth, -A / tm * em - D / ts * es

    noise = 8 * np.finfo(np.float64).eps * (np.abs(A) + np.abs(D) + vth)  # rounding floor of f

    def newton(x, fx, slope, lo, hi):
        with np.errstate(divide="ignore", invalid="ignore"):
            step = x - fx / slope
        return step, (slope > 0) & (step >= lo) & (step <= hi)

    lo, hi = lo.copy(), hi.copy()
    x = hi.copy()
    for _ in range(iters):
        fx, slope = f_and_slope(x)
        lo, hi = np.where(fx <= 0, x, lo), np.where(fx > 0, x, hi)
        x1, ok1 = newton(x, fx, slope, lo, hi)
        other = np.where(fx > 0, lo, hi)
        x2, ok2 = newton(other, *f_and_slope(other), lo, hi)
        x_new = np.where(ok1, x1, np.where(ok2, x2, 0.5 * (lo + hi)))
        settled = np.abs(fx) <= noise  # x is a root as far as f can tell
        done = settled | (hi - lo <= 4 * np.finfo(np.float64).eps * np.maximum(hi, 1.0))
        x = np.where(settled, x, x_new)
        if done.all():
            break
    return x
