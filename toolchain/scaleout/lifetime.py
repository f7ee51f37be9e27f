"""Process lifetime: a process that dies with its parent (Linux), for workers and their children.

The kernel sends a process its parent-death signal when the thread that
started it exits; `die_with_parent` asks for SIGKILL, then checks that the
parent did not die before the request (the race every user of the signal
must close). Elsewhere than Linux it does nothing, and workers rely on the
end-of-file of their socket instead.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from typing import Optional

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: Optional[int] = None) -> None:
    """Have the kernel SIGKILL this process when its parent dies; exit at once if ``parent``
    (the pid that started this process) is already gone."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(3)
