"""Learning methods as plug-ins: one subpackage of `toolchain.methods` per method.

A method trains a network, writes a checkpoint tagged with its ``kind``,
compiles that checkpoint to a fixed-point IR and verifies it. Each subpackage
defines ``METHOD = Method(...)``; `registry` finds them with `pkgutil`, so a
new method is one new package and edits nothing else. The `spikeport` CLI
builds ``--method`` choices, per-method flags and the compile/verify dispatch
(by checkpoint kind) from the registry.

A package's ``__init__`` stays light (no torch): the CLI reads the registry to
build its parser. Time conventions are each method's own and are stated in
its package docstring.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Protocol

from models.errors import SpikeportError

if TYPE_CHECKING:  # annotations only: the registry stays light (no torch)
    from toolchain.ir import IR

VERBS = ("train", "compile", "verify")


class OptionAdder(Protocol):
    """What a method's option function adds its flags to (an argparse parser or argument group)."""

    def add_argument(self, *flags: str, **kwargs) -> argparse.Action: ...


@dataclass(frozen=True)
class Method:
    """One learning method, as the CLI sees it.

    name: the package name (``superspike``), unique. rules: the ``--method`` values that train
    with it (``surrogate``); a value may name rules of several methods when their ``tasks`` do
    not overlap. kind: the checkpoint tag it writes (`toolchain.checkpoint`), unique. label: how
    messages name its checkpoints ("TTFS"). add_options(verb, parser): adds the flags only this
    method takes for ``verb`` in `VERBS`, with help text stating defaults and units. train(args)
    writes ``args.out`` and returns the exit code; compile(path, args) returns the validated fixed
    IR and a printable quantization report (may be empty); verify(args) prints a summary with its
    PASS/FAIL criteria, writes the report unless ``args.no_report`` and returns 0 (pass) or 1.
    epochs: the default of ``--epochs`` per task ({task: count}, or {task: text} when it differs by
    rule), for the help text; epochs_unit: what one ``--epochs`` unit is for this method ("epochs":
    passes over the training set; "iterations": full-batch steps).
    default: exactly one method is the default: its first rule is ``--method``'s default, and
    compile/verify of a file with no registered kind (a compiled ``.onnx``, a foreign ``.pt``) and
    training on a task no method lists go to it, which explains what is wrong.
    """

    name: str
    description: str
    rules: tuple[str, ...]
    tasks: tuple[str, ...]
    kind: str
    label: str
    add_options: Callable[[str, OptionAdder], None]
    train: Callable[[argparse.Namespace], int]
    compile: Callable[[Path, argparse.Namespace], "tuple[IR, str]"]
    verify: Callable[[argparse.Namespace], int]
    default: bool = False
    epochs: Optional[dict] = field(default=None, compare=False)  # a dict: kept out of the hash
    epochs_unit: str = "epochs"


@cache
def registry() -> tuple[Method, ...]:
    """Every method: the ``METHOD`` of each subpackage of `toolchain.methods`, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg:
            method = getattr(importlib.import_module(f"{__name__}.{info.name}"), "METHOD", None)
            if not isinstance(method, Method):
                raise TypeError(f"{__name__}.{info.name} defines no METHOD = Method(...)")
            found.append(method)
    _check_unique(found)
    if sum(m.default for m in found) != 1:
        raise TypeError(f"exactly one method must be the default, not {[m.name for m in found if m.default]}")
    return tuple(found)


def _check_unique(methods: list) -> None:
    for field in ("name", "kind"):
        values = [getattr(m, field) for m in methods]
        if len(set(values)) != len(values):
            raise TypeError(f"two methods share a {field}: {values}")
    for a in methods:
        for b in methods:
            if a is not b and set(a.rules) & set(b.rules) and set(a.tasks) & set(b.tasks):
                raise TypeError(f"methods {a.name} and {b.name} both train --method "
                                f"{sorted(set(a.rules) & set(b.rules))} on {sorted(set(a.tasks) & set(b.tasks))}")


def default() -> Method:
    """The default method (see `Method`)."""
    return next(m for m in registry() if m.default)


def rules() -> list[str]:
    """Every ``--method`` value, in registry order, without repeats."""
    return list(dict.fromkeys(r for m in registry() for r in m.rules))


def epochs_help() -> str:
    """What ``--epochs`` means and defaults to, per method and task (from each `Method`'s ``epochs``)."""
    parts = []
    for m in registry():
        if m.epochs:
            defaults = ", ".join(f"{task} {n}" for task, n in m.epochs.items())
            parts.append(f"{' | '.join(m.rules)} ({m.epochs_unit}): {defaults}")
    return "; ".join(parts)


def tasks() -> list[str]:
    """Every ``--task`` some method trains on, in registry order, without repeats."""
    return list(dict.fromkeys(t for m in registry() for t in m.tasks))


def for_training(rule: str, task: str) -> Method:
    """The method that trains ``--method rule`` on ``--task task``; a one-line error if none does.
    A task no method lists goes to the default method if it has ``rule`` (it names its tasks)."""
    for method in registry():
        if rule in method.rules and task in method.tasks:
            return method
    if task not in tasks():
        if rule in default().rules:
            return default()
        known = [t for m in registry() if rule in m.rules for t in m.tasks]
        raise SpikeportError(f"train: unknown task {task!r}; choose one of {', '.join(known)}")
    owners = [t for m in registry() if rule in m.rules for t in m.tasks]
    fitting = [r for m in registry() if task in m.tasks for r in m.rules]
    raise SpikeportError(f"train: --method {rule} applies to --task {' | '.join(owners)} only "
                         f"(--task {task}: --method {' | '.join(fitting)})")


def for_kind(kind: str) -> Method:
    """The method whose checkpoints carry tag ``kind``; a one-line error if none."""
    for method in registry():
        if method.kind == kind:
            return method
    raise SpikeportError(f"unknown checkpoint kind {kind!r}; known kinds: "
                         f"{', '.join(m.kind for m in registry())}")


def for_file(path) -> tuple[Method, bool]:
    """(method, recognised) for compile/verify of ``path``: the method of its checkpoint kind, or
    (the default method, False) for any file without a registered kind."""
    from toolchain.checkpoint import kind_of  # lazy: imports torch (registry loading stays torch-free)

    kind = kind_of(path) if Path(path).suffix == ".pt" else None
    if kind in {m.kind for m in registry()}:
        return for_kind(kind), True
    return default(), False
