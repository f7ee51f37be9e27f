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


def read(path, kind: str | None = None) -> dict:
    """The payload dict in ``path`` (with its ``format`` and ``version``), if it carries tag
    ``kind`` (any spikeport tag when None) at a version <= `VERSION`.

    A missing, truncated, foreign or newer file is a one-line `SpikeportError`;
    only plain tensors and containers are unpickled (``weights_only=True``).
    """
    path = Path(path)
    if not path.is_file():
        raise SpikeportError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpikeportError(f"{path}: not a readable spikeport checkpoint (truncated or corrupt: {first})") from None
    found = payload.get("format") if isinstance(payload, dict) else None
    if kind is not None and found != kind:
        raise SpikeportError(f"{path}: not a spikeport checkpoint of kind {kind!r} (format tag {found!r}; "
                             "written by another program?)")
    if not (isinstance(found, str) and found.startswith("spikeport")):
        raise SpikeportError(f"{path}: not a spikeport checkpoint (format tag {found!r}; written by another program?)")
    if int(payload.get("version", 0)) > VERSION:
        raise SpikeportError(f"{path}: checkpoint version {payload['version']} is newer than this spikeport ({VERSION})")
    return payload


def kind_of(path) -> str | None:
    """The kind tag of a readable checkpoint, else None (never raises)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - anything unreadable simply has no tag
        return None
    return payload.get("format") if isinstance(payload, dict) else None


def load_weights(path, model: torch.nn.Module, state_dict: dict) -> None:
    """``model.load_state_dict``; a mismatch with the stored config is a one-line error."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise SpikeportError(f"{path}: weights do not match the stored config ({str(exc).splitlines()[0]})") from None

