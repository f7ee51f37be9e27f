"""Spike encoders: features in [0, 1] ``(B, N)`` -> input spikes ``(B, T, N)``.

Time convention (the one every spikeport engine shares): the output's axis 1
is time in steps; index ``k`` is Lava time step ``k + 1``, so index 0 is the
first step a network sees. Spike *times* (`latency_times`) are in steps too,
counted the same way: a spike at time ``t`` lands at index ``floor(t + 0.5)``.

All encoders are deterministic (the stochastic one for a given seed). A
numpy input gives a numpy output (bool for binary spikes, int32 for graded
values); a torch input gives a float32 torch tensor on the same device, as
the simulator consumes it. Features outside [0, 1] are an error, never clipped.

- `rate_encode`: Bernoulli spikes, probability ``max_rate * x`` per step.
- `regular_encode`: the same mean rate without noise, evenly spaced spikes.
- `latency_encode` / `latency_times`: one spike per feature, brighter earlier.
- `current_encode`: a graded value every step (inputs with num_message_bits > 0).
"""
from __future__ import annotations

import inspect

import numpy as np

from models.errors import SpikeportError

_CHUNK = 1024  # samples per block of random draws (bounds memory, not the result)


def _check(x, T: int | None = None) -> np.ndarray:
    """``x`` as a float64 numpy array (B, N) with values in [0, 1]; ``T`` a positive step count."""
    arr = np.asarray(x.detach().cpu() if _is_torch(x) else x, dtype=np.float64)
    if arr.ndim != 2:
        raise SpikeportError(f"encoder: input shape {arr.shape} must be (batch, features)")
    if not np.all(np.isfinite(arr)):
        raise SpikeportError(f"encoder: features must lie in [0, 1], got {np.sum(~np.isfinite(arr))} "
                             f"NaN or infinite values")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise SpikeportError(f"encoder: features must lie in [0, 1], got range [{arr.min():g}, {arr.max():g}]")
    if T is not None and (int(T) != T or T < 1):
        raise SpikeportError(f"encoder: T={T} must be a positive number of steps")
    return arr


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _like(x, out: np.ndarray):
    """``out`` as ``x``'s kind: numpy unchanged, torch as float32 on ``x``'s device."""
    if not _is_torch(x):
        return out
    import torch

    return torch.as_tensor(out, dtype=torch.float32, device=x.device)


def _blocks(n: int):
    """Consecutive slices of at most ``_CHUNK`` samples covering ``range(n)``."""
    return (slice(i, i + _CHUNK) for i in range(0, n, _CHUNK))


def _check_rate(max_rate: float) -> None:
    if not 0.0 <= max_rate <= 1.0:
        raise SpikeportError(f"encoder: max_rate={max_rate} is outside [0, 1] spikes per step")


def rate_encode(x, T: int, max_rate: float = 0.5, seed: int = 0):
    """Bernoulli (Poisson-like) spikes: each step, feature n spikes with probability ``max_rate * x[n]``.

    The expected spike count is ``T * max_rate * x``. Draws come from
    ``numpy.random.default_rng(seed)`` in (B, T, N) order, so the result is
    fixed by the seed and ``rate_encode(x[:k])`` equals ``rate_encode(x)[:k]``.
    """
    arr = _check(x, T)
    _check_rate(max_rate)
    rng = np.random.default_rng(seed)
    p = (max_rate * arr).astype(np.float32)[:, None, :]
    out = np.empty((len(arr), int(T), arr.shape[1]), dtype=bool)
    for block in _blocks(len(arr)):
        draws = rng.random((len(p[block]), int(T), arr.shape[1]), dtype=np.float32)
        out[block] = draws < p[block]
    return _like(x, out)


def regular_encode(x, T: int, max_rate: float = 0.5):
    """Evenly spaced spikes at rate ``r = max_rate * x`` (no noise).

    Feature n has emitted ``floor(t * r + 1e-9)`` spikes by Lava step t, so it
    spikes at step t when that count goes up; over T steps it spikes
    ``floor(T * r)`` times, first at Lava step ``ceil(1 / r)`` (index ``ceil(1 / r) - 1``).
    """
    arr = _check(x, T)
    _check_rate(max_rate)
    steps = np.arange(int(T) + 1, dtype=np.float64)[None, :, None]
    rate = (max_rate * arr)[:, None, :]
    out = np.empty((len(arr), int(T), arr.shape[1]), dtype=bool)
    for block in _blocks(len(arr)):
        out[block] = np.diff(np.floor(steps * rate[block] + 1e-9), axis=1) > 0
    return _like(x, out)


def latency_times(x, T: int, t_min: float = 0.0, t_max: float | None = None, threshold: float = 0.0):
    """Continuous time-to-first-spike in steps: ``t = t_min + (1 - x) * (t_max - t_min)``.

    ``t_max`` defaults to ``T - 1`` (the last step index), so x = 1 fires at
    ``t_min`` and x just above ``threshold`` near ``t_max``. Features with
    ``x <= threshold`` never fire: their time is ``inf``.
    """
    arr = _check(x, T)
    t_max = float(T - 1 if t_max is None else t_max)
    if not 0.0 <= t_min <= t_max <= T - 1:
        raise SpikeportError(f"latency encoder: need 0 <= t_min={t_min} <= t_max={t_max} <= T-1={T - 1}")
    times = t_min + (1.0 - arr) * (t_max - t_min)
    return _like(x, np.where(arr > threshold, times, np.inf))


def latency_encode(x, T: int, t_min: float = 0.0, t_max: float | None = None, threshold: float = 0.0):
    """One spike per feature at step index ``floor(latency_times(x) + 0.5)``; silent if ``x <= threshold``.

    Brighter features fire earlier; the rounding is half-up, so index =
    ``floor(t_min + (1 - x) * (t_max - t_min) + 0.5)``.
    """
    times = np.asarray(latency_times(_check(x), T, t_min, t_max, threshold))
    fires = np.isfinite(times)
    index = np.floor(np.where(fires, times, 0.0) + 0.5).astype(np.int64)
    out = (np.arange(int(T))[None, :, None] == index[:, None, :]) & fires[:, None, :]
    return _like(x, out)


def current_encode(x, T: int, bits: int = 8):
    """A graded input: every step carries the integer ``floor(x * (2**bits - 1) + 0.5)``.

    For input ports with ``num_message_bits = bits`` (1..24); a zero value is
    no event. A numpy output is int32.
    """
    arr = _check(x, T)
    if int(bits) != bits or not 1 <= bits <= 24:
        raise SpikeportError(f"current encoder: bits={bits} is outside 1..24")
    values = np.floor(arr * (2 ** int(bits) - 1) + 0.5).astype(np.int32)
    return _like(x, np.repeat(values[:, None, :], int(T), axis=1))


ENCODERS = {"rate": rate_encode, "regular": regular_encode, "latency": latency_encode,
            "current": current_encode}


def encode(x, name: str, **kw):
    """Encode with the encoder called ``name`` (one of `ENCODERS`); keywords passed on.

    This is how a checkpoint's ``encoding`` dict (``{"name": ..., "T": ..., ...}``)
    is replayed: ``encode(x, **encoding)``.
    """
    if name not in ENCODERS:
        raise SpikeportError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODERS)}")
    encoder = ENCODERS[name]
    try:
        inspect.signature(encoder).bind(x, **kw)
    except TypeError as exc:
        raise SpikeportError(f"encoding {name!r}: {exc}") from None
    return encoder(x, **kw)
