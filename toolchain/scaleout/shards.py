"""Sharded engine runs: split the sample axis into ordered shards, run each through the one
engine dispatch (`toolchain.engines.run`), place the results by index.

Every engine treats the samples of a batch independently (no state crosses
the batch axis), so the joined result is the 1-process result: the same
``{"<node>/<var>": (B, T, n)}`` arrays, bit for bit in fixed-point arithmetic
(tests/test_scaleout.py checks s, v, u and verify's metrics). Time is the
engines' convention: axis 1, index k is step t = k + 1.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from toolchain import engines
from toolchain.scaleout.calls import Call


def bounds(batch: int, shards: int) -> list:
    """``[(lo, hi), ...]``: ``shards`` contiguous ordered ranges covering samples 0..batch-1
    (at most ``batch`` of them; sizes differ by at most one)."""
    edges = np.linspace(0, batch, max(1, min(shards, batch)) + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:])]


def shard_calls(engine: str, ir, x, record: Optional[Sequence[str]], model, options: dict, shards: int) -> list:
    """One `Call` of `run_shard` per shard of ``x`` (B, T, N), named "ENGINE shard i/n (samples lo..hi-1)"."""
    x = np.asarray(x)
    parts = bounds(x.shape[0], shards)
    return [Call(f"{engine} shard {i + 1}/{len(parts)} (samples {lo}..{hi - 1})", run_shard,
                 (engine, ir, x[lo:hi], None if record is None else list(record), model, options))
            for i, (lo, hi) in enumerate(parts)]


def run_shard(engine: str, ir, x, record, model, options: dict) -> dict:
    """One shard, in a worker: `toolchain.engines.run` (Lava: in one child, ``workers=1``)."""
    return engines.run(engine, ir, x, record, model=model, **options)


def join(parts: list) -> dict:
    """Shard results in shard order -> one result, each array concatenated on the sample axis."""
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
