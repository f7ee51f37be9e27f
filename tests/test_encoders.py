"""Spike encoders: shapes, time convention, determinism, brighter-earlier, silence of zeros."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import SpikeportError
from toolchain.tasks import encoders

X = np.array([[0.0, 0.1, 0.25, 0.5, 0.8, 1.0],
              [1.0, 0.0, 0.6, 0.3, 0.05, 0.9]])
ALL = [("rate", {}), ("regular", {}), ("latency", {}), ("current", {})]


@pytest.mark.parametrize("name, kw", ALL)
def test_every_encoder_gives_batch_time_features(name, kw):
    out = encoders.encode(X, name=name, T=7, **kw)
    assert isinstance(out, np.ndarray) and out.shape == (2, 7, 6)
    assert out.dtype == (np.int32 if name == "current" else bool)


@pytest.mark.parametrize("name, kw", ALL)
def test_torch_input_gives_float32_tensor_with_the_same_values(name, kw):
    out = encoders.encode(torch.tensor(X), name=name, T=7, **kw)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert np.array_equal(out.numpy(), encoders.encode(X, name=name, T=7, **kw).astype(np.float32))


@pytest.mark.parametrize("name, kw", ALL)
def test_zero_features_never_spike(name, kw):
    out = encoders.encode(X, name=name, T=50, **kw)
    assert not out[0, :, 0].any() and not out[1, :, 1].any()


def test_rate_encoding_is_fixed_by_the_seed():
    a, b = encoders.rate_encode(X, 40, seed=3), encoders.rate_encode(X, 40, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, encoders.rate_encode(X, 40, seed=4))


def test_rate_encoding_of_a_prefix_is_the_prefix_whatever_the_block_size(monkeypatch):
    x = np.random.default_rng(0).random((11, 5))
    whole = encoders.rate_encode(x, 9, seed=1)
    monkeypatch.setattr(encoders, "_CHUNK", 3)
    assert np.array_equal(encoders.rate_encode(x, 9, seed=1), whole)
    assert np.array_equal(encoders.rate_encode(x[:4], 9, seed=1), whole[:4])


def test_rate_is_proportional_to_intensity():
    x = np.linspace(0, 1, 11)[None, :]
    rate = encoders.rate_encode(np.repeat(x, 200, axis=0), 50, max_rate=0.8).mean(axis=(0, 1))
    np.testing.assert_allclose(rate, 0.8 * x[0], atol=0.01)
    assert encoders.rate_encode(np.ones((1, 3)), 20, max_rate=1.0).all()


def test_regular_encoding_spikes_floor_of_T_times_rate_evenly_spaced():
    x = np.array([[0.2, 0.5, 1.0, 0.3]])
    out = encoders.regular_encode(x, 20, max_rate=0.5)
    assert out.sum(axis=1)[0].tolist() == [2, 5, 10, 3]  # floor(20 * 0.5 * x)
    assert np.flatnonzero(out[0, :, 2]).tolist() == list(range(1, 20, 2))  # rate 1/2: Lava steps 2, 4, ...
    assert np.flatnonzero(out[0, :, 0]).tolist() == [9, 19]  # rate 1/10: Lava steps 10 and 20


def test_latency_gives_one_spike_per_active_feature_brighter_earlier():
    x = np.linspace(0, 1, 21)[None, :]
    out = encoders.latency_encode(x, 11)
    counts = out.sum(axis=1)[0]
    assert counts[0] == 0 and np.all(counts[1:] == 1)
    index = out[0].argmax(axis=0)[1:]
    assert np.all(np.diff(index) <= 0)  # brighter -> same or earlier step
    assert index[-1] == 0 and index[0] == 10  # x = 1 at the first step, x = 0.05 at the last


def test_latency_follows_the_documented_formula_and_matches_latency_times():
    x = np.random.default_rng(1).random((4, 30))
    out = encoders.latency_encode(x, 16, t_min=2, t_max=12)
    times = encoders.latency_times(x, 16, t_min=2, t_max=12)
    np.testing.assert_allclose(times, 2 + (1 - x) * 10)
    assert np.array_equal(out.argmax(axis=1), np.floor(times + 0.5).astype(int))
    assert out.sum(axis=1).max() == 1


def test_latency_threshold_silences_dim_features():
    x = np.array([[0.1, 0.2, 0.3]])
    assert encoders.latency_encode(x, 10, threshold=0.2).sum(axis=1).tolist() == [[0, 0, 1]]
    assert np.isinf(encoders.latency_times(x, 10, threshold=0.2)[0, :2]).all()


def test_current_encoding_repeats_the_quantized_value_every_step():
    out = encoders.current_encode(np.array([[0.0, 0.5, 1.0]]), 4, bits=8)
    assert out[0].tolist() == [[0, 128, 255]] * 4


@pytest.mark.parametrize("call, match", [
    (lambda: encoders.rate_encode(np.array([[0.5, 1.2]]), 5), r"\[0, 1\]"),
    (lambda: encoders.rate_encode(np.array([[np.nan]]), 5), r"\[0, 1\]"),
    (lambda: encoders.rate_encode(np.ones(4), 5), "shape"),
    (lambda: encoders.rate_encode(X, 0), "T=0"),
    (lambda: encoders.rate_encode(X, 5, max_rate=2.0), "max_rate"),
    (lambda: encoders.latency_encode(X, 5, t_max=9), "t_max"),
    (lambda: encoders.current_encode(X, 5, bits=32), "bits"),
    (lambda: encoders.encode(X, name="poisson", T=5), "unknown encoding 'poisson'"),
    (lambda: encoders.encode(X, name="latency", T=5, max_rate=0.5), "max_rate"),
])
def test_bad_inputs_raise_spikeport_errors(call, match):
    with pytest.raises(SpikeportError, match=match):
        call()
