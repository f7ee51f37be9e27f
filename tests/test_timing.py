"""Spike-timing metrics: counts, optimal matching within a tolerance, first spikes, van Rossum."""
import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from models import losses
from toolchain.verify import timing


def train(T, n, spikes, B=1):
    """A (B, T, n) int8 train with spikes at the given (sample, step index, neuron) triples."""
    s = np.zeros((B, T, n), dtype=np.int8)
    for b, k, i in spikes:
        s[b, k, i] = 1
    return s


def brute_force_matching(a, b, tol):
    """Maximum one-to-one matching with |a_i - b_j| <= tol via the Hungarian algorithm."""
    if not len(a) or not len(b):
        return 0
    ok = np.abs(np.subtract.outer(a, b)) <= tol
    rows, cols = linear_sum_assignment(-ok.astype(float))
    return int(ok[rows, cols].sum())


def test_greedy_matching_equals_the_optimal_assignment_on_random_small_cases():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        T = int(rng.integers(1, 16))
        a = np.flatnonzero(rng.random(T) < rng.random())
        b = np.flatnonzero(rng.random(T) < rng.random())
        tol = int(rng.integers(0, 4))
        assert timing.max_matching(a, b, tol) == brute_force_matching(a, b, tol), (a, b, tol)


def test_matching_is_one_to_one_not_nearest_neighbour():
    # two reference spikes, one test spike within reach of both: only one match
    assert timing.max_matching([3, 4], [4], 1) == 1
    # a greedy "nearest" choice (4 with 4) would leave 3 or 5 unmatched; the optimum matches all
    assert timing.max_matching([3, 5], [4, 6], 1) == 2


def test_matched_fraction_per_tolerance_over_whole_trains():
    ref = train(10, 2, [(0, 2, 0), (0, 5, 0), (0, 1, 1)])
    test = train(10, 2, [(0, 2, 0), (0, 7, 0), (0, 2, 1), (0, 9, 1)])
    m = timing.matched_fraction(ref, test)
    assert m[0] == dict(ref=1 / 3, test=1 / 4)  # only step index 2 of neuron 0
    assert m[1] == dict(ref=2 / 3, test=2 / 4)  # + neuron 1 shifted by one step
    assert m[2] == dict(ref=1.0, test=3 / 4)  # + neuron 0 shifted by two steps


def test_matched_spikes_on_batches_equal_the_sum_of_per_train_brute_force():
    rng = np.random.default_rng(1)
    ref = (rng.random((4, 12, 5)) < 0.3).astype(np.int8)
    test = ref.copy()
    test[rng.random(test.shape) < 0.15] ^= 1
    for tol in (0, 1, 2, 3):
        expected = sum(brute_force_matching(np.flatnonzero(ref[b, :, k]), np.flatnonzero(test[b, :, k]), tol)
                       for b, k in itertools.product(range(4), range(5)))
        assert timing.matched_spikes(ref, test, tol) == expected


def test_silent_trains_match_fully_and_extra_spikes_against_silence_do_not():
    silent = np.zeros((1, 5, 1))
    assert timing.matched_fraction(silent, silent, (1,))[1] == dict(ref=1.0, test=1.0)
    assert timing.matched_fraction(silent, train(5, 1, [(0, 1, 0)]), (1,))[1] == dict(ref=0.0, test=0.0)


def test_count_difference_counts_each_train_separately():
    ref = train(6, 2, [(0, 0, 0), (0, 1, 0), (0, 3, 1)])
    test = train(6, 2, [(0, 4, 0), (0, 3, 1), (0, 5, 1)])
    assert timing.count_difference(ref, test) == dict(ref_spikes=3, test_spikes=3, abs_count_diff=2,
                                                      same_count_fraction=0.0)


def test_first_spike_errors_are_test_minus_reference_in_steps_and_count_one_sided_trains():
    ref = train(8, 4, [(0, 2, 0), (0, 5, 1), (0, 1, 2)])
    test = train(8, 4, [(0, 3, 0), (0, 4, 1), (0, 6, 1), (0, 0, 3)])
    first = timing.first_spike_errors(ref, test)
    assert list(first["errors"]) == [1, -1]
    assert (first["both"], first["only_ref"], first["only_test"]) == (2, 1, 1)
    assert first["mean_abs"] == 1.0 and first["max_abs"] == 1 and first["exact_fraction"] == 0.0


def test_first_spike_steps_are_numbered_from_one():
    assert timing.first_spike_steps(train(4, 2, [(0, 0, 0)])).tolist() == [[1, 0]]


def test_van_rossum_is_zero_for_identical_trains_and_symmetric():
    rng = np.random.default_rng(2)
    a, b = (rng.random((3, 20, 4)) < 0.2), (rng.random((3, 20, 4)) < 0.2)
    assert np.all(timing.van_rossum(a, a) == 0)
    assert np.allclose(timing.van_rossum(a, b), timing.van_rossum(b, a))


def test_van_rossum_of_one_unmatched_spike_follows_the_discrete_kernel_sum():
    tau, T = 4.0, 400
    d = timing.van_rossum(train(T, 1, [(0, 0, 0)]), np.zeros((1, T, 1)), tau)
    assert d[0, 0] ** 2 == pytest.approx(1 / (tau * (1 - np.exp(-2 / tau))))
    # large tau: the continuous value 1/2 per unmatched spike
    d = timing.van_rossum(train(20000, 1, [(0, 0, 0)]), np.zeros((1, 20000, 1)), 1000.0)
    assert d[0, 0] ** 2 == pytest.approx(0.5, rel=2e-3)


def test_van_rossum_squares_equal_the_training_loss():
    rng = np.random.default_rng(3)
    a, b = (rng.random((3, 15, 4)) < 0.3), (rng.random((3, 15, 4)) < 0.3)
    loss = losses.van_rossum(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), 3.0)
    assert (timing.van_rossum(a, b, 3.0) ** 2).sum(axis=1).mean() == pytest.approx(float(loss))


def test_van_rossum_grows_with_the_shift_of_a_spike():
    ref = train(30, 1, [(0, 5, 0)])
    d = [timing.van_rossum(ref, train(30, 1, [(0, 5 + k, 0)]))[0, 0] for k in range(4)]
    assert d[0] == 0 and d[1] < d[2] < d[3]


def test_compare_bundles_every_metric_as_json_ready_values():
    import json

    ref = train(10, 2, [(0, 2, 0), (0, 5, 1)])
    test = train(10, 2, [(0, 3, 0)])
    out = timing.compare(ref, test)
    json.dumps(out)
    assert out["first_spike"]["histogram"] == {1: 1} and out["first_spike"]["only_ref"] == 1
    assert out["matched"][1]["ref"] == 0.5 and out["van_rossum"]["tau"] == 5.0


def test_trains_of_different_shapes_are_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        timing.matched_fraction(np.zeros((1, 5, 2)), np.zeros((1, 6, 2)))


# ------------------------------------------------------ optimal pairing
def brute_force_pairing_cost(ref, test):
    """The least summed |t_test - t_ref| over one-to-one pairings of min(len) pairs, by enumeration."""
    short, long_ = (ref, test) if len(ref) <= len(test) else (test, ref)
    return min(sum(abs(s - long_[j]) for s, j in zip(short, perm))
               for perm in itertools.permutations(range(len(long_)), len(short)))


def test_optimal_pairs_are_one_to_one_and_minimise_the_summed_time_difference():
    rng = np.random.default_rng(4)
    for _ in range(300):
        ref = np.sort(rng.uniform(0, 20, rng.integers(0, 5)))
        test = np.sort(rng.uniform(0, 20, rng.integers(0, 5)))
        i, j = timing.optimal_pairs(ref, test)
        assert len(i) == len(set(i)) == len(set(j)) == min(len(ref), len(test))
        assert list(i) == sorted(i)
        if len(i):
            assert np.abs(test[j] - ref[i]).sum() == pytest.approx(brute_force_pairing_cost(ref, test))


def test_paired_errors_are_signed_test_minus_reference_and_reach_drops_far_pairs():
    ref, test = [1.0, 5.0, 20.0], [2.0, 4.5, 9.0]
    assert timing.paired_errors(ref, test).tolist() == [1.0, -0.5, -11.0]
    assert timing.paired_errors(ref, test, reach=2.0).tolist() == [1.0, -0.5]
    missing, extra = timing.unpaired(ref, test, reach=2.0)
    assert missing.tolist() == [False, False, True] and extra.tolist() == [False, False, True]


def test_unpaired_spikes_of_unequal_trains_are_the_ones_left_over():
    missing, extra = timing.unpaired([3.0], [0.0, 3.2, 9.0])
    assert missing.tolist() == [False] and extra.tolist() == [True, False, True]
    i, j = timing.optimal_pairs([], [1.0, 2.0])
    assert i.size == j.size == 0
    assert timing.unpaired([], [1.0])[1].tolist() == [True]


def test_optimal_pairs_choose_as_the_assignment_on_test_by_reference_costs_does():
    """The pairing the spike-train scores computed inline (linear_sum_assignment on |out - target|,
    rows = emitted spikes), so moving them onto `optimal_pairs` changes no number."""
    rng = np.random.default_rng(5)
    for _ in range(300):
        ref = np.sort(rng.integers(0, 12, rng.integers(1, 6))).astype(float)
        test = np.sort(rng.integers(0, 12, rng.integers(1, 6))).astype(float)
        rows, cols = linear_sum_assignment(np.abs(test[:, None] - ref[None, :]))
        i, j = timing.optimal_pairs(ref, test)
        assert sorted(zip(cols, rows)) == list(zip(i, j))
