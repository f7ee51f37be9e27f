"""SuperSpike checkpoints: the `Network` config, its weights and the training meta.

Payload (kind ``spikeport-checkpoint``, `toolchain.checkpoint`)::

    {"config": Network.config, "state_dict": ..., "meta": {task, encoding, accuracy, seed, ...}}

The network is rebuilt from ``config`` alone.
"""
from __future__ import annotations

from models.network import Network
from toolchain import checkpoint
from toolchain.methods.superspike.config import KIND


def save(path, model: Network, meta: dict) -> None:
    """Write ``model`` and ``meta`` to ``path`` atomically."""
    checkpoint.write_network(path, KIND, model, meta)


def load(path) -> tuple[Network, dict]:
    """Rebuild the network in ``path``; any unreadable or foreign file is a one-line error."""
    return checkpoint.read_network(path, KIND, Network)
