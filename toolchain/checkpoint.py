"""Model checkpoints: ``.pt`` files holding the architecture config and weights.

Layout (a plain dict, loadable with ``torch.load(weights_only=True)``)::

    {"format": "spikeport-checkpoint", "version": 1,
     "config": Network.config, "state_dict": ..., "meta": {task, encoding, accuracy, seed, ...}}

The network is rebuilt from ``config`` alone, so the code that trained it is
not needed. Writes are atomic.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from models.errors import SpikeportError
from models.network import Network
from toolchain.files import atomic_path

FORMAT = "spikeport-checkpoint"
VERSION = 1


def save(path, model: Network, meta: dict) -> None:
    """Write ``model`` and ``meta`` to ``path`` atomically."""
    write_payload(path, FORMAT, VERSION, config=model.config, state_dict=model.state_dict(), meta=meta)


def load(path) -> tuple[Network, dict]:
    """Rebuild the network in ``path``; any unreadable or foreign file is a one-line error."""
    payload = read_payload(path, FORMAT, VERSION)
    model = Network(payload["config"])
    load_weights(path, model, payload["state_dict"])
    return model, payload.get("meta", {})


def write_payload(path, fmt: str, version: int, **fields) -> None:
    """Atomically ``torch.save`` ``{"format": fmt, "version": version, **fields}`` to ``path``."""
    with atomic_path(path) as tmp:
        torch.save({"format": fmt, "version": version, **fields}, tmp)


def read_payload(path, fmt: str, version: int) -> dict:
    """The dict in ``path`` if it carries format tag ``fmt`` at a version <= ``version``.

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
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise SpikeportError(f"{path}: not a spikeport checkpoint of kind {fmt!r} (format tag {found!r}; "
                             "written by another program?)")
    if int(payload.get("version", 0)) > version:
        raise SpikeportError(f"{path}: checkpoint version {payload['version']} is newer than this spikeport ({version})")
    return payload


def format_of(path) -> str | None:
    """The format tag of a readable ``.pt`` checkpoint, else None (never raises)."""
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
