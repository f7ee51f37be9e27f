"""The current-based QIF model: closed-form flow and spike times against direct integration."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models import qif

N = qif.QIFNeuron()


def rk4(V, I, dt, steps=20000, tau=1.0, top=1e6):
    """Integrate tau V' = V (V - 1) + I, I' = -2 I / tau; returns (V, time V passed ``top`` or None)."""
    h = dt / steps
    f = lambda v, i: (v * (v - 1) + i) / tau  # noqa: E731
    for n in range(steps):
        i0, ih, i1 = I * math.exp(-2 * n * h / tau), I * math.exp(-2 * (n + 0.5) * h / tau), I * math.exp(-2 * (n + 1) * h / tau)
        k1 = f(V, i0)
        k2 = f(V + h / 2 * k1, ih)
        k3 = f(V + h / 2 * k2, ih)
        k4 = f(V + h * k3, i1)
        V = V + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if V > top:
            return V, (n + 1) * h
    return V, None


@pytest.mark.parametrize("V, I", [(0.3, 2.0), (-1.5, 0.8), (2.0, -1.0), (0.2, -1.0), (-3.0, -0.25), (0.5, 0.0),
                                  (-0.4, 0.0)])
def test_the_closed_form_flow_equals_direct_integration_in_every_regime(V, I):
    dt = 0.3
    got = qif.flow_voltage(torch.tensor([V], dtype=torch.float64), torch.tensor([I], dtype=torch.float64),
                           torch.tensor([dt], dtype=torch.float64), N)
    want, fired = rk4(V, I, dt)
    assert fired is None
    assert float(got) == pytest.approx(want, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("V, I", [(0.3, 6.0), (2.0, 0.0), (3.0, -1.0), (-2.0, 12.0)])
def test_the_closed_form_spike_time_equals_direct_integration(V, I):
    got = float(qif.time_to_spike(torch.tensor([V], dtype=torch.float64), torch.tensor([I], dtype=torch.float64), N))
    _, fired = rk4(V, I, got * 1.5, steps=200000)
    assert fired == pytest.approx(got, abs=1e-4)


@pytest.mark.parametrize("V, I", [(0.3, 0.5), (0.9, -2.0), (-0.5, 0.0)])
def test_a_neuron_that_never_reaches_infinity_has_no_spike_time(V, I):
    assert math.isinf(float(qif.time_to_spike(torch.tensor([V], dtype=torch.float64),
                                              torch.tensor([I], dtype=torch.float64), N)))


def simulate_directly(V, I, events, T, h=1e-5, top=1e4):
    """Euler-Heun with small steps: current jumps at events, V reset from +top to -top."""
    spikes, t, e = [], 0.0, 0
    while t < T - 1e-12:
        while e < len(events) and events[e][0] <= t + 1e-12:
            I += events[e][1]
            e += 1
        dv = V * (V - 1) + I
        Vp = V + h * dv
        V = V + h / 2 * (dv + Vp * (Vp - 1) + I * math.exp(-2 * h))
        I *= math.exp(-2 * h)
        t += h
        if V > top:
            spikes.append(t)
            V = -top
    return spikes


def test_a_layer_fires_at_the_times_direct_integration_gives_repeat_spikes_included():
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(3, 4, generator=gen, dtype=torch.float64) * 30 - 4
    times = torch.sort(torch.rand(1, 4, generator=gen, dtype=torch.float64) * 3, 1)
    s, _, _ = qif.layer(torch.zeros(3, dtype=torch.float64), torch.full((3,), 1.0, dtype=torch.float64),
                        times.values, lambda k: w.t()[times.indices[:, k]], 4.0, N)
    total = 0
    for i in range(3):
        mine = np.sort(s[0, :, i][torch.isfinite(s[0, :, i])].numpy())
        events = [(float(times.values[0, k]), float(w[i, times.indices[0, k]])) for k in range(4)]
        theirs = simulate_directly(0.0, 1.0, events, 4.0)
        assert len(mine) == len(theirs), (i, mine, theirs)
        np.testing.assert_allclose(mine, theirs, atol=2e-3)
        total += len(mine)
    assert total >= 4 and (torch.isfinite(s).sum(1) > 1).any()


def test_layer_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(3)
    w = (torch.rand(3, 4, generator=gen, dtype=torch.float64) * 6 - 1).requires_grad_()
    I0 = torch.full((3,), 1.5, dtype=torch.float64, requires_grad=True)
    times = torch.sort(torch.rand(2, 4, generator=gen, dtype=torch.float64) * 2, 1)

    def first_and_end(w, I0):
        s, V, I = qif.layer(torch.zeros(3, dtype=torch.float64), I0, times.values,
                            lambda k: w.t()[times.indices[:, k]], 3.0, N)
        first = s.min(1).values
        return torch.where(torch.isfinite(first), first, torch.zeros_like(first)), V.clamp(max=1e3), I

    assert torch.autograd.gradcheck(first_and_end, (w, I0), eps=1e-7, atol=1e-5)


def test_a_silent_neuron_gets_a_pseudospike_time_after_the_trial_and_a_gradient():
    w = torch.tensor([[0.2]], dtype=torch.float64, requires_grad=True)
    s, V, I = qif.layer(torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                        torch.tensor([[0.5]], dtype=torch.float64), lambda k: w.t()[[0]], 2.0, N)
    assert not torch.isfinite(s).any()
    t = qif.pseudo_times(V, I, torch.zeros_like(V), 1, N, 2.0)
    assert t.item() > 2.0
    t.sum().backward()
    assert w.grad.abs().item() > 0
