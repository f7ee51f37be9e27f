"""Training configs: defaults <- a JSON config file <- keyword overrides, known keys only.

Every method resolves its run configuration here, so an unknown key, a value
of the wrong type or one outside its range is refused the same way everywhere:
one line naming the key, the value and what is allowed.

The schema of a method is its defaults dict: each key's type is that of its
default (an int default takes integers, a float default any finite number, a
tuple or list default a JSON list, a dict default an object, a None default
anything), and `RANGES` (plus the ``ranges`` a method passes) bounds the numbers.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from models.errors import SpikeportError
from toolchain.flags import COUNT, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, Range

# Ranges of keys several methods share (a method adds its own through ``resolve(ranges=...)``).
RANGES = {
    "epochs": COUNT, "iterations": COUNT, "batch_size": COUNT, "threads": COUNT,
    "lr": POSITIVE, "weight_decay": NON_NEGATIVE, "seed": NON_NEGATIVE_INT,
}


def resolve(defaults: dict, config_file=None, *, what: str = "config", ranges: dict | None = None,
            **overrides) -> dict:
    """A deep copy of ``defaults`` updated by the JSON object in ``config_file`` (if given), then
    by the ``overrides`` that are not None. A key ``defaults`` lacks (in the file or among the
    overrides, even a None one), a value whose type differs from its default's or a number
    outside its range (`RANGES` updated by ``ranges``) is a `SpikeportError` naming it;
    ``what`` prefixes messages."""
    cfg = copy.deepcopy(defaults)
    from_file = read_json(config_file) if config_file else {}
    if not isinstance(from_file, dict):
        raise SpikeportError(f"{config_file}: a JSON {type(from_file).__name__} is outside the allowed values "
                             f"(a JSON object of {what} keys)")
    for key in [*from_file, *overrides]:
        if key not in cfg:
            raise SpikeportError(f"{what}: unknown key {key!r}; known keys: {', '.join(sorted(cfg))}")
    given = {**from_file, **{k: v for k, v in overrides.items() if v is not None}}
    bounds = {**RANGES, **(ranges or {})}
    where = f"{config_file}: {what}" if config_file else what
    for key, value in given.items():
        check_value(where, key, value, defaults[key], bounds.get(key))
    cfg.update(given)
    return cfg


def check_value(where: str, key: str, value, default, bound: Range | None) -> None:
    """A one-line error unless ``value`` has the type of ``default`` (see module doc) and lies in
    ``bound`` (if any): ``WHERE: KEY=VALUE is outside ALLOWED``."""
    if bound is not None and value is not None:
        why = bound.problem(value)
        if why:
            raise SpikeportError(f"{where}: {key}={why}")
    expected = _expected_type(default)
    if expected is not None and not _has_type(value, expected):
        raise SpikeportError(f"{where}: {key}={value!r} is outside the allowed values "
                             f"({_type_name(expected)}, like the default {default!r})")


def _expected_type(default):
    """The type family a default stands for (None: anything)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, (list, tuple)):
        return list
    return type(default)


def _has_type(value, expected) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if expected is int:
        return isinstance(value, int)
    if expected is float:
        return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
    if expected is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, expected)


def _type_name(expected) -> str:
    return {bool: "true or false", int: "an integer", float: "a finite number", list: "a list",
            str: "a string", dict: "an object"}.get(expected, expected.__name__)


def read_json(path):
    """The JSON value in ``path``; an unreadable file or bad JSON is a one-line error."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SpikeportError(f"{path}: unreadable JSON config ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
