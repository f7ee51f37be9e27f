"""The continuous-time current-based LIF neuron of the exact spike-time methods.

Time ``t`` in ms; ``u`` in threshold units per ms, ``v`` in threshold units::

    du/dt = -u / tau_syn + (input jumps)      dv/dt = -v / tau_mem + u
    spike when v reaches vth (upward crossing), then v <- 0 (u keeps its value)

Its discretisation at 1 step = 1 ms is Lava's CUBA LIF (`ContinuousLIF.du`,
`ContinuousLIF.dv`, `ContinuousLIF.step_gain`). Simulated event by event in
`models.spike_events`; exact gradients and networks in `models.exact_spikes`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from models.errors import SpikeportError


# --------------------------------------------------------------------- neuron
@dataclass(frozen=True)
class ContinuousLIF:
    """Continuous-time CUBA LIF parameters: time constants in ms, threshold in v units."""

    tau_syn: float = 5.0
    tau_mem: float = 10.0
    vth: float = 1.0
    refractory: float = 0.0

    def __post_init__(self):
        if not (self.tau_syn > 0 and self.tau_mem > 0 and self.vth > 0):
            raise SpikeportError(f"neuron: tau_syn={self.tau_syn}, tau_mem={self.tau_mem}, vth={self.vth} must be > 0")
        if self.refractory < 0:
            raise SpikeportError(f"neuron: refractory={self.refractory} is outside [0, inf) ms")
        if abs(self.tau_syn - self.tau_mem) < 1e-9 * self.tau_mem:
            raise SpikeportError(f"neuron: tau_syn={self.tau_syn} must differ from tau_mem={self.tau_mem}")

    @property
    def c(self) -> float:
        """PSP scale ``tau_syn tau_mem / (tau_mem - tau_syn)`` (ms)."""
        return self.tau_syn * self.tau_mem / (self.tau_mem - self.tau_syn)

    def psp(self, s):
        """``eps(s)``: v's response to a unit jump of u, ``s > 0`` ms (torch or numpy)."""
        exp = torch.exp if isinstance(s, torch.Tensor) else np.exp
        return self.c * (exp(-s / self.tau_mem) - exp(-s / self.tau_syn))

    def psp_slope(self, s):
        """``eps'(s)`` (1/ms)."""
        exp = torch.exp if isinstance(s, torch.Tensor) else np.exp
        return self.c * (exp(-s / self.tau_syn) / self.tau_syn - exp(-s / self.tau_mem) / self.tau_mem)

    # ------------------------------------------------------ discretisation
    @property
    def du(self) -> float:
        """Lava current decay per 1-ms step, ``1 - exp(-1/tau_syn)`` (exact for u)."""
        return 1.0 - math.exp(-1.0 / self.tau_syn)

    @property
    def dv(self) -> float:
        """Lava voltage decay per 1-ms step, ``1 - exp(-1/tau_mem)``."""
        return 1.0 - math.exp(-1.0 / self.tau_mem)

    @property
    def step_gain(self) -> float:
        """Weight factor ``∫_0^1 exp(-(1-r)/tau_mem) exp(-r/tau_syn) dr`` for 1-ms steps.

        Lava adds ``u[n]`` (the current right after the step-(n-1) jump) to v
        once per step; the continuous v integrates the decaying current over
        the step. With weights times this factor the two agree exactly at
        integer times for grid-aligned inputs (between spikes).
        """
        a, b = 1.0 / self.tau_mem, 1.0 / self.tau_syn
        return (math.exp(-b) - math.exp(-a)) / (a - b)
