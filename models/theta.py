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
    keeps tan finite). The backward pass is the closed form (`_Transfer`), one fused step
    instead of autograd through tan and arctan.
    """
    return _Transfer.apply(phi, w, neuron)


class _Transfer(torch.autograd.Function):
    """H with its exact derivatives, V = Phi^-1(phi), V' = V + w, c = I0 - 1/4::

        dH/dphi = (c + (V - 1/2)**2) / (c + (V' - 1/2)**2),    dH/dw = tau / (c + (V' - 1/2)**2)

    and (1, 0) where the phase is left unchanged.
    """

    @staticmethod
    def forward(ctx, phi, w, neuron):
        inside = (phi > neuron.eps) & (phi < neuron.Theta - neuron.eps)
        safe = torch.where(inside, phi, torch.full_like(phi, neuron.Theta / 2))
        x = voltage(safe, neuron) - 0.5
        moved = x + w
        ctx.save_for_backward(x, moved, inside)
        ctx.neuron, ctx.shapes = neuron, (phi.shape, w.shape)
        return torch.where(inside, phase(moved + 0.5, neuron), phi)

    @staticmethod
    def backward(ctx, grad):
        x, moved, inside = ctx.saved_tensors
        c = ctx.neuron.I0 - 0.25
        denom = c + moved * moved
        d_phi = torch.where(inside, (c + x * x) / denom, torch.ones_like(x)) * grad
        d_w = torch.where(inside, ctx.neuron.tau / denom, torch.zeros_like(x)) * grad
        phi_shape, w_shape = ctx.shapes
        return d_phi.sum_to_size(phi_shape), d_w.sum_to_size(w_shape), None


def layer(phi0: torch.Tensor, times: torch.Tensor, jumps: torch.Tensor, T: float, neuron: ThetaNeuron,
          compiled: bool | None = None):
    """Run one layer exactly through its sorted input events.

    phi0: (N,) or (B, N) initial phases at t = 0. times: (B, K) event times, sorted, ``inf``
    (or anything >= T) for padding. jumps: (B, K, N), the voltage jump event k gives each
    neuron. Returns (spike times (B, K + 1, N) with ``inf`` where none, one slot per
    interval between events; end phases phi(T) (B, N)). ``compiled``: run the numba kernel
    (`models.theta_kernel`; default when numba is installed) or the PyTorch reference, one
    `_Interval` per interval; both compute the same numbers.
    """
    Theta = neuron.Theta
    if not T < Theta:
        raise SpikeportError(f"theta layer: T={T} is outside (0, Theta={Theta:.6g}) "
                             "(one spike per interval between events)")
    B, K = times.shape
    phi = phi0.expand(B, -1) if phi0.dim() == 1 else phi0
    ends = torch.cat([torch.clamp(times, max=T), torch.full_like(times[:, :1], T)], 1)
    if compiled is None:
        compiled = _kernel() is not None
    if compiled:  # the kernel stops at the first event at or after T, so never reads a padding jump
        return _kernel().CompiledLayer.apply(phi, ends, jumps, neuron, T)
    jumps = jumps * (times < T).to(phi.dtype)[:, :, None]  # a padding event (at or after T) jumps by 0
    fire_times, fired = [], []
    t_prev = torch.zeros_like(ends[:, :1])
    for k, jump in enumerate([*jumps.unbind(1), torch.zeros_like(phi)]):  # the trial end jumps by 0
        t_k = ends[:, k:k + 1]
        phi, t_fire, hit = _Interval.apply(phi, t_prev, t_k, jump, neuron, T)
        fire_times.append(t_fire)
        fired.append(hit)
        t_prev = t_k
    spikes = torch.where(torch.stack(fired, 1), torch.stack(fire_times, 1), math.inf)
    return spikes, phi


def _kernel():
    """`models.theta_kernel` if numba is installed, else None."""
    try:
        from models import theta_kernel
    except ImportError:
        return None
    return theta_kernel


class _Interval(torch.autograd.Function):
    """One interval of `layer`, fused, with its exact backward.

    From phase ``phi`` at time ``t_prev`` to the event at ``t_k``: ``a = phi + t_k - t_prev``;
    a neuron fires if ``a >= Theta`` (and its time ``t_f = t_prev + Theta - phi`` is before T)
    and restarts, ``r = a - Theta [fired]``; then the event's jump w: ``out = H(r, w)``.
    Outputs (out, t_f, fired). With ``H_r``, ``H_w`` the derivatives of `_Transfer`::

        d out = H_r (d phi + d t_k - d t_prev) + H_w d w,      d t_f = d t_prev - d phi
    """

    @staticmethod
    def forward(ctx, phi, t_prev, t_k, jump, neuron, T):
        Theta = neuron.Theta
        advanced = phi + (t_k - t_prev)
        t_fire = t_prev + (Theta - phi)
        hit = (advanced >= Theta) & (t_fire < T)  # a spike exactly at T is outside the trial
        restarted = advanced - Theta * hit
        inside = (restarted > neuron.eps) & (restarted < Theta - neuron.eps)
        safe = torch.where(inside, restarted, torch.full_like(restarted, Theta / 2))
        x = voltage(safe, neuron) - 0.5
        moved = x + jump
        out = torch.where(inside, phase(moved + 0.5, neuron), restarted)
        ctx.save_for_backward(x, moved, inside)
        ctx.neuron = neuron
        ctx.mark_non_differentiable(hit)
        return out, t_fire, hit

    @staticmethod
    def backward(ctx, g_out, g_fire, _):
        x, moved, inside = ctx.saved_tensors
        n = ctx.neuron
        c = n.I0 - 0.25
        denom = c + moved * moved
        g_r = torch.where(inside, (c + x * x) / denom, torch.ones_like(x)) * g_out
        g_w = torch.where(inside, n.tau / denom, torch.zeros_like(x)) * g_out
        g_k = g_r.sum(1, keepdim=True)
        return g_r - g_fire, g_fire.sum(1, keepdim=True) - g_k, g_k, g_w, None, None


def sorted_events(spike_times: torch.Tensor, T: float):
    """The spikes of a layer as the next layer's events: (times (B, K), source neuron (B, K)).

    spike_times (B, S, N) with ``inf`` for none; K is the batch's largest spike count before T
    (>= 1); a sample with fewer events is padded with ``inf``. Simultaneous spikes come in
    neuron order within a slot. The order is found without autograd (by the compiled kernel
    when numba is installed); the times are gathered from ``spike_times``, so gradients flow.
    """
    B, S, N = spike_times.shape
    flat = spike_times.reshape(B, S * N)
    if _kernel() is not None:
        order = torch.from_numpy(_kernel().event_order(flat.detach().contiguous().numpy(), T))
    else:
        count = int((flat < T).sum(1).max()) if flat.numel() else 0
        order = torch.topk(flat.detach(), max(count, 1), dim=1, largest=False, sorted=True).indices
    return flat.gather(1, order), order % N


def dense_jumps(weight: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """The jumps (B, K, N_out) of events from neurons ``sources`` (B, K) through ``weight``
    (N_out, N_in): one gather of contiguous rows; its backward is one sum of rows (compiled
    when numba is installed: autograd's accumulating ``index_put_`` runs serially, about 16 ms
    per MNIST batch and layer)."""
    table = weight.t().contiguous()
    return table[sources] if _kernel() is None else _kernel().Rows.apply(table, sources)


def first_spike(spike_times: torch.Tensor) -> torch.Tensor:
    """Each neuron's first spike time (B, N) from `layer`'s slots; ``inf`` if silent."""
    return spike_times.min(dim=1).values


def pseudo_times(ends: list, weights: list, first_output: torch.Tensor, neuron: ThetaNeuron, T: float):
    """Output spike times with pseudospikes: the first ordinary spike where one exists, else
    ``T + Theta - H(phi_out(T), u_out)`` with pseudo rates propagated from the first layer, whose
    pseudo input is 0 (``ends``: end phases per layer (B, N_l); ``weights[l]`` feeds layer l + 1
    from layer l; a single layer has none)."""
    drive = torch.zeros_like(ends[0])
    for end, weight in zip(ends[:-1], weights):
        drive = (transfer(end, drive, neuron) / neuron.Theta) @ weight.t()
    pseudo = T + neuron.Theta - transfer(ends[-1], drive, neuron)
    return torch.where(torch.isfinite(first_output), first_output, pseudo)


def smooth_loss(t_out: torch.Tensor, labels: torch.Tensor, T: float, gamma: float) -> torch.Tensor:
    """Mean over the batch of CE(softmax(-t_out), label) + gamma (exp(t_label / T) - 1)."""
    ce = torch.nn.functional.cross_entropy(-t_out, labels, reduction="none")
    t_label = t_out.gather(1, labels[:, None])[:, 0]
    return (ce + gamma * (torch.exp(t_label / T) - 1)).mean()
