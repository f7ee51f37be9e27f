"""Spike-timing metrics between a reference train and a test train: the one spike-matching module.

Both trains are arrays of shape (B, T, n): B samples, T steps, n neurons.
Any nonzero entry is one spike. Array index ``k`` along the time axis is step
``t = k + 1`` (spikeport numbers steps 1..T in every engine), so every
time difference below is in **steps** and does not depend on that offset.

Metrics, each computed per neuron train (one sample, one neuron) and summed
or pooled over a node:

* spike counts and their difference (`count_difference`);
* the fraction of reference spikes that an optimal one-to-one matching pairs
  with a test spike no more than ``tol`` steps away (`matched_fraction`);
* the one-to-one pairing of two lists of spike times with the least summed
  |time difference| and its signed errors (`optimal_pairs`, `paired_errors`,
  `unpaired`; any time unit, e.g. ms for continuous spike trains);
* first-spike-time errors ``t_test - t_ref`` for trains that spike in both,
  and the number that spike in only one (`first_spike_errors`);
* the van Rossum distance with an exponential kernel (`van_rossum`).

`compare` bundles them into one JSON-ready dict for a node.
"""
from __future__ import annotations

import numpy as np

TOLERANCES = (0, 1, 2)


def _spikes(train) -> np.ndarray:
    """A (B, T, n) boolean spike array; any nonzero entry is a spike."""
    arr = np.asarray(train)
    if arr.ndim != 3:
        raise ValueError(f"spike train must be (B, T, n), got shape {arr.shape}")
    return arr != 0


def _pair(ref, test) -> tuple[np.ndarray, np.ndarray]:
    ref, test = _spikes(ref), _spikes(test)
    if ref.shape != test.shape:
        raise ValueError(f"reference {ref.shape} and test {test.shape} trains differ in shape")
    return ref, test


# ------------------------------------------------------------------ counts
def count_difference(ref, test) -> dict:
    """Spike counts of both trains and how they differ.

    Returns ``ref_spikes``, ``test_spikes`` (totals), ``abs_count_diff`` (sum
    over trains of |count_test - count_ref|) and ``same_count_fraction`` (the
    fraction of (sample, neuron) trains whose counts are equal).
    """
    ref, test = _pair(ref, test)
    diff = test.sum(axis=1).astype(np.int64) - ref.sum(axis=1)
    return dict(ref_spikes=int(ref.sum()), test_spikes=int(test.sum()),
                abs_count_diff=int(np.abs(diff).sum()),
                same_count_fraction=float((diff == 0).mean()) if diff.size else 1.0)


# ---------------------------------------------------------------- matching
def max_matching(a, b, tol: int) -> int:
    """Size of a maximum one-to-one matching between sorted spike times ``a`` and
    ``b`` (steps) where a pair may be matched when ``|a_i - b_j| <= tol``.

    Greedy two-pointer sweep, O(len(a) + len(b)). Why it is optimal: let
    ``a_1``, ``b_1`` be the smallest remaining times.

    * If ``b_1 < a_1 - tol``, then ``b_1 < a_i - tol`` for every remaining
      ``a_i >= a_1``: ``b_1`` can match nothing and is dropped. Symmetrically
      ``a_1`` is dropped when ``b_1 > a_1 + tol``.
    * Otherwise ``|a_1 - b_1| <= tol`` and some maximum matching M contains
      the pair (a_1, b_1). If M leaves one of the two unmatched, replace the
      other's partner by it (same size). If M holds (a_1, b_k) and (a_l, b_1),
      exchange them for (a_1, b_1) and (a_l, b_k): that pair is valid because
      ``a_l - b_k <= a_l - b_1 <= tol`` (as ``b_k >= b_1``) and
      ``b_k - a_l <= b_k - a_1 <= tol`` (as ``a_l >= a_1``).

    So matching (a_1, b_1) and recursing on the rest loses nothing; by
    induction the sweep finds a maximum matching.
    """
    i = j = matched = 0
    while i < len(a) and j < len(b):
        if b[j] < a[i] - tol:
            j += 1
        elif b[j] > a[i] + tol:
            i += 1
        else:
            matched, i, j = matched + 1, i + 1, j + 1
    return matched


def matched_spikes(ref, test, tol: int) -> int:
    """Total size of the per-train maximum matchings with tolerance ``tol`` (steps).

    Exact shortcuts before the sweep: for ``tol == 0`` a match is a step where
    both trains spike; identical trains match all their spikes.
    """
    ref, test = _pair(ref, test)
    both = int((ref & test).sum())
    if tol == 0:
        return both
    differs = (ref != test).any(axis=1)  # (B, n): trains that need the sweep
    total = int(ref.sum(axis=1)[~differs].sum())
    for b, k in zip(*np.nonzero(differs)):
        total += max_matching(np.flatnonzero(ref[b, :, k]), np.flatnonzero(test[b, :, k]), tol)
    return total


def matched_fraction(ref, test, tolerances=TOLERANCES) -> dict:
    """Per tolerance (steps): ``{"ref": matched / reference spikes, "test": matched / test spikes}``.

    ``ref`` is the recall of the reference spikes, ``test`` the precision of
    the test spikes. With no spikes on a side the fraction is 1.0 if the
    other side is silent too, else 0.0.
    """
    ref_b, test_b = _pair(ref, test)
    n_ref, n_test = int(ref_b.sum()), int(test_b.sum())
    out = {}
    for tol in tolerances:
        m = matched_spikes(ref_b, test_b, tol)
        out[int(tol)] = dict(ref=_ratio(m, n_ref, n_test), test=_ratio(m, n_test, n_ref))
    return out


def _ratio(matched: int, total: int, other_total: int) -> float:
    if total:
        return matched / total
    return 1.0 if other_total == 0 else 0.0


# ------------------------------------------------------ optimal pairing
def optimal_pairs(ref_times, test_times, reach=None) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one pairing of spike times ``ref_times`` and ``test_times`` (1-D, any unit) with
    the least summed ``|t_test - t_ref|`` (as many pairs as the shorter list has spikes).

    Returns index arrays ``(i_ref, j_test)`` of the pairs, in ascending ``i_ref``; a pair
    further apart than ``reach`` (same unit; None: no limit) is dropped. Solved by
    `scipy.optimize.linear_sum_assignment` on the (test x ref) cost matrix, so among
    equally good pairings it picks the one the spike-train scores always picked.
    """
    from scipy.optimize import linear_sum_assignment

    ref, test = np.asarray(ref_times, dtype=np.float64), np.asarray(test_times, dtype=np.float64)
    if not (ref.size and test.size):
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    j, i = linear_sum_assignment(np.abs(test[:, None] - ref[None, :]))
    if reach is not None:
        near = np.abs(test[j] - ref[i]) <= reach
        i, j = i[near], j[near]
    order = np.argsort(i, kind="stable")
    return i[order], j[order]


def paired_errors(ref_times, test_times, reach=None) -> np.ndarray:
    """Signed errors ``t_test - t_ref`` of the `optimal_pairs` (ascending reference index)."""
    ref, test = np.asarray(ref_times, dtype=np.float64), np.asarray(test_times, dtype=np.float64)
    i, j = optimal_pairs(ref, test, reach)
    return test[j] - ref[i]


def unpaired(ref_times, test_times, reach=None) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the reference spikes (missing) and test spikes (extra) that
    `optimal_pairs` leaves without a partner."""
    i, j = optimal_pairs(ref_times, test_times, reach)
    missing, extra = np.ones(np.size(ref_times), bool), np.ones(np.size(test_times), bool)
    missing[i], extra[j] = False, False
    return missing, extra


# ------------------------------------------------------------ first spikes
def first_spike_steps(train) -> np.ndarray:
    """Step (1..T) of each train's first spike, (B, n); 0 where the train is silent."""
    s = _spikes(train)
    return np.where(s.any(axis=1), s.argmax(axis=1) + 1, 0)


def first_spike_errors(ref, test) -> dict:
    """First-spike-time error ``t_test - t_ref`` (steps) of trains that spike in both.

    Returns ``errors`` (int array over those trains, sample-major), ``both``,
    ``only_ref``, ``only_test`` (train counts), ``mean_abs``, ``max_abs`` and
    ``exact_fraction`` (share of ``both`` with error 0; 1.0 when ``both`` is 0).
    """
    ref, test = _pair(ref, test)
    t_ref, t_test = first_spike_steps(ref), first_spike_steps(test)
    both = (t_ref > 0) & (t_test > 0)
    errors = (t_test - t_ref)[both].astype(np.int64)
    return dict(errors=errors, both=int(both.sum()), only_ref=int(((t_ref > 0) & (t_test == 0)).sum()),
                only_test=int(((t_ref == 0) & (t_test > 0)).sum()),
                mean_abs=float(np.abs(errors).mean()) if errors.size else 0.0,
                max_abs=int(np.abs(errors).max(initial=0)),
                exact_fraction=float((errors == 0).mean()) if errors.size else 1.0)


# -------------------------------------------------------------- van Rossum
def exp_filter(train, tau: float) -> np.ndarray:
    """Causal exponential filter over steps: ``y[t] = y[t-1] * exp(-1/tau) + s[t]``.

    Same kernel as `models.losses.exp_filter`; ``tau`` is in steps.
    """
    s = _spikes(train).astype(np.float64)
    decay, y = np.exp(-1.0 / tau), np.zeros_like(s)
    acc = np.zeros(s.shape[::2])
    for t in range(s.shape[1]):
        acc = acc * decay + s[:, t]
        y[:, t] = acc
    return y


def van_rossum(ref, test, tau: float = 5.0) -> np.ndarray:
    """Van Rossum distance of every train, (B, n): ``sqrt(sum_t (f_ref - f_test)^2 / tau)``.

    ``f`` is `exp_filter` with time constant ``tau`` (steps), sampled once per
    step. One unmatched spike far from the end contributes
    ``1 / (tau (1 - exp(-2/tau)))`` to the square, which tends to 1/2 for
    large ``tau`` as in the continuous definition. Summed over neurons and
    averaged over samples, the squares equal `models.losses.van_rossum`.
    """
    ref, test = _pair(ref, test)
    diff = exp_filter(ref, tau) - exp_filter(test, tau)
    return np.sqrt((diff ** 2).sum(axis=1) / tau)


# ----------------------------------------------------------------- bundle
def compare(ref, test, tolerances=TOLERANCES, tau: float = 5.0) -> dict:
    """Every metric above for one node, as a JSON-ready dict.

    Keys: the `count_difference` keys; ``matched`` (tolerance -> fractions, see
    `matched_fraction`); ``first_spike`` (`first_spike_errors` without the
    array, plus ``histogram``: error in steps -> number of trains);
    ``van_rossum`` (``tau``, ``mean`` and ``max`` over trains).
    """
    ref, test = _pair(ref, test)
    first = first_spike_errors(ref, test)
    errors = first.pop("errors")
    values, counts = np.unique(errors, return_counts=True)
    first["histogram"] = {int(v): int(c) for v, c in zip(values, counts)}
    vr = van_rossum(ref, test, tau)
    return dict(count_difference(ref, test), matched=matched_fraction(ref, test, tolerances),
                first_spike=first,
                van_rossum=dict(tau=float(tau), mean=float(vr.mean()) if vr.size else 0.0,
                                max=float(vr.max(initial=0.0))))
