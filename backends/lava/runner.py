"""Run an IR on lava-nc (Loihi2SimCfg) in child processes that can always be stopped.

`run_lava` is the backend's entry point; `backends.emulator.run` has the same
signature and output, so `toolchain.verify` can compare the two key by key.

Time convention (every engine): x[:, t-1] is sent at step t = 1..T; each
synaptic hop adds one step (a delay d adds 1 + d). Outputs are recorded at
every step: ``s`` the spikes sent, ``v`` the voltage *after* reset (what a
Lava Monitor reports: 0 where a neuron spiked), ``u`` the current. In fixed
mode v and u are Lava's integers (the ``<<6`` scale of docs/fixed-point.md);
in float mode the ``floating_pt`` floats.

Isolation: Lava hangs silently on some bad parameters and leaves its own OS
processes behind when its caller dies. So every job runs in a child Python
process started in a new session (its own process group). On success, error,
timeout or KeyboardInterrupt the parent kills that whole process group, which
holds the child and every process Lava forked, and reaps the child: no Lava
process outlives `run_lava`. Parameters Lava would misread are refused
before anything starts (`check_lava_params`).

The other way round, a child dies with its parent: when the process that
called `run_lava` is killed (a scale-out worker lost, say), the child notices
that its parent changed (`_die_with_parent`), kills every other member of its
process group (Lava's processes), removes its job folder and exits; Python's
shared-memory resource tracker, spared, then unlinks what Lava left in
``/dev/shm``.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from backends.lava.builder import build_network, check_lava_params, require_mode, run_network
from backends.recording import resolve_record
from models import fixed_point as fx
from models.errors import SpikeportError, out_of_range
from toolchain import ir as irm
from toolchain.ir.ops import plain

BATCHING = ("tile", "per-sample")
JOB_ENV = "SPIKEPORT_LAVA_JOB"  # set in every Lava child (and inherited by Lava's processes)
REPO_ROOT = Path(__file__).resolve().parents[2]
_CHILD_CODE = "import sys; from backends.lava.runner import child_main; child_main(sys.argv[1])"


def run_lava(ir: irm.IR, x, record: Optional[list] = None, *, mode: str = "fixed",
             batching: str = "tile", timeout: Optional[float] = None, workers: int = 1,
             check: bool = True) -> dict:
    """Run ``ir`` on Lava's CPU simulator and return the recorded traces.

    x: array (B, T, N) or (T, N); N is the Input nodes' channels in node
    order. For a binary Input (``num_message_bits == 0``) any nonzero value
    is a spike; a graded Input sends its values (integers within int32 in
    fixed mode).

    record: neuron or Output node names (an Output records its
    predecessor under the Output's name), or ``"<node>/s"`` etc. for one
    array; None records every neuron node. Only what is asked for is probed
    (one Lava Monitor per array).

    mode: "fixed" (Loihi2SimCfg ``fixed_pt``) or "float" (``floating_pt``).
    batching: "tile" runs the B samples side by side in one Lava network
    (one compile, T steps); "per-sample" builds one network per sample with
    the IR's own Dense processes (slow; for fidelity checks). Fixed mode:
    both give identical integers. Float mode: Lava's float Sparse sums in
    another order than its Dense, so tiled state may differ in the last bits
    (~1e-14 relative).
    timeout: seconds for the whole call (None: a generous estimate from the
    network size, see `default_timeout`).
    workers: child processes the batch is split over (run concurrently).
    check: refuse what `toolchain.ir.passes.validate` refuses, as the emulator does
    (`check_lava_params`). ``check=False`` is the escape hatch for tests that probe
    Lava's storage arithmetic outside Loihi's ranges (Lava's own limits are still
    enforced, so Lava cannot hang on them); the CLI never passes it.

    Returns ``{f"{node}/s": int8, f"{node}/<state var>" (LIF: u, v): int32 (fixed, Lava's
    own dtype) or float64 (float)}``, each of shape (B, T, n), also for a (T, N) input.
    Any failure raises a one-line `SpikeportError`.
    """
    inputs, targets, probes = _prepare(ir, x, record, mode=mode, batching=batching, check=check)
    batch = next(iter(inputs.values())).shape[0]
    chunks = np.array_split(np.arange(batch), max(1, min(int(workers), batch)))
    jobs = [Job(ir, {k: v[idx] for k, v in inputs.items()}, probes, mode, batching, check) for idx in chunks]
    limit = timeout if timeout is not None else default_timeout(ir, inputs, len(probes), batching)
    return format_outputs(_concat([part for (part,) in run_jobs([[job] for job in jobs], limit)]), targets, mode)


def run_lava_many(runs: list, *, mode: str = "fixed", batching: str = "tile", timeout: Optional[float] = None,
                  check: bool = True) -> list:
    """Run several networks on Lava, one after another in one child process.

    runs: ``(ir, x)`` or ``(ir, x, record)`` tuples, each as `run_lava` takes them.
    Returns one dict a run, in order, each exactly what ``run_lava(ir, x, record,
    mode=mode, batching=batching, check=check)`` returns: every network is its own
    Lava network, built, compiled, run and stopped in turn as `run_lava` does; only
    the child process (its Python start-up and its Lava import, ~0.3 s of CPU a
    network) is shared. Every run's arguments are checked before the child starts.
    timeout: seconds for the whole call (None: the sum of each run's `default_timeout`).
    Any failure (of any run) raises a one-line `SpikeportError`; no Lava process outlives the call.
    """
    prepared = [_prepare(*run, mode=mode, batching=batching, check=check) for run in runs]
    if not prepared:
        return []
    jobs = [Job(run[0], inputs, probes, mode, batching, check) for run, (inputs, _, probes) in zip(runs, prepared)]
    limit = timeout if timeout is not None else sum(
        default_timeout(job.ir, job.inputs, len(job.probes), batching) for job in jobs)
    (results,) = run_jobs([jobs], limit)
    return [format_outputs(result, targets, mode) for result, (_, targets, _) in zip(results, prepared)]


def _prepare(ir: irm.IR, x, record: Optional[list] = None, *, mode: str, batching: str, check: bool) -> tuple:
    """A run's checked arguments, before any child starts: ``(inputs, targets, probes)``, the
    `batched_inputs`, the `resolve_record` targets and the sorted (node, var) pairs to probe."""
    require_mode(mode)
    if batching not in BATCHING:
        raise SpikeportError(f"lava: batching={batching!r} is not one of {list(BATCHING)}")
    inputs = batched_inputs(ir, x, mode)
    targets = resolve_record(ir, record)
    check_lava_params(ir, mode, check=check)
    return inputs, targets, sorted(set(targets.values()))


def _concat(parts: list) -> dict:
    """Join ``{node: {var: (b, T, n)}}`` results along the batch axis."""
    return {node: {var: np.concatenate([p[node][var] for p in parts]) for var in parts[0][node]}
            for node in parts[0]}


# --------------------------------------------------------------- arguments
def batched_inputs(ir: irm.IR, x, mode: str) -> dict:
    """``{Input node: (B, T, n) array}``: int64 in fixed mode, float64 in float mode.

    ``x`` is (B, T, N) or (T, N); N is the sum of the Input nodes' channels,
    taken in node order. Binary Inputs become 0/1 (any nonzero is a spike).
    Graded values must be integers within int32 in fixed mode (Lava's
    RingBuffer holds int32).
    """
    arr = np.asarray(x)
    arr = arr[None] if arr.ndim == 2 else arr
    sizes = {name: op.n for name, op in ir.nodes(irm.Input)}
    if arr.ndim != 3 or arr.shape[2] != sum(sizes.values()) or 0 in arr.shape[:2]:
        raise SpikeportError(f"input: shape {np.shape(x)} is not (B, T, N) or (T, N) with B, T >= 1 and "
                             f"N = {sum(sizes.values())} (Input nodes {sizes})")
    if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "f" and not np.all(np.isfinite(arr))):
        raise SpikeportError(f"input: values must be finite numbers (dtype {arr.dtype})")
    bounds = np.cumsum([0, *sizes.values()])
    return {name: _one_input(name, ir.op(name), arr[..., lo:hi], mode)
            for name, lo, hi in zip(sizes, bounds[:-1], bounds[1:])}


def _one_input(name: str, op: irm.Input, arr: np.ndarray, mode: str) -> np.ndarray:
    if op.num_message_bits == 0:
        return (arr != 0).astype(np.int64 if mode == "fixed" else np.float64)
    if mode == "float":
        return arr.astype(np.float64)
    if not np.array_equal(arr, np.trunc(arr)):
        raise SpikeportError(f"{name}: graded input value {arr[arr != np.trunc(arr)][0]} is not an integer "
                             "(fixed mode sends integers)")
    if arr.min() < fx.INT32_MIN or arr.max() > fx.INT32_MAX:
        bad = arr.min() if arr.min() < fx.INT32_MIN else arr.max()
        raise out_of_range(name, "graded input", plain(bad),
                           f"[{fx.INT32_MIN}, {fx.INT32_MAX}] (Lava's RingBuffer holds int32)")
    return arr.astype(np.int64)


def format_outputs(probes: dict, targets: dict, mode: str) -> dict:
    """Monitor arrays ``{node: {var: (B, T, n)}}`` -> ``{key: array}`` with the documented dtypes:
    spikes int8, state int32 in fixed mode (the dtype of Lava's fixed_pt Vars), float64 in float."""
    state = np.int32 if mode == "fixed" else np.float64
    return {key: probes[node][var].astype(np.int8 if var == "s" else state)
            for key, (node, var) in targets.items()}


def default_timeout(ir: irm.IR, inputs: dict, monitors: int, batching: str) -> float:
    """A generous wall-clock limit in seconds: 10x a cost model of Lava on the CPU.

    Per network ~1 s to compile and start; per step ~1 ms per Lava process
    (``monitors`` included), growing with the number of neurons simulated
    (measured: ~0.4 ms per process per step, ~0.5 s to compile and start).
    """
    batch, steps = next(iter(inputs.values())).shape[:2]
    networks, tiles = (1, batch) if batching == "tile" else (batch, 1)
    procs = monitors + sum(1 for _, op in ir.nodes() if not isinstance(op, irm.Output))
    neurons = tiles * sum(op.size for _, op in ir.nodes(irm.Synapse, irm.Neuron))
    per_step = 1e-3 * procs * (1 + neurons / 2000)
    return 60.0 + 10 * networks * (1.0 + steps * per_step)


# ---------------------------------------------------------------- the child
@dataclass
class Job:
    """One child's work: run ``inputs`` (B, T, n) through ``ir``; ``probes`` are (node, var) pairs."""

    ir: irm.IR
    inputs: dict
    probes: list
    mode: str
    batching: str
    check: bool = True  # as `run_lava`'s (the parent already checked; the child's builder checks again)


def execute(job: Job, scratch: str) -> dict:
    """Run a job in this process: ``{node: {var: (B, T, n) float64}}``.

    Monitor files go to ``scratch`` (the job folder, removed by the parent).
    """
    batch = next(iter(job.inputs.values())).shape[0]
    if job.batching == "tile":
        return _run_tiled(job, job.inputs, batch, scratch)
    return _concat([_run_tiled(job, {k: v[b:b + 1] for k, v in job.inputs.items()}, 1, scratch)
                    for b in range(batch)])


def tile_inputs(inputs: dict) -> dict:
    """``{Input: (B, T, n)}`` -> RingBuffer data ``{Input: (B·n, T)}``, sample b in rows [b·n, (b+1)·n)."""
    return {k: v.transpose(0, 2, 1).reshape(-1, v.shape[1]) for k, v in inputs.items()}


def _run_tiled(job: Job, inputs: dict, tiles: int, scratch: str) -> dict:
    net = build_network(job.ir, tile_inputs(inputs), mode=job.mode, tiles=tiles, record=job.probes,
                        check=job.check)
    return run_network(net, scratch=scratch)


def child_main(job_dir: str) -> None:
    """Entry point of a child: run the list of jobs in ``job.pkl`` in turn, write the list of
    their results to ``result.pkl``, or the first failure to ``error.txt``.

    Exits with ``os._exit`` so that no exit handler can wait on a Lava
    process; the parent kills the process group afterwards in any case.
    """
    path = Path(job_dir)
    code = 0
    orphaned = _die_with_parent(path, os.getppid())
    try:
        _use_parent_path(path)
        with open(path / "job.pkl", "rb") as f:
            jobs = pickle.load(f)
        result = [execute(job, str(path)) for job in jobs]
        with open(path / "result.tmp", "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(path / "result.tmp", path / "result.pkl")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, one line
        (path / "error.txt").write_text(_one_line(exc))
        code = 1
    while orphaned.is_set():  # the watchdog is cleaning up, and ends this process itself
        time.sleep(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


PARENT_WATCH_SECONDS = 0.1  # how often a child checks that its parent lives


def _die_with_parent(job_dir: Path, parent: int) -> threading.Event:
    """Watch (in a daemon thread) that ``parent`` is still this process's parent; once it is
    not (the caller of `run_lava` was killed), kill the rest of this process group, remove the
    job folder (and the run's folder once empty) and exit. The resource tracker is spared: it
    unlinks Lava's shared-memory segments once this process is gone. Returns the event set
    when the watch starts cleaning up (the main thread must then not exit by itself)."""
    orphaned = threading.Event()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_WATCH_SECONDS)
        orphaned.set()
        kill_group(os.getpgrp(), spare=(os.getpid(),), wait_tracker=False)
        shutil.rmtree(job_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            job_dir.parent.rmdir()
        os._exit(3)

    threading.Thread(target=watch, name="spikeport-parent-watch", daemon=True).start()
    return orphaned


PARENT_PATH = "sys_path.json"


def _use_parent_path(job_dir: Path) -> None:
    """Append the parent's import path, so the job's op types (a neuron defined in the
    caller's own module, with its Lava process) unpickle in the child as in the parent."""
    sys.path.extend(p for p in json.loads((job_dir / PARENT_PATH).read_text()) if p not in sys.path)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, SpikeportError) else f"{type(exc).__name__}: {text}"


# --------------------------------------------------------------- the parent
class _Child:
    """A child Python process in its own session, with its job folder, running ``jobs`` in turn."""

    def __init__(self, jobs: list, folder: Path):
        self.folder = folder
        folder.mkdir()
        with open(folder / "job.pkl", "wb") as f:
            pickle.dump(list(jobs), f, protocol=pickle.HIGHEST_PROTOCOL)
        (folder / PARENT_PATH).write_text(json.dumps([p for p in sys.path if p]))
        env = dict(os.environ, **{JOB_ENV: str(folder)})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with open(folder / "stderr.txt", "wb") as err:
            self.popen = subprocess.Popen([sys.executable, "-c", _CHILD_CODE, str(folder)],
                                          stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                          env=env, start_new_session=True)

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    def result(self) -> list:
        if (self.folder / "result.pkl").exists():
            with open(self.folder / "result.pkl", "rb") as f:
                return pickle.load(f)
        raise SpikeportError(f"lava: {self.failure()}")

    def failure(self) -> str:
        if (self.folder / "error.txt").exists():
            return (self.folder / "error.txt").read_text()
        lines = (self.folder / "stderr.txt").read_text(errors="replace").strip().splitlines()
        return f"worker exited with code {self.popen.returncode}: {lines[-1] if lines else 'no message'}"

    def kill_tree(self, grace: float = 3.0) -> None:
        """SIGKILL the child's whole process group: the child and all of Lava's processes.

        Python's shared-memory resource tracker is spared until every other
        member is gone: it then unlinks the ``/dev/shm`` segments Lava did not
        release and exits by itself. After ``grace`` seconds the group is
        killed whole.
        """
        pgid = self.popen.pid
        kill_group(pgid, grace=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        self.popen.wait()


def kill_group(pgid: int, spare: tuple = (), grace: float = 3.0, wait_tracker: bool = True) -> None:
    """SIGKILL every member of process group ``pgid`` but ``spare`` (pids) and Python's
    shared-memory resource tracker, until none is left (``wait_tracker``: until the tracker,
    too, has cleaned up and exited) or ``grace`` seconds pass."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        members = {pid: cmd for pid, cmd in _live_group_members(pgid).items() if pid not in spare}
        targets = [pid for pid, cmdline in members.items() if b"resource_tracker" not in cmdline]
        if not targets and not (wait_tracker and members):
            return
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _live_group_members(pgid: int) -> dict:
    """``{pid: cmdline}`` of the non-zombie processes in group ``pgid`` (Linux /proc; else {})."""
    members = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != b"Z":
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        members[int(entry.name)] = f.read()
    return members


def run_jobs(groups: list, timeout: float) -> list:
    """Run each group (a list of `Job`) in its own child, concurrently, the jobs of a group in
    turn; one list of results a group, in order.

    Raises `SpikeportError` on the first failure or when ``timeout`` seconds
    pass. Every child's process group is killed before returning or raising,
    including on KeyboardInterrupt.
    """
    with tempfile.TemporaryDirectory(prefix="spikeport-lava-") as tmp:
        children = []
        try:
            children.extend(_Child(jobs, Path(tmp) / f"job{i}") for i, jobs in enumerate(groups))
            _wait(children, timeout, groups)
            return [child.result() for child in children]
        finally:
            for child in children:
                child.kill_tree()


def _wait(children: list, timeout: float, groups: list) -> None:
    deadline = time.monotonic() + timeout
    while True:
        codes = [child.poll() for child in children]
        failed = next((c for c, rc in zip(children, codes) if rc not in (None, 0)), None)
        if failed is not None:
            raise SpikeportError(f"lava: {failed.failure()}")
        if all(rc == 0 for rc in codes):
            return
        if time.monotonic() > deadline:
            jobs = [job for group in groups for job in group]
            steps = max(next(iter(job.inputs.values())).shape[1] for job in jobs)
            raise SpikeportError(
                f"lava: no result within {timeout:g} s ({len(jobs)} job(s), T={steps}); Lava hangs silently "
                "on parameters it cannot use; all Lava processes were killed")
        time.sleep(0.02)
