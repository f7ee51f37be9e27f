"""Hardware targets: the resource limits a network is checked and mapped against.

``loihi2``, from Intel's Loihi 2 brief ("Taking Neuromorphic Computing to the
Next Level with Loihi 2", 2021): 128 neuro-cores per chip, up to 8,192 neurons
per core (1M per chip); ~120M synapses per chip, i.e. ~937k 8-bit synapse
entries per core, used as the per-core synapse-memory budget. The parameter
ranges (8-bit weight mantissas, weight_exp in [-8, 7], 12-bit du/dv, 17-bit
vth, 13-bit bias mantissa with a 3-bit exponent, 6-bit delays, 24-bit u and
v) live with the ops that have those parameters (`toolchain.ir.ops`).
"""
from __future__ import annotations

from dataclasses import dataclass

from models.errors import SpikeportError


@dataclass(frozen=True)
class Target:
    name: str
    neurons_per_core: int
    cores_per_chip: int
    synapses_per_core: int


TARGETS = {"loihi2": Target("loihi2", neurons_per_core=8192, cores_per_chip=128,
                            synapses_per_core=120_000_000 // 128)}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise SpikeportError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    return TARGETS[name]
