"""Scale-out: run engines and sweeps on N local worker processes or on a Ray cluster.

``--workers N`` (local processes, no Ray needed) and ``--cluster ADDRESS``
(``local``, ``auto`` or ``HOST:PORT``; Ray is imported only then) open a pool
for one command (`session`). Both pools have one interface: ``size`` (how
many calls run at once), ``map(calls, on_result=None)`` (values in call
order) and ``close()``:

* `toolchain.scaleout.local.LocalPool`: spawned worker processes;
* `toolchain.scaleout.cluster.RayPool`: one Ray task per call.

`run` is the sharded engine dispatch: with a pool active it splits the sample
axis into ``pool.size`` ordered shards (`toolchain.scaleout.shards`), runs
each through `toolchain.engines.run` and joins them by index; without one it
is `toolchain.engines.run`. Results are identical either way. A shard whose
worker is lost is retried; an error is not, and comes back as one line naming
the shard. See docs/scale-out.md.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Optional, Sequence

from models.errors import SpikeportError
from toolchain import engines
from toolchain.scaleout import shards

_ACTIVE = contextvars.ContextVar("spikeport_pool", default=None)


def open_pool(workers: Optional[int] = None, cluster: Optional[str] = None):
    """The pool for ``--workers``/``--cluster``: a `RayPool` for a cluster address (``workers``
    calls at once, default: the cluster's CPUs), a `LocalPool` for ``workers`` > 1, else None
    (run in this process)."""
    if workers is not None and workers < 1:
        raise SpikeportError(f"--workers: workers={workers} is outside [1, inf)")
    if cluster is not None:
        if not str(cluster).strip():
            raise SpikeportError("--cluster '' is empty; expected local, auto or HOST:PORT")
        from toolchain.scaleout.cluster import RayPool  # lazy: Ray is imported only for --cluster

        return RayPool(str(cluster).strip(), workers)
    if workers is not None and workers > 1:
        from toolchain.scaleout.local import LocalPool  # lazy: multiprocessing machinery on use only

        return LocalPool(workers)
    return None


@contextlib.contextmanager
def session(workers: Optional[int] = None, cluster: Optional[str] = None):
    """Open the pool of ``workers``/``cluster`` (`open_pool`), make it the `active` one while the
    block runs, close it afterwards (workers stopped, a ``local`` Ray stopped). Yields the pool
    (or None)."""
    pool = open_pool(workers, cluster)
    try:
        with using(pool):
            yield pool
    finally:
        if pool is not None:
            pool.close()


@contextlib.contextmanager
def using(pool):
    """Make ``pool`` (an open pool, or None: this process) the `active` one while the block runs;
    the caller keeps it open and closes it."""
    token = _ACTIVE.set(pool)
    try:
        yield pool
    finally:
        _ACTIVE.reset(token)


def active():
    """The pool of the enclosing `session`, or None."""
    return _ACTIVE.get()


def run(engine: str, ir, x, record: Optional[Sequence[str]] = None, *, model=None, pool=None, **options) -> dict:
    """`toolchain.engines.run` sharded over ``pool`` (default: the `active` one; None: this
    process). Same arguments and result ``{"<node>/<var>": (B, T, n)}``, identical values."""
    pool = pool if pool is not None else active()
    engines.check_name(engine)
    if pool is None:
        return engines.run(engine, ir, x, record, model=model, **options)
    calls = shards.shard_calls(engine, ir, x, record, model, options, pool.size)
    return shards.join(pool.map(calls))
