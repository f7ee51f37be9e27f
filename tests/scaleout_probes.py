"""Process probes for the scale-out fault tests (Linux /proc): who descends from whom, which
Lava runs are alive under a process, which /dev/shm segments they map; and killing the worker
of a Lava run while Lava is running."""
import os
import signal
import time
from pathlib import Path

from backends.lava.runner import JOB_ENV


def _stat(pid: int):
    """(ppid, pgid, state) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[2]), fields[0]


def live(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[2] != b"Z"


def descendants(root: int) -> set:
    """Every live process below ``root`` in the parent tree."""
    children = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        stat = _stat(int(name))
        if stat is not None and stat[2] != b"Z":
            children.setdefault(stat[0], []).append(int(name))
    found, todo = set(), [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            if kid not in found:
                found.add(kid)
                todo.append(kid)
    return found


def group_members(pgid: int) -> list:
    return [int(p) for p in filter(str.isdigit, os.listdir("/proc"))
            if (s := _stat(int(p))) is not None and s[1] == pgid and s[2] != b"Z"]


def _job_folder(pid: int):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
    except OSError:
        return None
    value = env.get(JOB_ENV.encode())
    return Path(value.decode()) if value else None


def shm_segments(pids) -> set:
    """The /dev/shm names the processes ``pids`` map."""
    names = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                names |= {line.split()[-1] for line in f if "/dev/shm/" in line}
        except OSError:
            continue
    return names


def lava_runs(root: int) -> list:
    """The Lava children (`backends.lava.runner`) below ``root``: each the leader of its own
    process group, with its job folder in its environment."""
    return [pid for pid in descendants(root) if (s := _stat(pid)) and s[1] == pid and _job_folder(pid)]


def kill_a_worker_mid_lava(root: int, timeout: float = 120.0) -> dict:
    """Wait until a Lava run below ``root`` is running (its group maps shared memory), then
    SIGKILL the worker that started it (the run's parent). Returns what it saw: the worker,
    the run's process group and members, its job folder and its segments."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in lava_runs(root):
            members = group_members(child)
            segments = shm_segments(members)
            stat = _stat(child)
            if len(members) > 2 and segments and stat:
                seen = dict(worker=stat[0], pgid=child, members=members, folder=_job_folder(child),
                            segments=segments)
                os.kill(stat[0], signal.SIGKILL)
                return seen
        time.sleep(0.05)
    raise AssertionError(f"no Lava run started below pid {root} within {timeout} s")


def wait_gone(seen: dict, timeout: float = 15.0) -> dict:
    """Wait up to ``timeout`` s for everything ``seen`` to disappear; what is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = dict(worker=[seen["worker"]] if live(seen["worker"]) else [],
                    members=[p for p in seen["members"] if live(p)],
                    group=group_members(seen["pgid"]),
                    folder=[str(seen["folder"])] if seen["folder"].exists() else [],
                    segments=sorted(s for s in seen["segments"] if os.path.exists(s)))
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
