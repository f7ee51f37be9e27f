"""numba's disk cache kept consistent for kernels that use another module's numba code or constants.

numba keys each cached kernel on its own source file only (path, modification time, size). A
kernel that calls or inlines a numba function of another module (the emulator's kernels and the
training scan inline `models.fixed_kernel.lif_int`), or reads another module's constants (which
are frozen into the compiled code), keeps its old compiled code when only that other module
changes: it would run stale arithmetic without a word. `depend_on` closes that gap: called at the
end of such a module, it hashes the source files the module's kernels depend on and, when the
digest differs from the one stored beside the module's cache, empties the cache index of every
kernel of the module (they compile again on first use) and stores the new digest.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile


def depend_on(namespace: dict, *sources: str) -> bool:
    """Empty the cache of every cached numba kernel in ``namespace`` (a module's ``globals()``,
    kernels held directly or in tuples) when the contents of ``sources`` (file paths) changed
    since the last check. Returns True when it emptied them."""
    caches = list(_caches(namespace))
    if not caches:
        return False
    digest = _digest(sources)
    stamp = pathlib.Path(caches[0].cache_path) / f"{namespace['__name__']}.depends"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    for cache in caches:
        cache.flush()
    _write_atomically(stamp, digest)
    return True


def _caches(namespace: dict):
    """The disk caches of the cached numba kernels in ``namespace`` (directly or in tuples)."""
    for value in namespace.values():
        for item in value if isinstance(value, tuple) else (value,):
            cache = getattr(item, "_cache", None) if hasattr(item, "py_func") else None
            if hasattr(cache, "cache_path"):
                yield cache


def _digest(sources) -> str:
    h = hashlib.sha256()
    for path in sorted(str(p) for p in sources):
        h.update(path.encode() + b"\0" + pathlib.Path(path).read_bytes() + b"\0")
    return h.hexdigest()


def _write_atomically(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: another process reading it
    sees the old digest or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
