"""Writing user-facing files atomically: a temporary name, then a rename.

A failure while writing never leaves a half-written output behind. Before
anything is written, `check_output` refuses an output path that cannot be a
new file (empty, an existing folder, under a regular file) or that names one
of the command's inputs (compared after resolving symlinks and relative
parts), so no input is ever replaced by an output.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from models.errors import SpikeportError


def check_output(out, *inputs, flag: str = "--out") -> Path:
    """``out`` as a `Path` if a file may be written there, else a one-line `SpikeportError` naming
    ``flag`` and the value: empty, an existing folder, a path under a regular file, or the same
    file as one of ``inputs`` (None entries are skipped). Call it before any work."""
    if out is None or str(out) == "":
        raise SpikeportError(f"{flag} {str(out or '')!r} is empty; expected a file path")
    path = Path(out)
    if path.is_dir():
        raise SpikeportError(f"{flag} {out}: is an existing folder; expected a file path")
    _check_parents(path, flag)
    for given in inputs:
        if given is not None and str(given) != "" and _same_file(path, Path(given)):
            raise SpikeportError(f"{flag} {out}: is the input {given}; choose another output path "
                                 "(the input would be replaced)")
    return path


def check_output_folder(folder, *inputs, flag: str = "--report") -> Path:
    """``folder`` as a `Path` if a folder may be (re)built there, else a one-line `SpikeportError`:
    empty, under a regular file, one of ``inputs`` or a folder holding one of them (replacing the
    folder would delete it)."""
    if folder is None or str(folder) == "":
        raise SpikeportError(f"{flag} {str(folder or '')!r} is empty; expected a folder path")
    path = Path(folder)
    _check_parents(path, flag)
    target = path.resolve()
    for given in inputs:
        if given is None or str(given) == "":
            continue
        real = Path(given).resolve()
        if real == target or target in real.parents:
            raise SpikeportError(f"{flag} {folder}: holds or is the input {given}; choose another {flag} "
                                 "(the input would be replaced)")
    return path


def _check_parents(path: Path, flag: str) -> None:
    """A one-line error if some parent of ``path`` is an existing non-folder (a regular file)."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise SpikeportError(f"{flag} {path}: {parent} is a file, not a folder")
            return


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (symlinks and relative parts resolved; hard links too)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, inputs=()):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    ``path`` is first checked by `check_output` against ``inputs`` (the files the
    caller read). The temporary keeps ``path``'s suffix so libraries that look at
    it (numpy's ``.npz``, torch) behave. On an exception the temporary is removed.
    """
    path = check_output(path, *inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_npz(path, arrays: dict, inputs=()) -> None:
    """``numpy.savez_compressed`` to ``path`` atomically (``path`` checked against ``inputs``)."""
    import numpy as np

    with atomic_path(path, inputs) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
