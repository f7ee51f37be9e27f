"""Network file formats, chosen by name or by file suffix: every verb reads every format.

``load(path, fmt=None, **options)`` and ``save(ir, path, fmt=None, **options)``
pick the format named ``fmt``, else the one registered for the path's suffix.
A format is one module in this package that calls `register` when imported;
every module here is imported on first use (`_discover`), so a new format is
one new file and edits nothing else.

Options are the format's own keyword arguments (NIR: ``dt``); a format that
takes none refuses any.

Every network is checked at the boundary: `load` parses (`read`) and then
refuses, in one line prefixed with the path, anything `problems` names:
a structure, reachability or parameter-range violation
(`toolchain.ir.passes.validate`: Loihi 2 ranges of the fixed-point record,
finite and meaningful float parameters) or unreadable quantization metadata
(`toolchain.quantize.read_reports`). So no engine ever sees an unchecked
file, whatever the verb. `read` alone is for ``spikeport inspect``, which
shows an invalid network together with all its violations.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from models.errors import SpikeportError
from toolchain.ir import passes
from toolchain.quantize import read_reports


@dataclass(frozen=True)
class Format:
    """A reader/writer pair: ``load(path, **options) -> IR``, ``save(ir, path, **options)``."""

    name: str
    suffixes: tuple
    load: Callable
    save: Callable
    description: str = ""

    def options(self) -> set:
        """The keyword options ``load`` takes besides the path."""
        params = inspect.signature(self.load).parameters
        return {p for p in params if p != "path"}


FORMATS: dict[str, Format] = {}
_discovered = False


def register(name: str, suffixes, load: Callable, save: Callable, description: str = "") -> Format:
    """Make a format known under ``name`` and its ``suffixes`` (e.g. ``(".onnx",)``)."""
    fmt = Format(name, tuple(suffixes), load, save, description)
    FORMATS[name] = fmt
    return fmt


def _discover() -> None:
    global _discovered
    if not _discovered:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _discovered = True


def names() -> list[str]:
    """Every registered format's name."""
    _discover()
    return list(FORMATS)


def find(path, fmt: Optional[str] = None) -> Format:
    """The format named ``fmt``, else the one whose suffix ``path`` has; one-line error otherwise."""
    _discover()
    if fmt is not None:
        if fmt not in FORMATS:
            raise SpikeportError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        return FORMATS[fmt]
    suffix = Path(path).suffix.lower()
    for candidate in FORMATS.values():
        if suffix in candidate.suffixes:
            return candidate
    known = ", ".join(f"{s} ({f.name})" for f in FORMATS.values() for s in f.suffixes)
    raise SpikeportError(f"{path}: no network format for suffix {suffix or '(none)'!r}; known: {known}")


def is_network_file(path) -> bool:
    """Whether ``path``'s suffix is one a format reads."""
    _discover()
    return any(Path(path).suffix.lower() in f.suffixes for f in FORMATS.values())


def load(path, fmt: Optional[str] = None, **options):
    """Read the network in ``path`` as a checked IR: `read`, then `check` (see the module docstring)."""
    ir = read(path, fmt, **options)
    check(ir, path)
    return ir


def read(path, fmt: Optional[str] = None, **options):
    """Parse the network in ``path`` as an IR without checking its parameters (`load` checks)."""
    chosen = find(path, fmt)
    return chosen.load(path, **_options(chosen, options))


def problems(ir) -> list[str]:
    """Every violation in ``ir`` (`toolchain.ir.passes.violations`), then its quantization metadata's
    problem if it is unreadable; empty when the network is valid."""
    found = passes.violations(ir)
    try:
        read_reports(ir.meta)
    except SpikeportError as e:
        found.append(str(e))
    return found


def check(ir, where) -> None:
    """Refuse ``ir`` with its first problem (`problems`) as one line prefixed with ``where``."""
    found = problems(ir)
    if found:
        raise SpikeportError(f"{where}: {found[0]}")


def save(ir, path, fmt: Optional[str] = None, **options) -> None:
    """Write ``ir`` to ``path`` atomically in the chosen format."""
    chosen = find(path, fmt)
    chosen.save(ir, path, **_options(chosen, options))


def _options(fmt: Format, options: dict) -> dict:
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - fmt.options())
    if unknown:
        raise SpikeportError(f"format {fmt.name}: option {unknown[0]!r} does not apply "
                             f"(its options: {', '.join(sorted(fmt.options())) or 'none'})")
    return given
