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
    payload = {"format": FORMAT, "version": VERSION, "config": model.config,
               "state_dict": model.state_dict(), "meta": meta}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path) -> tuple[Network, dict]:
    """Rebuild the network in ``path``; any unreadable or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise SpikeportError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpikeportError(f"{path}: not a readable spikeport checkpoint (truncated or corrupt: {first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SpikeportError(f"{path}: not a spikeport checkpoint (format tag missing; written by another program?)")
    if int(payload.get("version", 0)) > VERSION:
        raise SpikeportError(f"{path}: checkpoint version {payload['version']} is newer than this spikeport ({VERSION})")
    model = Network(payload["config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise SpikeportError(f"{path}: weights do not match the stored config ({str(exc).splitlines()[0]})") from None
    return model, payload.get("meta", {})
