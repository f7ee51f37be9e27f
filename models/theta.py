"""Theta neurons with delta-pulse synapses, simulated exactly and layer by layer (Klos & Memmesheimer).

C. Klos and R.-M. Memmesheimer, "Smooth exact gradient descent learning in
spiking neural networks", Phys. Rev. Lett. 134, 027301 (2025).

Neuron (voltage form; time dimensionless, trial ``[0, T]``)::

    tau dV/dt = V (V - 1) + I0 + tau * sum_i w_i sum_k delta(t - t_i^k)

so an input spike through weight ``w`` makes V jump by ``w``. V reaches +inf
in finite time (the spike) and restarts from -inf. With ``c = I0 - 1/4 > 0``
the neuron oscillates; in the phase ``phi = Phi(V)``,

    Phi(V)    = tau / sqrt(c) * (arctan((V - 1/2) / sqrt(c)) + pi / 2)     in (0, Theta)
    Theta     = tau * pi / sqrt(c)                                         (the free period)

``dphi/dt = 1`` between inputs, a spike is ``phi`` reaching ``Theta`` (then
``phi = 0``), and an input of weight ``w`` maps ``phi`` to the phase transfer
``H(phi, w) = Phi(Phi^-1(phi) + w)`` (`transfer`). ``H < Theta`` always, so an
input never makes a neuron spike at once: spikes move continuously with the
parameters and appear or vanish only at the trial end.

Layer-by-layer simulation (`layer`): a feed-forward layer receives the sorted
spike times of the layer below (padded with ``inf``) and runs all its neurons
through them at once, batched: between events every phase advances by the
time elapsed, a neuron whose phase passes ``Theta`` spikes (at most once per
interval, since intervals are shorter than ``T < Theta``) and restarts, and at
each event every phase takes ``H``. This is the exact event solution, as in
the authors' code (which updates all neurons of the network at every event);
`models.theta_events` is that straightforward loop, kept as the test oracle.
Boundary rule as in the reference code: phases within ``eps`` of 0 or
``Theta`` are not moved by inputs.

Pseudospikes (`pseudo_times`): every neuron's end phase ``phi(T)`` defines a
pseudo rate ``r = H(phi(T), u) / Theta`` with ``u = W r_below`` (first hidden
layer: ``u = 0``), and an output neuron that did not fire gets the pseudospike
time ``T + Theta - H(phi(T), u)`` (> T): the time it would fire if it ran on
past T with its pseudo input applied at T. Loss and spike times are then
continuous in all parameters, and silent neurons receive gradients.

Gradients: autograd through `transfer` (closed-form arctan/tan), the event
ordering (``torch.sort`` values) and the spike times ``t = t_k + Theta - phi``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from models.errors import SpikeportError


@dataclass(frozen=True)
class ThetaNeuron:
    """Constants of the theta neuron: ``tau`` (time units), ``I0`` (> 1/4), boundary ``eps``.

    Defaults are the reference MNIST values: tau = 6/pi, I0 = 5/4, so c = 1 and Theta = 6.
    """

    tau: float = 6.0 / math.pi
    I0: float = 1.25
    eps: float = 1e-6

    def __post_init__(self):
        if not self.tau > 0:
            raise SpikeportError(f"theta neuron: tau={self.tau} is outside (0, inf)")
        if not self.I0 > 0.25:
            raise SpikeportError(f"theta neuron: I0={self.I0} is outside (1/4, inf) (oscillatory regime)")

    @property
    def root(self) -> float:
        """sqrt(c), c = I0 - 1/4."""
        return math.sqrt(self.I0 - 0.25)

    @property
    def Theta(self) -> float:
        """The phase at which the neuron spikes, equal to its free period (time units)."""
        return self.tau * math.pi / self.root


def phase(V: torch.Tensor, neuron: ThetaNeuron) -> torch.Tensor:
    """Phi(V): the phase (time units, in (0, Theta)) of voltage V."""
    return neuron.tau / neuron.root * (torch.atan((V - 0.5) / neuron.root) + math.pi / 2)


def voltage(phi: torch.Tensor, neuron: ThetaNeuron) -> torch.Tensor:
    """Phi^-1(phi): the voltage at phase phi; valid inside (0, Theta) (see `transfer` for the edges)."""
    return neuron.root * torch.tan(phi * neuron.root / neuron.tau - math.pi / 2) + 0.5


def transfer(phi: torch.Tensor, w: torch.Tensor, neuron: ThetaNeuron) -> torch.Tensor:
    """H(phi, w) = Phi(Phi^-1(phi) + w): the phase after a voltage jump w.

    Phases within ``eps`` of 0 or Theta are left unchanged (the reference code's rule, which
    keeps tan finite); the masked branch is evaluated at Theta/2 so no NaN reaches a gradient.
    """
    inside = (phi > neuron.eps) & (phi < neuron.Theta - neuron.eps)
    safe = torch.where(inside, phi, torch.full_like(phi, neuron.Theta / 2))
    moved = phase(voltage(safe, neuron) + w, neuron)
    return torch.where(inside, moved, phi)


def layer(phi0: torch.Tensor, times: torch.Tensor, jumps, T: float, neuron: ThetaNeuron):
    """Run one layer exactly through its sorted input events.

    phi0: (N,) or (B, N) initial phases at t = 0. times: (B, K) event times, sorted, ``inf``
    (or anything >= T) for padding. jumps(k) -> (B, N): the voltage jump event k gives each
    neuron. Returns (spike times (B, N, K + 1) with ``inf`` where none, one slot per
    interval between events; end phases phi(T) (B, N)).
    """
    Theta = neuron.Theta
    if not T < Theta:
        raise SpikeportError(f"theta layer: T={T} is outside (0, Theta={Theta:.6g}) "
                             "(one spike per interval between events)")
    B, K = times.shape
    phi = phi0.expand(B, -1) if phi0.dim() == 1 else phi0
    inf = torch.full_like(phi, math.inf)
    t_prev = torch.zeros_like(times[:, :1])
    spikes = []
    for k in range(K + 1):
        t_k = torch.clamp(times[:, k:k + 1], max=T) if k < K else torch.full_like(t_prev, T)
        advanced = phi + (t_k - t_prev)
        t_fire = t_prev + (Theta - phi)
        fired = (advanced >= Theta) & (t_fire < T)  # a spike exactly at T is outside the trial
        spikes.append(torch.where(fired, t_fire, inf))
        phi = torch.where(fired, advanced - Theta, advanced)
        if k < K:
            live = times[:, k:k + 1] < T
            phi = torch.where(live, transfer(phi, jumps(k), neuron), phi)
        t_prev = t_k
    return torch.stack(spikes, dim=2), phi


def sorted_events(spike_times: torch.Tensor, T: float):
    """The spikes of a layer as the next layer's events: (times (B, K), source neuron (B, K)).

    spike_times (B, N, S) with ``inf`` for none; K is the batch's largest spike count (>= 1).
    """
    B, N, S = spike_times.shape
    flat = spike_times.reshape(B, N * S)
    count = int((flat < T).sum(1).max()) if flat.numel() else 0
    values, order = torch.sort(flat, dim=1)
    K = max(count, 1)
    return values[:, :K], torch.div(order[:, :K], S, rounding_mode="floor")


def dense_jumps(weight: torch.Tensor, sources: torch.Tensor):
    """jumps(k) for events from neurons ``sources`` (B, K) through ``weight`` (N_out, N_in)."""
    w_t = weight.t()
    return lambda k: w_t[sources[:, k]]


def first_spike(spike_times: torch.Tensor) -> torch.Tensor:
    """Each neuron's first spike time (B, N) from `layer`'s slots; ``inf`` if silent."""
    return spike_times.min(dim=2).values


def pseudo_times(ends: list, weights: list, first_output: torch.Tensor, neuron: ThetaNeuron, T: float):
    """Output spike times with pseudospikes: the first ordinary spike where one exists, else
    ``T + Theta - H(phi_out(T), u_out)`` with pseudo rates propagated from the first hidden layer
    (``ends``: end phases per layer (B, N_l); ``weights[l]`` feeds layer l + 1 from layer l)."""
    rate = transfer(ends[0], torch.zeros_like(ends[0]), neuron) / neuron.Theta
    for end, weight in zip(ends[1:-1], weights):
        rate = transfer(end, rate @ weight.t(), neuron) / neuron.Theta
    drive = rate @ weights[-1].t()
    pseudo = T + neuron.Theta - transfer(ends[-1], drive, neuron)
    return torch.where(torch.isfinite(first_output), first_output, pseudo)


def smooth_loss(t_out: torch.Tensor, labels: torch.Tensor, T: float, gamma: float) -> torch.Tensor:
    """Mean over the batch of CE(softmax(-t_out), label) + gamma (exp(t_label / T) - 1)."""
    ce = torch.nn.functional.cross_entropy(-t_out, labels, reduction="none")
    t_label = t_out.gather(1, labels[:, None])[:, 0]
    return (ce + gamma * (torch.exp(t_label / T) - 1)).mean()
