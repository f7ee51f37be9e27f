"""Checkpoints: ``.pt`` files holding one tagged plain dict, for every learning method.

Layout (loadable with ``torch.load(weights_only=True)``)::

    {"format": <kind tag>, "version": 1, **payload}

The kind tag says which method wrote the file and rebuilds its model from the
payload (``"spikeport-checkpoint"`` SuperSpike, ``"spikeport-ttfs-checkpoint"``,
``"spikeport-spike-transform-checkpoint"``; see `toolchain.methods`). Only
plain tensors and containers are stored, so the code that trained a network
is not needed to read it. Writes are atomic.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from models.errors import SpikeportError
from toolchain.files import atomic_path

VERSION = 1


def write(path, kind: str, **payload) -> None:
    """Atomically ``torch.save`` ``{"format": kind, "version": VERSION, **payload}`` to ``path``."""
    with atomic_path(path) as tmp:
        torch.save({"format": kind, "version": VERSION, **payload}, tmp)


def read(path, kind: str | None = None, required: tuple = ()) -> dict:
    """The payload dict in ``path`` (with its ``format`` and ``version``), if it carries tag
    ``kind`` (any spikeport tag when None) at an integer version in [1, `VERSION`] and has every
    key in ``required``.

    A missing, truncated, foreign or newer file is a one-line `SpikeportError`;
    only plain tensors and containers are unpickled (``weights_only=True``).
    """
    path = Path(path)
    if not path.is_file():
        raise SpikeportError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SpikeportError(f"{path}: not a spikeport checkpoint (it holds Python objects other than plain "
                             "tensors and containers; written by another program?)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError) as exc:
        # IndexError: torch's legacy unpickler on a text file that is neither a pickle nor a zip
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpikeportError(f"{path}: not a readable spikeport checkpoint (truncated or corrupt: {first})") from None
    found = payload.get("format") if isinstance(payload, dict) else None
    if kind is not None and found != kind:
        raise SpikeportError(f"{path}: not a spikeport checkpoint of kind {kind!r} (format tag {found!r}; "
                             "written by another program?)")
    if not (isinstance(found, str) and found.startswith("spikeport")):
        raise SpikeportError(f"{path}: not a spikeport checkpoint (format tag {found!r}; written by another program?)")
    _check_version(path, payload.get("version"))
    for key in required:
        if key not in payload:
            raise SpikeportError(f"{path}: checkpoint has no {key!r} entry (keys: {', '.join(map(str, payload))})")
    if not isinstance(payload.get("meta", {}), dict):
        raise SpikeportError(f"{path}: checkpoint entry 'meta' is a {type(payload['meta']).__name__}, "
                             "expected a dict")
    return payload


def _check_version(path, version) -> None:
    """A one-line error unless ``version`` is an integer in [1, `VERSION`]."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SpikeportError(f"{path}: checkpoint version={version!r} is outside [1, {VERSION}] (an integer)")
    if version > VERSION:
        raise SpikeportError(f"{path}: checkpoint version {version} is newer than this spikeport ({VERSION}); "
                             f"allowed [1, {VERSION}]")


def kind_of(path) -> str | None:
    """The kind tag of a readable checkpoint, else None (never raises)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - anything unreadable simply has no tag
        return None
    return payload.get("format") if isinstance(payload, dict) else None


def build(path, factory, config):
    """``factory(config)`` (a model from its stored config); a config it cannot build from is a
    one-line error naming the file."""
    try:
        return factory(config)
    except (TypeError, KeyError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpikeportError(f"{path}: the stored config does not describe a network ({first})") from None


def check_finite(path, state_dict) -> None:
    """A one-line error unless ``state_dict`` is a mapping of tensors whose floating values are all
    finite (a NaN or inf weight is refused at load, before any export, compile, verify or fine-tune)."""
    if not isinstance(state_dict, dict):
        raise SpikeportError(f"{path}: state_dict is a {type(state_dict).__name__}, not a dict of tensors")
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = value[~torch.isfinite(value)].flatten()[0].item()
            count = int((~torch.isfinite(value)).sum())
            raise SpikeportError(f"{path}: weight {name}={bad} ({count} non-finite values) is outside "
                                 "(-inf, inf) (finite numbers)")


def load_weights(path, model: torch.nn.Module, state_dict: dict) -> None:
    """``model.load_state_dict`` of finite weights (`check_finite`); a mismatch with the stored
    config is a one-line error."""
    check_finite(path, state_dict)
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise SpikeportError(f"{path}: weights do not match the stored config ({str(exc).splitlines()[0]})") from None


def write_network(path, kind: str, model: torch.nn.Module, meta: dict) -> None:
    """A network rebuilt from its ``config`` alone: ``{config, state_dict, meta}`` under ``kind``."""
    write(path, kind, config=model.config, state_dict=model.state_dict(), meta=meta)


def read_network(path, kind: str, factory) -> tuple:
    """(``factory(config)`` with the stored weights, meta) of a `write_network` checkpoint."""
    payload = read(path, kind, required=("config", "state_dict"))
    model = build(path, factory, payload["config"])
    load_weights(path, model, payload["state_dict"])
    return model, payload.get("meta", {})
