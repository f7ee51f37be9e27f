"""The current-based QIF neuron with exact event-based simulation (Klos & Memmesheimer's variant).

    tau dV/dt = V (V - 1) + I,      dI/dt = -2 I / tau + sum_i w_i sum_k delta(t - t_i^k)

(membrane time constant tau, synaptic tau / 2): an input spike through weight ``w`` makes
the current I jump by ``w``; between inputs ``I(t) = I e^(-2t/tau)``, and because
tau_m = 2 tau_s the voltage has a closed-form flow (`flow_voltage`: tan for I > 0, tanh or
coth for I < 0, rational for I = 0) and the time to the next spike (V -> +inf) a closed
form too (`time_to_spike`). After a spike V restarts at ``-1/eps`` (standing for -inf).
Time is dimensionless (trial [0, T]).

`layer` runs a feed-forward layer exactly through its sorted input events, batched: in each
interval every neuron fires as often as its own next-spike time falls before the next event
(the current can make a neuron fire several times), then all flow to the event and take its
current jump. Pseudospikes (`pseudo_times`): with the suprathreshold pseudo drive
``I_p = softplus_alpha(I(T) + u)``, the k-th pseudospike is at ``T + k Theta_p - phi_p``,
``phi_p = tau (arctan((V - 1/2)/sqrt(I_p)) + pi/2) / sqrt(I_p)``, ``Theta_p = tau pi / sqrt(I_p)``.

The branches follow the authors' code; every branch is evaluated on values that keep it
finite, so the unselected ones give no NaN gradients, and the degenerate branches (I = 0,
|V| = sqrt(-I)) take their gradient from the neighbouring closed form, as there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from models.errors import SpikeportError

@dataclass(frozen=True)
class QIFNeuron:
    """``tau`` (time units), ``eps`` (V = +-1/eps stands for +-inf), ``alpha`` (pseudo softplus scale)."""

    tau: float = 1.0
    eps: float = 1e-6
    alpha: float = 10.0


def _detached_value(value: torch.Tensor, gradient_from: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass with the gradient of ``gradient_from``."""
    return value.detach() + gradient_from - gradient_from.detach()


def flow_voltage(V, I, dt, n: QIFNeuron) -> torch.Tensor:
    """V after ``dt`` of free flow from (V, I) (the closed forms of the module docstring)."""
    decay = torch.exp(-dt / n.tau)
    I_safe = torch.where(I != 0, I, I + 1e-6)
    root = torch.sqrt(I_safe.abs())
    grow = root * (1 - decay)
    positive = root * decay * torch.tan(torch.atan(V / root) + grow)
    zero = V / (V - (V - 1) / decay)
    at_root = torch.sign(V) * root * decay
    above = (I < 0) & (V.abs() > root)
    on_root = (I < 0) & (V.abs() == root)
    V_above = torch.where(on_root, V + 1e-6, torch.where(above, V, 2 * root))
    outside = root * decay / torch.tanh(torch.atanh(root / V_above) - grow)
    below = (I < 0) & (V.abs() < root)
    V_below = torch.where(below, V, torch.zeros_like(V))
    inside = root * decay * torch.tanh(torch.atanh(V_below / root) - grow)
    out = torch.where(I == 0, _detached_value(zero, positive),
                      torch.where(I > 0, positive,
                                  torch.where(on_root, _detached_value(at_root, outside),
                                              torch.where(above, outside, inside))))
    out = torch.clamp(out, max=1 / n.eps)
    return torch.where(dt > 0, out, V)


def flow_current(I, dt, n: QIFNeuron) -> torch.Tensor:
    """I after ``dt``: ``I e^(-2 dt / tau)``."""
    return I * torch.exp(-2 * dt / n.tau)


def time_to_spike(V, I, n: QIFNeuron) -> torch.Tensor:
    """Time until V reaches +inf without further input (``inf`` if never)."""
    I_safe = torch.where(I != 0, I, I + 1e-6)
    root = torch.sqrt(I_safe.abs())
    zero_fires = (I == 0) & (V > 1)
    V_zero = torch.where(zero_fires, V, torch.full_like(V, 2.0))
    dt_zero = n.tau * torch.log(V_zero / (V_zero - 1))
    positive_fires = (I > 0) & (root + torch.atan(V / root) > math.pi / 2)
    V_pos = torch.where(positive_fires | zero_fires, V, torch.full_like(V, 1 / n.eps))
    dt_pos = -n.tau * torch.log(1 - math.pi / (2 * root) + torch.atan(V_pos / root) / root)
    negative_fires = (I < 0) & (V > root) & (V * torch.tanh(root) > root)
    V_neg = torch.where(negative_fires, V, -2 * root)
    dt_neg = -n.tau * torch.log(1 - torch.atanh(root / V_neg) / root)
    inf = torch.full_like(V, math.inf)
    return torch.where(zero_fires, _detached_value(dt_zero, dt_pos),
                       torch.where(positive_fires, dt_pos, torch.where(negative_fires, dt_neg, inf)))


def layer(V0, I0, times, jumps, T: float, n: QIFNeuron, max_spikes: int = 64):
    """Run one layer exactly through its sorted input events (module docstring).

    V0, I0: (N,) or (B, N) state at t = 0; times (B, K) sorted (``inf`` padding); jumps(k) ->
    (B, N) current jumps. Returns (spike times (B, S, N), ``inf`` where none; end state V(T),
    I(T)). A neuron firing more than ``max_spikes`` times in one interval is refused.
    """
    B, K = times.shape
    V = V0.expand(B, -1) if V0.dim() == 1 else V0
    I = I0.expand(B, -1) if I0.dim() == 1 else I0
    clock = torch.zeros_like(V)
    ends = torch.cat([torch.clamp(times, max=T), torch.full_like(times[:, :1], T)], 1)
    live = (times < T).to(V.dtype)
    spikes = []
    for k in range(K + 1):
        t_k = ends[:, k:k + 1]
        for _ in range(max_spikes + 1):
            t_fire = clock + time_to_spike(V, I, n)
            fire = t_fire < t_k  # t_k <= T: a spike exactly at T is outside the trial
            if not bool(fire.any()):
                break
            spikes.append(torch.where(fire, t_fire, math.inf))
            I = torch.where(fire, flow_current(I, t_fire - clock, n), I)
            V = torch.where(fire, torch.full_like(V, -1 / n.eps), V)
            clock = torch.where(fire, t_fire, clock)
        else:
            raise SpikeportError(f"qif layer: a neuron fires more than max_spikes={max_spikes} times "
                                 "between two events")
        V, I = flow_voltage(V, I, t_k - clock, n), flow_current(I, t_k - clock, n)
        clock = t_k.expand_as(V)
        if k < K:
            I = I + jumps(k) * live[:, k:k + 1]
    empty = torch.full((B, 1, V.shape[1]), math.inf, dtype=V.dtype)
    return (torch.stack(spikes, 1) if spikes else empty), V, I


def pseudo_times(V, I, drive, k, n: QIFNeuron, T: float) -> torch.Tensor:
    """The k-th pseudospike time for end state (V, I) and pseudo input ``drive``."""
    pseudo = torch.nn.functional.softplus(I + drive, beta=1 / n.alpha)  # alpha ln(1 + e^(x / alpha))
    root = torch.sqrt(pseudo)
    phase = n.tau * (torch.atan((V - 0.5) / root) + math.pi / 2) / root
    return T + k * n.tau * math.pi / root - phase
