"""Exact spike times, and their exact gradients, in continuous-time multilayer LIF networks.

Neuron model: the continuous-time current-based LIF whose discretisation is
Lava's CUBA LIF (the canonical neuron of spikeport). Time ``t`` in ms;
``u`` in threshold units per ms, ``v`` in threshold units (dimensionless)::

    du/dt = -u / tau_syn   + Σ_j W_ij Σ_f δ(t - t_j^f - d)    (a spike arriving adds W_ij to u)
    dv/dt = -v / tau_mem   + u
    spike when v reaches vth (upward crossing), then v <- 0 (u keeps its value)

``d`` is the hop delay of the synapse (ms, see below). Because a spike happens
exactly when ``v = vth``, "reset to 0" is "subtract vth" and the model is
linear between spikes: it *is* a spike response model (SRM) with a
difference-of-exponentials PSP kernel and an exponential reset kernel,

    V_i(t) = Σ_j W_ij Σ_f eps(t - t_j^f - d) - vth Σ_{t_i^f < t} exp(-(t - t_i^f) / tau_mem),
    eps(s) = c (exp(-s/tau_mem) - exp(-s/tau_syn)),  c = tau_syn tau_mem / (tau_mem - tau_syn),

for ``s > 0`` (``eps`` is v's response to a unit jump of u; ``tau_syn != tau_mem``).

Forward (event-based, exact; `models.spike_events`). Layers are simulated one
after the other; a layer's presynaptic spikes are all known before it runs. Between two
arrivals ``v`` is ``A exp(-x/tau_mem) + D exp(-x/tau_syn)``, a function with
at most one extremum (closed form), so whether ``v`` reaches threshold in an
interval is decided exactly, and the crossing is found by a bracketed
Newton/bisection to machine precision. A neuron's spikes are found one at a
time (round r finds the first crossing after spike r-1, over all intervals
at once), batched over samples and neurons in numpy.

Gradients (exact, implicit function theorem). Each spike time solves
``V_i(t_k; W, earlier spikes) = vth``, so

    dt_k/dθ = -(∂V_i/∂θ) / V̇_i(t_k)     for any weight or earlier spike time θ,

where ``∂V/∂θ`` runs through the presynaptic spike times (which depend on
earlier layers) and the neuron's own earlier spikes (through the reset
kernel). `implicit_times` rebuilds every spike time as the torch expression
``t* - (V(t*) - V(t*).detach()) / V̇(t*)``: its value is ``t*`` and its
autograd gradient is exactly the formula above, chained through all layers
and all earlier spikes. Spikes that appear or vanish are not seen by any
gradient (the spike count is piecewise constant).

Time base and deployment. With input spikes on the integer-ms grid, the
Lava discretisation (1 step = 1 ms, ``du = 1 - exp(-1/tau_syn)``,
``dv = 1 - exp(-1/tau_mem)``, weights times `ContinuousLIF.step_gain`)
samples the sub-threshold membrane *exactly* at integer times, and a spike
at step n means a crossing in ``(n-1, n]`` ms. A deployed hidden neuron that
crosses at ``t`` is seen downstream as if at ``ceil(t)``: on average half a
step late. The continuous model makes that explicit with a delay ``d`` on
every synapse whose source is a spiking layer (``hop_delay``, default
0.5 ms) and none on the input synapses (inputs sit on the grid). Teacher and
student share it, so it is part of the model, not a correction.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Optional

import numpy as np
import torch
from torch import nn

from models.errors import SpikeportError
from models.continuous_lif import ContinuousLIF
from models.spike_events import simulate_layer

INF = math.inf


# ----------------------------------------------------- exact gradients (torch)
def implicit_times(t_star: torch.Tensor, arrivals: torch.Tensor, weight: torch.Tensor,
                   neuron: ContinuousLIF, min_slope: float = 0.0) -> torch.Tensor:
    """Spike times (B, n, K) equal to ``t_star`` whose autograd gradient is the exact one.

    ``t_star``: the event simulation's times (no gradient); ``arrivals`` (B, n_pre, Kp)
    and ``weight`` (n, n_pre) may require grad. For each spike, in order,
    ``t_k = t* - (V(t*) - V(t*).detach()) / V̇(t*)``, with V built from the
    already-rebuilt earlier spikes and their reset jumps, so the gradient
    chains through resets. ``min_slope`` (1/ms) floors V̇ in the backward pass
    (0 = exact).
    """
    t_star = t_star.detach().to(torch.float64)
    valid = torch.isfinite(t_star)
    t0 = torch.where(valid, t_star, torch.zeros_like(t_star))
    v_in, vdot_in = _input_drive(t0, arrivals, weight, neuron)
    times, coefs = [], []
    for k in range(t_star.shape[-1]):
        v, vdot = v_in[..., k], vdot_in[..., k]
        if times:
            r, rdot = _reset_drive(t0[..., k], torch.stack(times, -1), torch.stack(coefs, -1), neuron)
            v, vdot = v + r, vdot + rdot
        vdot = vdot.detach().clamp_min(min_slope) if min_slope > 0 else vdot.detach()
        vdot = torch.where(valid[..., k], vdot, torch.ones_like(vdot))
        t_k = torch.where(valid[..., k], t0[..., k] - (v - v.detach()) / vdot, torch.full_like(vdot, INF))
        coefs.append(_reset_jump(t_k, times, coefs, arrivals, weight, neuron))
        times.append(t_k)
    return torch.stack(times, dim=-1)


def _reset_jump(t_k, times, coefs, arrivals, weight, neuron):
    """``c_k``: the jump of v at ``t_k + refractory`` that sets it to 0 after the hold,
    ``-v_free(t_k + r)`` (exactly ``-vth`` when r = 0); 0 for absent spikes."""
    valid = torch.isfinite(t_k)
    if neuron.refractory == 0:
        return torch.where(valid, torch.full_like(t_k, -neuron.vth), torch.zeros_like(t_k))
    t_h = torch.where(valid, t_k + neuron.refractory, torch.zeros_like(t_k))
    v_free = _input_drive(t_h[..., None], arrivals, weight, neuron)[0][..., 0]
    if times:
        v_free = v_free + _reset_drive(t_h, torch.stack(times, -1), torch.stack(coefs, -1), neuron)[0]
    return torch.where(valid, -v_free, torch.zeros_like(v_free))


def reset_jumps(own: torch.Tensor, arrivals: torch.Tensor, weight: torch.Tensor,
                neuron: ContinuousLIF) -> torch.Tensor:
    """Reset jumps ``c_f`` (B, n, K) of given own spike times (differentiable in all inputs)."""
    times, coefs = [], []
    for k in range(own.shape[-1]):
        t_k = own[..., k].to(torch.float64)
        coefs.append(_reset_jump(t_k, times, coefs, arrivals, weight, neuron))
        times.append(t_k)
    return torch.stack(coefs, dim=-1)


def _input_drive(t, arrivals, weight, neuron):
    """Σ_j W_ij Σ_q eps(t - a_jq) and its time derivative at times t (B, n, K)."""
    B, n_pre, Kp = arrivals.shape
    a = arrivals.to(torch.float64).reshape(B, 1, 1, n_pre * Kp)
    w = weight.to(torch.float64).repeat_interleave(Kp, dim=1)[None, :, None, :]  # (1, n, 1, E)
    lag = t[..., None] - a
    before = lag > 0  # arrivals strictly before t (inf arrivals never)
    lag = torch.where(before, lag, torch.ones_like(lag))
    eps = torch.where(before, neuron.psp(lag), torch.zeros_like(lag))
    slope = torch.where(before, neuron.psp_slope(lag), torch.zeros_like(lag))
    return (w * eps).sum(-1), (w * slope).sum(-1)


def _reset_drive(t, prev, coef, neuron):
    """``Σ_f c_f exp(-(t - t_f - r)/tau_mem)`` over earlier spikes whose hold has ended, and its
    time derivative; t (B, n), prev and coef (B, n, k)."""
    lag = t[..., None] - prev - neuron.refractory
    on = torch.isfinite(prev) & (lag >= 0)
    decay = torch.where(on, torch.exp(-torch.where(on, lag, torch.zeros_like(lag)) / neuron.tau_mem),
                        torch.zeros_like(lag))
    jump = (coef * decay).sum(-1)
    return jump, -jump / neuron.tau_mem


def membrane(t_grid: torch.Tensor, arrivals: torch.Tensor, weight: torch.Tensor, own: torch.Tensor,
             neuron: ContinuousLIF) -> torch.Tensor:
    """V (threshold units) at times ``t_grid`` for every sample and neuron: (B, n, G).

    ``t_grid``: (G,) shared times, or (B, n, G) per train (inf entries give V = 0
    and no gradient). ``own`` (B, n, K): the neuron's own spike times (resets;
    V is 0 during each refractory hold). Differentiable in arrivals, weight and
    own times (not in t_grid).
    """
    B, n = own.shape[:2]
    own = own.to(torch.float64)
    t = t_grid.detach().to(torch.float64).expand(B, n, -1)
    t = torch.where(torch.isfinite(t), t, torch.full_like(t, -1.0))  # before every spike: V = 0
    v_in, _ = _input_drive(t, arrivals, weight, neuron)
    coefs = reset_jumps(own, arrivals, weight, neuron)
    lag = t[..., :, None] - own[..., None, :] - neuron.refractory  # (B, n, G, K)
    on = torch.isfinite(own)[..., None, :] & (lag >= 0)
    decay = torch.where(on, torch.exp(-torch.where(on, lag, torch.zeros_like(lag)) / neuron.tau_mem),
                        torch.zeros_like(lag))
    v = v_in + (coefs[..., None, :] * decay).sum(-1)
    held = ((lag < 0) & (lag > -neuron.refractory) & torch.isfinite(own)[..., None, :]).any(-1)  # (t_f, t_f + r)
    if neuron.refractory > 0:
        v = torch.where(held, torch.zeros_like(v), v)
    return v


# -------------------------------------------------------------------- network
class ExactNetwork(nn.Module):
    """Feed-forward layers of continuous-time CUBA LIF neurons with exact spike-time gradients.

    ``sizes = [n_in, n_1, ..., n_out]``; ``weights[l]`` is (n_{l+1}, n_l) in
    threshold units per ms (a spike adds W to u). Input synapses have no
    delay; every synapse from a spiking layer has ``hop_delay`` ms (see the
    module docstring). Spikes are simulated in ``(0, t_end]`` ms.
    ``config`` rebuilds the architecture: ``ExactNetwork(**config)``.
    """

    def __init__(self, sizes, *, tau_syn: float = 5.0, tau_mem: float = 10.0, vth: float = 1.0,
                 refractory: float = 0.5, hop_delay: float = 0.5, t_end: float = 100.0, max_spikes: int = 100):
        super().__init__()
        if len(sizes) < 2 or min(sizes) < 1:
            raise SpikeportError(f"exact network: sizes={sizes} needs an input size and >= 1 layer, all >= 1")
        if hop_delay < 0:
            raise SpikeportError(f"exact network: hop_delay={hop_delay} is outside [0, inf) ms")
        self.neuron = ContinuousLIF(tau_syn, tau_mem, vth, refractory)
        self.sizes = [int(s) for s in sizes]
        self.hop_delay, self.t_end, self.max_spikes = float(hop_delay), float(t_end), int(max_spikes)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(n_out, n_in, dtype=torch.float64))
            for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def config(self) -> dict:
        return dict(sizes=list(self.sizes), **asdict(self.neuron), hop_delay=self.hop_delay,
                    t_end=self.t_end, max_spikes=self.max_spikes)

    def delay(self, layer: int) -> float:
        """Delay (ms) of the synapses into ``layer``: 0 from the input, ``hop_delay`` otherwise."""
        return 0.0 if layer == 0 else self.hop_delay

    def forward(self, x_times: torch.Tensor, min_slope: float = 0.0) -> list[torch.Tensor]:
        """Spike times (ms) of every layer, each (B, n, K) inf-padded, with exact gradients.

        ``x_times``: input spike times (B, n_in, K_in) (ms, inf-padded).
        """
        arrivals = torch.as_tensor(x_times, dtype=torch.float64)
        out = []
        for layer, w in enumerate(self.weights):
            arrivals = arrivals + self.delay(layer)
            t_star = simulate_layer(arrivals.detach().numpy(), w.detach().numpy(), self.neuron, self.t_end,
                                    self.max_spikes)
            t = implicit_times(torch.from_numpy(t_star), arrivals, w, self.neuron, min_slope)
            out.append(t)
            arrivals = t
        return out

    @torch.no_grad()
    def simulate(self, x_times) -> list[np.ndarray]:
        """Spike times of every layer without gradients (numpy)."""
        arrivals = np.asarray(torch.as_tensor(x_times, dtype=torch.float64))
        out = []
        for layer, w in enumerate(self.weights):
            arrivals = arrivals + self.delay(layer)
            arrivals = simulate_layer(arrivals, w.detach().numpy(), self.neuron, self.t_end, self.max_spikes)
            out.append(arrivals)
        return out

    def membranes(self, x_times, t_grid: torch.Tensor, spikes: Optional[list] = None) -> list[torch.Tensor]:
        """V of every layer on ``t_grid`` (B, n, G), from given or freshly simulated spikes."""
        spikes = spikes if spikes is not None else self.forward(x_times)
        arrivals = torch.as_tensor(x_times, dtype=torch.float64)
        out = []
        for layer, (w, own) in enumerate(zip(self.weights, spikes)):
            arrivals = arrivals + self.delay(layer)
            out.append(membrane(t_grid, arrivals, w, torch.as_tensor(own), self.neuron))
            arrivals = torch.as_tensor(own)
        return out
