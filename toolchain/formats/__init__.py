"""Network file formats, chosen by name or by file suffix: every verb reads every format.

``load(path, fmt=None, **options)`` and ``save(ir, path, fmt=None, **options)``
pick the format named ``fmt``, else the one registered for the path's suffix.
A format is one module in this package that calls `register` when imported;
every module here is imported on first use (`_discover`), so a new format is
one new file and edits nothing else.

Options are the format's own keyword arguments of ``load`` and ``save`` (NIR:
``dt``, ``nir_from``, ``nir_for``); a format that takes none refuses any. A
format describes them (`Option`) so that the CLI offers each as a flag
(``--dt``, ``--nir-from``, ...) on every verb that reads or writes networks
(`add_arguments`); the values the user gave apply, through `using`, to every
file of a format that takes them (`check_given` refuses, first, an option no
file of the command takes).

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

import contextlib
import contextvars
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from models.errors import SpikeportError
from toolchain.ir import passes
from toolchain.quantize import read_reports


@dataclass(frozen=True)
class Option:
    """A format option as a CLI flag: its ``help`` (with units and default), its ``type`` (a
    `toolchain.flags` checker or a plain type), its ``choices`` and its ``flag`` (default: the
    option's name, ``nir_from`` -> ``--nir-from``)."""

    help: str
    type: Callable = str
    choices: Optional[tuple] = None
    flag: Optional[str] = None

    def flag_for(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Format:
    """A reader/writer pair: ``load(path, **options) -> IR``, ``save(ir, path, **options)``."""

    name: str
    suffixes: tuple
    load: Callable
    save: Callable
    description: str = ""
    described: dict = field(default_factory=dict)  # option name -> Option

    def options(self, writing: bool = False) -> set:
        """The keyword options ``load`` (``save`` if ``writing``) takes besides the path (and IR)."""
        params = inspect.signature(self.save if writing else self.load).parameters
        return {p for p in params if p not in ("path", "ir")}


FORMATS: dict[str, Format] = {}
_discovered = False
_given: contextvars.ContextVar = contextvars.ContextVar("format_options", default={})


def register(name: str, suffixes, load: Callable, save: Callable, description: str = "",
             options: Optional[dict] = None) -> Format:
    """Make a format known under ``name`` and its ``suffixes`` (e.g. ``(".onnx",)``); ``options``
    describes its keyword options ({name: `Option`}) for the CLI."""
    fmt = Format(name, tuple(suffixes), load, save, description, dict(options or {}))
    FORMATS[name] = fmt
    return fmt


def add_arguments(parser, writing: bool = False) -> list[str]:
    """Add every format's options as flags (`Option.flag_for`) to ``parser``: the
    reading options, and the writing ones too if ``writing``. Returns the option names added."""
    _discover()
    added = []
    for fmt in FORMATS.values():
        for name in sorted(fmt.options() | (fmt.options(writing=True) if writing else set())):
            if name in added or name not in fmt.described:
                continue
            opt = fmt.described[name]
            parser.add_argument(opt.flag_for(name), dest=f"format_{name}", type=opt.type,
                                choices=opt.choices, help=f"{fmt.name} files: {opt.help}")
            added.append(name)
    return added


def check_given(given: dict, read=(), written=()) -> None:
    """Refuse (one line) an option in ``given`` that no file in ``read`` (paths) or ``written``
    ((path, format name or None) pairs) takes, so that no flag is silently ignored."""
    _discover()
    takes = set()
    for path in read:
        if path is not None and is_network_file(path):
            takes |= find(path).options()
    for path, fmt in written:
        takes |= find(path, fmt).options(writing=True)
    for name in given:
        if name not in takes:
            owners = [f for f in FORMATS.values() if name in f.options() | f.options(writing=True)]
            files = ", ".join(str(p) for p in [*read, *(p for p, _ in written)] if p is not None)
            flag = next((f.described[name].flag_for(name) for f in owners if name in f.described), name)
            raise SpikeportError(f"{flag} applies to {' or '.join(f.name for f in owners)} files only, "
                                 f"and this command reads or writes none ({files})")


@contextlib.contextmanager
def using(**given):
    """Within the block, `load`, `read` and `save` pass the options in ``given`` (None = not given)
    to every format that takes them; keyword options of the call itself win."""
    token = _given.set({k: v for k, v in given.items() if v is not None})
    try:
        yield
    finally:
        _given.reset(token)


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
            raise SpikeportError(f"unknown format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
        return FORMATS[fmt]
    suffix = Path(path).suffix.lower()
    for candidate in FORMATS.values():
        if suffix in candidate.suffixes:
            return candidate
    known = ", ".join(f"{s} ({name})" for name in sorted(FORMATS) for s in FORMATS[name].suffixes)
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
    return chosen.load(path, **_options(chosen, options, writing=False))


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
    chosen.save(ir, path, **_options(chosen, options, writing=True))


def _options(fmt: Format, options: dict, writing: bool) -> dict:
    """The call's own options (refused if the format does not take one), over the `using` ones the
    format takes."""
    takes = fmt.options(writing)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - takes)
    if unknown:
        raise SpikeportError(f"format {fmt.name}: option {unknown[0]!r} does not apply "
                             f"(its options: {', '.join(sorted(takes)) or 'none'})")
    return {**{k: v for k, v in _given.get().items() if k in takes}, **given}
