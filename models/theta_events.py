"""The straightforward event loop for theta networks: every neuron updated at every event.

A batched PyTorch port of the authors' reference simulation (Klos & Memmesheimer's
``spikegd``, ``AbstractPhaseOscNeuron.spike`` run ``K`` times): the network is one
population of N neurons with a full weight matrix; each event is the earlier of the next
input spike and the next network spike (the largest phase reaching Theta), all N phases
advance to it, take ``H`` with the spiker's weight column, and the spiker restarts at 0.
Events past the trial end T stop at T. It is kept as the independent oracle for
`models.theta.layer` (spike times equal to 1e-9 in float64) and as the baseline of
``benchmarks/smooth_epoch.py``; it is not used for training.
"""
from __future__ import annotations

import math

import torch

from models.errors import SpikeportError
from models.theta import ThetaNeuron, transfer


def simulate(phi0, w_net, w_in, in_times, in_index, T: float, K: int, neuron: ThetaNeuron):
    """Run K events of a network of N theta neurons, batched over B samples.

    phi0 (N,) initial phases; w_net (N, N) recurrent weights (row = target); w_in (B, N, Nin)
    input weights (per sample, as the reference's virtual inputs are); in_times, in_index
    (B, K_in) input spike times (sorted, ``inf`` padding) and input channels. Returns
    (event times (B, K), is_input (B, K), neuron index (B, K) with -1 for the trial-end
    event, phases after each event (B, K, N)). Refuses a K too small to reach T.
    """
    B, N = in_times.shape[0], phi0.shape[0]
    Theta = neuron.Theta
    rows = torch.arange(B)
    inf = torch.full((B, 1), math.inf, dtype=in_times.dtype)
    in_times, in_index = torch.cat([in_times, inf], 1), torch.cat([in_index, torch.zeros_like(in_index[:, :1])], 1)
    phi = phi0.expand(B, N)
    t = torch.zeros(B, dtype=phi0.dtype)
    counter = torch.zeros(B, dtype=torch.long)
    times, inputs, who, states = [], [], [], []
    for _ in range(K):
        j_net = phi.argmax(1)
        dt_net = Theta - phi[rows, j_net]
        dt_in, j_in = in_times[rows, counter] - t, in_index[rows, counter]
        spike_in = dt_in < dt_net
        dt = torch.where(spike_in, dt_in, dt_net)
        in_trial = dt < T - t
        dt = torch.where(in_trial, dt, T - t)
        t = t + dt
        phi = phi + dt[:, None]
        counter = counter + spike_in.long()
        weight = torch.where(spike_in[:, None], w_in[rows, :, j_in], w_net[:, j_net].t())
        phi = transfer(phi, weight * in_trial[:, None], neuron)
        reset = ~spike_in & in_trial
        kept = phi[rows, j_net]
        phi = phi.scatter(1, j_net[:, None], torch.where(reset, torch.zeros_like(kept), kept)[:, None])
        times.append(t)
        inputs.append(spike_in)
        who.append(torch.where(in_trial, torch.where(spike_in, j_in, j_net), torch.full_like(j_net, -1)))
        states.append(phi)
    times = torch.stack(times, 1)
    if bool((times[:, -1] < T).any()):
        raise SpikeportError(f"theta event loop: K={K} events do not reach the trial end T={T}; increase K")
    return times, torch.stack(inputs, 1), torch.stack(who, 1), torch.stack(states, 1)


def first_spikes(times, is_input, who, n: int) -> torch.Tensor:
    """Each network neuron's first spike time (B, n), ``inf`` if it never fired."""
    hit = (who[:, :, None] == torch.arange(n)) & ~is_input[:, :, None]
    t = torch.where(hit, times[:, :, None], torch.full_like(hit, math.inf, dtype=times.dtype))
    return t.min(1).values


def end_phases(who, states) -> torch.Tensor:
    """Phases at the trial end (B, N): the state after the first event that reached T."""
    k_end = (who < 0).long().argmax(1)
    return states[torch.arange(states.shape[0]), k_end]
