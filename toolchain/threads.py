"""The one place a run's thread count is set: torch's intra-op threads and numba's parallel loops.

Both libraries default to one thread per core. A run told ``--threads N`` must
hold to it in both: numba's OpenMP workers spin after each parallel region, and
on a machine whose cores are busy with other jobs (or with torch's own
threads) a second team of spinning threads can make a kernel several times
slower rather than faster.
"""
from __future__ import annotations


def set_threads(n: int) -> None:
    """Run torch and numba's parallel kernels on ``n`` threads (numba: at most the
    ``NUMBA_NUM_THREADS`` it was started with)."""
    import torch  # lazy: the CLI imports its commands before it knows whether torch is needed

    n = int(n)
    torch.set_num_threads(n)
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
