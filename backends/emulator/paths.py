"""Which implementation runs: the emulator chooses, or a test pins one path (`forced`).

Two choices have a reference and a fast path computing the same integers:

* ``synapse``: a binary fixed-mode synapse's block of outputs as a matrix product
  (``"dense"``: BLAS, or scipy's csr product where that is cheaper; the reference) or event-driven, adding the weight rows of the spiking
  sources (``"event"``, `backends.emulator.kernels.event_sums`). By default the
  emulator counts the block's spikes and takes the cheaper one
  (`backends.emulator.nodes.event_driven`).
* ``neuron``: a fixed-mode LIF population's block as numpy array passes
  (``"numpy"``, the reference) or one compiled loop (``"compiled"``,
  `backends.emulator.kernels.lif_fixed_block`, the default).

The tests run both paths on the same networks (and against Lava) and require
identical recordings.
"""
from __future__ import annotations

import contextlib

PATHS = {"synapse": None, "neuron": None}  # None: the emulator chooses
CHOICES = {"synapse": ("dense", "event"), "neuron": ("numpy", "compiled")}


@contextlib.contextmanager
def forced(synapse: str = None, neuron: str = None):
    """Inside the block, every synapse runs on ``synapse`` and every LIF population on
    ``neuron`` (None: the emulator chooses)."""
    for kind, path in (("synapse", synapse), ("neuron", neuron)):
        if path not in (None, *CHOICES[kind]):
            raise ValueError(f"forced: {kind}={path!r} is not one of {CHOICES[kind]}")
    saved = dict(PATHS)
    PATHS.update(synapse=synapse, neuron=neuron)
    try:
        yield
    finally:
        PATHS.update(saved)
