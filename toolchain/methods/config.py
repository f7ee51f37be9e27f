"""Training configs: defaults <- a JSON config file <- keyword overrides, known keys only.

Every method resolves its run configuration here, so an unknown key is refused
the same way everywhere: one line naming the key and the known keys.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from models.errors import SpikeportError


def resolve(defaults: dict, config_file=None, *, what: str = "config", **overrides) -> dict:
    """A deep copy of ``defaults`` updated by the JSON object in ``config_file`` (if given), then
    by the ``overrides`` that are not None. A key ``defaults`` lacks (in the file or among the
    overrides, even a None one) is a `SpikeportError` naming it; ``what`` prefixes messages."""
    cfg = copy.deepcopy(defaults)
    from_file = read_json(config_file) if config_file else {}
    if not isinstance(from_file, dict):
        raise SpikeportError(f"{config_file}: expected a JSON object of {what} keys")
    for key in [*from_file, *overrides]:
        if key not in cfg:
            raise SpikeportError(f"{what}: unknown key {key!r}; known keys: {', '.join(sorted(cfg))}")
    cfg.update(from_file)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def read_json(path):
    """The JSON value in ``path``; an unreadable file or bad JSON is a one-line error."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SpikeportError(f"{path}: unreadable JSON config ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
