"""Which implementation runs: the emulator chooses, or a test pins one path (`forced`).

Three choices have a reference and a fast path computing the same integers:

* ``network``: a small fixed-point LIF network as one compiled loop over all its
  steps (``"compiled"``, `backends.emulator.network.CompiledNetwork`, the default
  where it applies) or on the block scheduler (``"blocks"``, the reference);

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

The fast paths are numba code, and loading it costs about a second the first
time in a process (numba's import and its cached machine code): a one-off
small run is cheaper on the reference paths. So the emulator takes the fast
paths once the kernels are loaded, and loads them (`warm_up`) for a run of at
least `WARM_UP_WORK` neuron-steps or for a prepared program's second run (the
steady state of repeated single inputs). `forced` overrides all of this.
"""
from __future__ import annotations

import contextlib
import sys

PATHS = {"network": None, "synapse": None, "neuron": None}  # None: the emulator chooses
CHOICES = {"network": ("blocks", "compiled"), "synapse": ("dense", "event"), "neuron": ("numpy", "compiled")}


WARM_UP_WORK = 2_000_000  # neuron-steps (B * T * neurons) of one run that pay for loading the kernels
KERNELS = "backends.emulator.kernels"


def warm_up(work: int, repeated: bool) -> None:
    """Load the compiled kernels for a run of ``work`` neuron-steps when that pays (see above)."""
    if KERNELS not in sys.modules and (repeated or work >= WARM_UP_WORK):
        __import__(KERNELS)


def loaded() -> bool:
    """Whether the compiled kernels are loaded in this process (then they cost nothing more)."""
    return KERNELS in sys.modules


def fast(kind: str) -> bool:
    """Whether the ``kind`` choice takes its fast path: forced, or free and the kernels loaded."""
    path = PATHS[kind]
    return path == CHOICES[kind][1] or (path is None and loaded())


@contextlib.contextmanager
def forced(network: str = None, synapse: str = None, neuron: str = None):
    """Inside the block, networks run on ``network``, every synapse of the block scheduler
    on ``synapse`` and every LIF population on ``neuron`` (None: the emulator chooses)."""
    for kind, path in (("network", network), ("synapse", synapse), ("neuron", neuron)):
        if path not in (None, *CHOICES[kind]):
            raise ValueError(f"forced: {kind}={path!r} is not one of {CHOICES[kind]}")
    saved = dict(PATHS)
    PATHS.update(network=network, synapse=synapse, neuron=neuron)
    try:
        yield
    finally:
        PATHS.update(saved)
