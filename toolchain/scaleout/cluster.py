"""`RayPool`: calls as Ray tasks on a cluster (``--cluster local | auto | HOST:PORT``).

Ray is imported only here, and this module only when ``--cluster`` is given
(install it with ``pip install 'spikeport[ray]'``). ``local`` starts a private
Ray instance on this machine for the command and stops it afterwards; ``auto``
joins the cluster this machine belongs to (``RAY_ADDRESS``, or a head started
here); ``HOST:PORT`` is the head's GCS address (``ray://HOST:PORT`` a Ray
client server). When Ray is already initialised in this process (a test, a
notebook) that connection is used and left open.

Every task first checks that its node runs the driver's versions
(`toolchain.scaleout.calls.check_environment`). A task whose worker or node
is lost is rerun by Ray (``max_retries``); an error the call raises comes
back as a value and is not retried. A Lava run inside a task dies with its
worker (`backends.lava.runner`), so a lost worker leaves no Lava process,
shared-memory segment or job folder behind on its node.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from typing import Callable, Optional

from models.errors import SpikeportError
from toolchain.scaleout.calls import environment, execute, one_line, unwrap

RETRIES = 2  # Ray reruns a task whose worker or node died at most this many more times
CONNECT_TIMEOUT = 5.0  # seconds to reach HOST:PORT before Ray is asked to connect


def import_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SpikeportError("--cluster needs Ray, which is not installed: pip install 'spikeport[ray]'") from None
    return ray


class RayPool:
    """A Ray connection and the tasks of `map`. Use as a context manager."""

    kind = "ray"

    def __init__(self, address: str, workers: Optional[int] = None):
        self.address = address
        self.ray = import_ray()
        self._owned, self._temp = False, None
        if not self.ray.is_initialized():
            if address == "local":  # its own session folder (short: Ray's socket paths must fit 107 bytes)
                self._temp = tempfile.mkdtemp(prefix="spikeport-ray-", dir="/tmp")
            self._owned = True
            _connect(self.ray, address, workers, self._temp)
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.size = workers or max(1, cpus)
        self._task = self.ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(execute)
        self.attempts: dict = {}  # Ray counts its own retries; not known here

    def __enter__(self) -> "RayPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def map(self, calls: list, on_result: Optional[Callable] = None) -> list:
        """The value of every call (one Ray task each), in call order; ``on_result(index, value)``
        as each arrives. A call's error, or a task Ray could not complete (its worker lost more
        than `RETRIES` times), is a `SpikeportError` naming the call; the other tasks are cancelled."""
        env = environment()
        refs = {self._task.remote(call, env): i for i, call in enumerate(calls)}
        results, waiting = {}, list(refs)
        try:
            while waiting:
                done, waiting = self.ray.wait(waiting, num_returns=1)
                for ref in done:
                    index = refs[ref]
                    results[index] = unwrap(calls[index], self._get(calls[index], ref))
                    if on_result is not None:
                        on_result(index, results[index])
        except BaseException:
            for ref in waiting:
                self.ray.cancel(ref, force=True)
            raise
        return [results[i] for i in range(len(calls))]

    def _get(self, call, ref) -> tuple:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # failed in Ray's own machinery: not retried
            raise SpikeportError(f"{call.name}: Ray could not run the task ({_first_part(exc)})") from None
        except self.ray.exceptions.RayError as exc:  # worker, node or object lost, also after the retries
            raise SpikeportError(f"{call.name}: its worker or node was lost, {RETRIES} retries included "
                                 f"({type(exc).__name__}: {_first_part(exc)})") from None

    def close(self) -> None:
        """Disconnect (and stop a ``local`` instance, removing its session folder) if this pool
        connected."""
        if self._owned and self.ray.is_initialized():
            self.ray.shutdown()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
        self._owned, self._temp = False, None


def _connect(ray, address: str, workers: Optional[int], temp: Optional[str] = None) -> None:
    """``ray.init`` for ``address`` (``temp``: the session folder of a ``local`` instance); any
    failure (unreachable, refused, authentication, version) is one line naming the address."""
    if address not in ("local", "auto") and not address.startswith("ray://"):
        _check_reachable(address)
    options = dict(include_dashboard=False, log_to_driver=False, logging_level="error")
    if address == "local" and workers:
        options["num_cpus"] = workers
    if temp is not None:
        options["_temp_dir"] = temp
    native = []
    try:
        with _native_stderr(native, address != "local"):
            ray.init(address=address, **options)
    except Exception as exc:  # noqa: BLE001 - Ray raises many types here (ConnectionError, RuntimeError, ...)
        causes = [exc, *([exc.__cause__] if exc.__cause__ else [])]
        why = "; ".join(dict.fromkeys(filter(None, [*(f"{type(e).__name__}: {_first_part(e)}" for e in causes),
                                                    *native[-1:]])))
        hint = ("; the cluster uses token authentication: set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN "
                "or ~/.ray/auth_token), see docs/scale-out.md") if re.search(r"Unauthenticated|AuthToken", why) else ""
        raise SpikeportError(f"--cluster {address}: cannot connect to Ray ({why}){hint}") from None


def _first_part(exc: BaseException) -> str:
    """An exception's message up to any traceback it quotes, on one line, at most 200 characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split("Traceback (most recent call last)")[0]
    return one_line(text).rstrip(" :.")[:200]


@contextlib.contextmanager
def _native_stderr(lines: list, capture: bool):
    """While connecting, hold back what Ray's C++ core writes on file descriptor 2 (a retry
    log line per second) and append its last message to ``lines``. A ``local`` start is not
    captured: the processes it starts inherit the descriptor."""
    if not capture:
        yield
        return
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace").strip().splitlines()
            if text:
                lines.append(one_line(re.sub(r"^\[[^]]*\] \S+:\d+: ", "", text[-1]))[:300])


def _check_reachable(address: str) -> None:
    """A one-line error unless ``HOST:PORT`` accepts a TCP connection within `CONNECT_TIMEOUT`."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SpikeportError(f"--cluster {address!r} is not local, auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise SpikeportError(f"--cluster {address}: cannot connect ({one_line(str(exc)) or type(exc).__name__})") \
            from None
