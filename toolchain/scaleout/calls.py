"""One unit of scale-out work, a `Call`, and what runs it in a worker: `execute`.

A call is a top-level function with its arguments and a name ("shard 2/4
(samples 50..74)", "run h16-seed3") that every message about it starts with.
`execute` runs it where it lands (a local worker process, a Ray task) and
returns ``("ok", value)`` or ``("error", one line)``: a `SpikeportError`, or any
other exception the function raises, is deterministic, so a pool reports it
and does not retry it. Only a lost worker (killed, its node gone) is retried.

`environment` is what every call checks first on a cluster: the versions of
spikeport and the packages its numbers depend on must be the driver's, or the
call fails with one line naming the node and both versions.
"""
from __future__ import annotations

import platform
import socket
from dataclasses import dataclass
from typing import Callable, Optional

from models.errors import SpikeportError

PACKAGES = ("spikeport", "numpy", "torch", "lava-nc", "ray")


@dataclass(frozen=True)
class Call:
    """``fn(*args)`` under ``name``; ``fn`` must be importable by its module path (picklable)."""

    name: str
    fn: Callable
    args: tuple = ()


def environment() -> dict:
    """Python and package versions of this process (``None`` for a package not installed)."""
    from toolchain.verify.report import versions  # lazy: the worker side only

    return {"python": platform.python_version(), **versions(PACKAGES)}


def check_environment(expected: Optional[dict]) -> None:
    """A one-line error when this node's `environment` differs from ``expected`` (the driver's)."""
    if expected is None:
        return
    here = environment()
    diff = [f"{k} {here.get(k)} (driver: {v})" for k, v in expected.items() if here.get(k) != v]
    if diff:
        raise SpikeportError(f"node {socket.gethostname()}: installed versions differ from the driver's: "
                             f"{', '.join(diff)}; install the same spikeport on every node")


def execute(call: Call, expected_env: Optional[dict] = None) -> tuple:
    """Run ``call`` here: ``("ok", value)`` or ``("error", one line)`` (never raises but for
    KeyboardInterrupt/SystemExit, which end the worker and count as a lost worker)."""
    try:
        check_environment(expected_env)
        return "ok", call.fn(*call.args)
    except SpikeportError as exc:
        return "error", one_line(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug is deterministic too: reported, not retried
        return "error", f"{type(exc).__name__}: {one_line(str(exc))}"


def one_line(text: str) -> str:
    """``text`` with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def unwrap(call: Call, outcome: tuple):
    """The value of an ``execute`` outcome, or a `SpikeportError` naming the call."""
    status, value = outcome
    if status != "ok":
        raise SpikeportError(f"{call.name}: {value}")
    return value
