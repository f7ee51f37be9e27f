"""`LocalPool`: N worker processes on this machine, no Ray needed.

Each worker is a fresh, exec'd Python process (no state forked from the
driver, so torch and Lava start clean, and the driver's main script is never
re-imported), connected by a socket pair; it takes the driver's import path,
then runs one `Call` at a time and sends back its `execute` outcome (plain
pickle). The driver hands out calls in order and keeps each result at its
call's index.

Faults: a worker that dies while holding a call (killed, out of memory) is
replaced and the call is run again, at most `RETRIES` more times; an error the
call raises is not retried (`toolchain.scaleout.calls`). Workers die with the
driver (Linux parent-death signal, and an end-of-file on their socket), and a
Lava run inside a worker dies with the worker (`backends.lava.runner`).
"""
from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Callable, Optional

from models.errors import SpikeportError
from toolchain.scaleout.calls import Call, execute, one_line, unwrap
from toolchain.scaleout.lifetime import die_with_parent

RETRIES = 2  # extra attempts of a call whose worker was lost
REPO_ROOT = Path(__file__).resolve().parents[2]
_WORKER_CODE = ("import sys; from toolchain.scaleout.local import worker_main; "
                "worker_main(int(sys.argv[1]), int(sys.argv[2]))")


class LocalPool:
    """``workers`` local processes; `map` runs calls on them. Use as a context manager."""

    kind = "local"

    def __init__(self, workers: int):
        if workers < 1:
            raise SpikeportError(f"--workers: workers={workers} is outside [1, inf)")
        self.size = workers
        self._workers: list = []
        self.attempts: dict = {}  # call name -> times it was started (last map)

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def map(self, calls: list, on_result: Optional[Callable] = None) -> list:
        """The value of every call, in call order. ``on_result(index, value)`` is called as each
        arrives. A call's error, or a call whose worker was lost more than `RETRIES` times, is a
        `SpikeportError` naming the call; the other workers are then stopped."""
        pending, results, busy = deque(range(len(calls))), {}, {}
        self.attempts = {c.name: 0 for c in calls}
        try:
            while len(results) < len(calls):
                self._hand_out(calls, pending, busy)
                for worker in _ready(busy):
                    index = busy.pop(worker)
                    outcome = worker.receive()
                    if outcome is None:
                        self._lost(worker, calls[index], pending, index)
                        continue
                    results[index] = unwrap(calls[index], outcome)
                    if on_result is not None:
                        on_result(index, results[index])
        except BaseException:
            for worker in busy:
                self._drop(worker)
            raise
        return [results[i] for i in range(len(calls))]

    def _hand_out(self, calls: list, pending: deque, busy: dict) -> None:
        for worker in [w for w in self._workers if w not in busy and w.process.poll() is not None]:
            self._drop(worker)  # died while idle
        idle = [w for w in self._workers if w not in busy]
        while pending and len(busy) < self.size:
            worker = idle.pop() if idle else self._start()
            index = pending.popleft()
            self.attempts[calls[index].name] += 1
            try:
                worker.send(calls[index])
            except OSError:  # died between the check and the send
                self._lost(worker, calls[index], pending, index)
                continue
            busy[worker] = index

    def _lost(self, worker, call: Call, pending: deque, index: int) -> None:
        self._drop(worker)
        if self.attempts[call.name] > RETRIES:
            raise SpikeportError(f"{call.name}: its worker was lost {self.attempts[call.name]} times "
                                 f"(exit code {worker.process.returncode}); not retried again")
        pending.appendleft(index)

    def _start(self) -> "_Worker":
        worker = _Worker()
        self._workers.append(worker)
        return worker

    def _drop(self, worker) -> None:
        worker.stop(kill=True)
        with contextlib.suppress(ValueError):
            self._workers.remove(worker)

    def close(self) -> None:
        """Stop every worker (each finishes nothing further) and reap it."""
        for worker in list(self._workers):
            worker.stop()
        self._workers.clear()


def _ready(busy: dict) -> list:
    """The busy workers that sent a result or died: their socket is readable, with data or at
    end-of-file (blocks until there is one)."""
    by_conn = {worker.conn: worker for worker in busy}
    return [by_conn[c] for c in wait(list(by_conn))]


class _Worker:
    """One worker process and the driver's end of its socket pair."""

    def __init__(self):
        mine, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER_CODE, str(theirs.fileno()), str(os.getpid())],
                                        pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        theirs.close()
        self.conn = Connection(mine.detach())
        _send(self.conn, [p for p in sys.path if p])

    def send(self, call: Call) -> None:
        _send(self.conn, call)

    def receive(self) -> Optional[tuple]:
        """The outcome the worker sent, or None if it died before sending one."""
        try:
            if self.conn.poll():
                return _receive(self.conn)
        except (EOFError, OSError):
            pass
        return None

    def stop(self, kill: bool = False) -> None:
        if not kill:
            with contextlib.suppress(OSError, ValueError):
                _send(self.conn, None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.conn.close()


def worker_main(fd: int, parent: int) -> None:
    """A worker's loop on socket ``fd``: take the driver's import path, then run each `Call`
    received and send its outcome; stop at None or when the driver is gone (end-of-file on the
    socket, or the parent-death signal)."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    conn = Connection(fd)
    sys.path.extend(p for p in _receive(conn) if p not in sys.path)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            call = pickle.loads(data)
        except Exception as exc:  # noqa: BLE001 - deterministic: the call names what is missing here
            outcome = "error", f"the worker cannot unpickle the call ({type(exc).__name__}: {one_line(str(exc))})"
        else:
            if call is None:
                return
            outcome = execute(call)
        try:
            _send(conn, outcome)
        except OSError:
            return


def _send(conn: Connection, obj) -> None:
    """Plain pickle over the socket (multiprocessing's own pickler would pass torch tensors
    through shared memory, which needs a key an exec'd worker does not have)."""
    conn.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _receive(conn: Connection):
    return pickle.loads(conn.recv_bytes())
