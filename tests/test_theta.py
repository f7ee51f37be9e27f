"""The theta model: exact layer-by-layer simulation, pseudospikes and gradients (Klos & Memmesheimer)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models import theta, theta_events
from models.theta_network import ThetaNetwork, bin_index, bin_times

NEURON = theta.ThetaNeuron()
T = 2.0


def random_network(seed: int, sizes=(5, 6, 4, 3), w=6.0) -> ThetaNetwork:
    """Strong random weights and spread initial phases, so neurons fire (some more than once)."""
    net = ThetaNetwork(list(sizes), T=T, seed=seed, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in net.weights:
            weight.copy_((torch.rand(weight.shape, generator=gen, dtype=torch.float64) * 2 - 0.7) * w)
        for phi in net.phases:
            phi.copy_(torch.rand(phi.shape, generator=gen, dtype=torch.float64) * NEURON.Theta)
    return net


def latency_inputs(seed: int, batch: int, n_in: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(batch, n_in, generator=gen, dtype=torch.float64) * T
    return torch.where(torch.rand(batch, n_in, generator=gen, dtype=torch.float64) < 0.2, math.inf, t)


def whole_network_loop(net: ThetaNetwork, t_in: torch.Tensor, K: int = 400):
    """The same network as one population in the reference's event loop: (spikes per neuron, end phases)."""
    sizes = net.sizes
    N = sum(sizes[1:])
    offsets = np.cumsum([0] + sizes[1:])
    w_net = torch.zeros(N, N, dtype=torch.float64)
    for l in range(1, len(sizes) - 1):
        w_net[offsets[l]:offsets[l + 1], offsets[l - 1]:offsets[l]] = net.weights[l]
    w_in = torch.zeros(t_in.shape[0], N, sizes[0], dtype=torch.float64)
    w_in[:, :sizes[1]] = net.weights[0]
    order = torch.sort(t_in, 1)
    phi0 = torch.cat(list(net.phases))
    times, is_input, who, states = theta_events.simulate(phi0, w_net, w_in, order.values, order.indices, T, K, NEURON)
    return times, is_input, who, theta_events.end_phases(who, states), offsets


@pytest.mark.parametrize("seed", range(6))
def test_layer_by_layer_spike_times_equal_the_whole_network_event_loop_to_1e_9(seed):
    net = random_network(seed)
    t_in = latency_inputs(seed, batch=8, n_in=5)
    with torch.no_grad():
        out = net(t_in)
        times, is_input, who, ends, offsets = whole_network_loop(net, t_in)
    fired = 0
    for l, slots in enumerate(out["spikes"]):
        for b in range(t_in.shape[0]):
            for i in range(slots.shape[2]):
                mine = np.sort(slots[b, :, i][torch.isfinite(slots[b, :, i])].numpy())
                hit = (who[b] == offsets[l] + i) & ~is_input[b]
                theirs = np.sort(times[b][hit].numpy())
                assert mine.shape == theirs.shape, (l, b, i)
                assert np.abs(mine - theirs).max(initial=0) < 1e-9
                fired += len(mine)
        np.testing.assert_allclose(out["ends"][l].numpy(), ends[:, offsets[l]:offsets[l + 1]].numpy(), atol=1e-9)
    assert fired > 50  # the comparison covers real activity, repeat spikes included
    assert any((torch.isfinite(s).sum(1) > 1).any() for s in out["spikes"])


def test_the_compiled_layer_equals_the_pytorch_reference_values_and_gradients(monkeypatch):
    net = random_network(3)
    t_in = latency_inputs(3, batch=8, n_in=5)
    labels = torch.arange(8) % 3

    def run():
        net.zero_grad()
        out = net(t_in)
        theta.smooth_loss(out["t_out"], labels, T, gamma=1e-2).backward()
        return out, [p.grad.clone() for p in net.parameters()]

    assert theta._kernel() is not None  # numba is installed by make
    (fast, fast_grads) = run()
    monkeypatch.setattr(theta, "_kernel", lambda: None)
    (ref, ref_grads) = run()
    for a, b in zip(fast["spikes"] + fast["ends"] + [fast["t_out"]], ref["spikes"] + ref["ends"] + [ref["t_out"]]):
        assert torch.equal(torch.isfinite(a), torch.isfinite(b))
        np.testing.assert_allclose(a[torch.isfinite(a)].detach().numpy(), b[torch.isfinite(b)].detach().numpy(),
                                   rtol=1e-12, atol=1e-12)
    for g, h in zip(fast_grads, ref_grads):
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-10, atol=1e-12)
    assert sum(int(torch.isfinite(s).sum()) for s in fast["spikes"]) > 20



def test_the_jump_gather_gives_the_rows_and_sums_their_gradient_as_autograd_does_on_one_thread():
    """`theta.dense_jumps`' compiled backward: the same sums, in row order, on every run."""
    from models import theta_kernel

    g = torch.Generator().manual_seed(4)
    table = torch.randn(30, 20, generator=g, dtype=torch.float32, requires_grad=True)
    index = torch.randint(0, 30, (50, 12), generator=g)
    weight = torch.randn(50, 12, 20, generator=g)
    rows = theta_kernel.Rows.apply(table, index)
    assert torch.equal(rows, table.detach()[index])
    mine, = torch.autograd.grad((rows * weight).sum(), table)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref, = torch.autograd.grad((table[index] * weight).sum(), table)
    finally:
        torch.set_num_threads(threads)
    again, = torch.autograd.grad((theta_kernel.Rows.apply(table, index) * weight).sum(), table)
    assert torch.equal(mine, ref) and torch.equal(mine, again)

def test_binned_inputs_merge_into_one_event_per_bin_exactly():
    net = random_network(1, sizes=(12, 6, 3))
    x = torch.rand(7, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    levels = bin_times(3, T)
    t_in = torch.where(bin_index(x, 3) < 3, levels[bin_index(x, 3).clamp(max=2)], math.inf)
    merged = ThetaNetwork([12, 6, 3], T=T, levels=levels, dtype=torch.float64)
    merged.load_state_dict(net.state_dict(), strict=False)
    with torch.no_grad():
        a, b = net(t_in), merged(t_in)
    for sa, sb in zip(a["spikes"], b["spikes"]):
        ta, tb = (torch.sort(s.reshape(7, -1), 1).values for s in (sa, sb))
        k = int(torch.isfinite(ta).sum(1).max())
        assert k > 0 and not torch.isfinite(ta[:, k:]).any() and not torch.isfinite(tb[:, k:]).any()
        np.testing.assert_allclose(ta[:, :k].numpy(), tb[:, :k].numpy(), atol=1e-12)


def test_the_transfer_function_has_the_closed_form_derivatives():
    phi = torch.tensor([0.7, 2.0, 3.1, 5.2], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.3, -0.4, 1.2, -2.0], dtype=torch.float64, requires_grad=True)
    h = theta.transfer(phi, w, NEURON)
    d_phi, d_w = torch.autograd.grad(h.sum(), (phi, w))
    V = theta.voltage(phi, NEURON).detach()
    c = NEURON.I0 - 0.25
    np.testing.assert_allclose(d_phi.numpy(), ((c + (V - 0.5) ** 2) / (c + (V + w.detach() - 0.5) ** 2)).numpy(), rtol=1e-10)
    np.testing.assert_allclose(d_w.numpy(), (NEURON.tau / (c + (V + w.detach() - 0.5) ** 2)).numpy(), rtol=1e-10)


def test_layer_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(4)
    w = ((torch.rand(4, 5, generator=gen, dtype=torch.float64) - 0.3) * 3).requires_grad_()
    phi0 = (torch.rand(4, generator=gen, dtype=torch.float64) * 5 + 0.3).requires_grad_()
    times = torch.sort(torch.rand(3, 5, generator=gen, dtype=torch.float64) * T, 1)
    sources = times.indices

    def first_and_end(w, phi0):
        s, end = theta.layer(phi0, times.values, theta.dense_jumps(w, sources), T, NEURON)
        first = theta.first_spike(s)
        return torch.where(torch.isfinite(first), first, torch.zeros_like(first)), end

    assert torch.autograd.gradcheck(first_and_end, (w, phi0), eps=1e-7, atol=1e-6)


def test_layer_gradients_through_the_event_times_match_finite_differences():
    """Event times come from the layer below's spikes, so their gradients carry the chain."""
    gen = torch.Generator().manual_seed(5)
    w = ((torch.rand(4, 5, generator=gen, dtype=torch.float64) - 0.3) * 3)
    phi0 = torch.rand(4, generator=gen, dtype=torch.float64) * 5 + 0.3
    order = torch.sort(torch.rand(3, 5, generator=gen, dtype=torch.float64) * T, 1)
    times = order.values.clone().requires_grad_()

    def first_and_end(times):
        s, end = theta.layer(phi0, times, theta.dense_jumps(w, order.indices), T, NEURON)
        first = theta.first_spike(s)
        return torch.where(torch.isfinite(first), first, torch.zeros_like(first)), end

    assert torch.autograd.gradcheck(first_and_end, (times,), eps=1e-7, atol=1e-6)


def silent_network() -> ThetaNetwork:
    """The reference initialisation (phases Theta/2, small weights): nobody fires before T."""
    return ThetaNetwork([20, 8, 8, 4], T=T, levels=bin_times(1, T), seed=2, dtype=torch.float64)


def test_a_silent_network_gets_nonzero_gradients_for_every_weight_and_phase_through_pseudospikes():
    net = silent_network()
    x = torch.rand(6, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t_in = torch.where(x >= 0.5, bin_times(1, T)[0], torch.tensor(math.inf, dtype=torch.float64))
    out = net(t_in)
    assert all(not torch.isfinite(s).any() for s in out["spikes"])  # entirely silent
    assert (out["t_out"] > T).all()
    loss = theta.smooth_loss(out["t_out"], torch.arange(6) % 4, T, gamma=1e-2)
    loss.backward()
    for p in list(net.weights) + list(net.phases):
        assert (p.grad.abs() > 0).float().mean() > 0.9


def test_the_pseudospike_gradient_of_a_silent_network_matches_finite_differences():
    net = silent_network()
    x = torch.rand(3, 20, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    t_in = torch.where(x >= 0.5, bin_times(1, T)[0], torch.tensor(math.inf, dtype=torch.float64))
    labels = torch.tensor([0, 3, 1])
    params = list(net.parameters())

    def loss_of(*values):
        with torch.no_grad():
            for p, v in zip(params, values):
                p.copy_(v)
        return theta.smooth_loss(net(t_in)["t_out"], labels, T, gamma=1e-2)

    base = [p.detach().clone() for p in params]
    loss = loss_of(*base)
    grads = torch.autograd.grad(loss, params)
    for k, (p, g) in enumerate(zip(base, grads)):
        idx = tuple(torch.randint(0, n, (1,), generator=torch.Generator().manual_seed(k)).item() for n in p.shape)
        h = 1e-6
        up, down = [b.clone() for b in base], [b.clone() for b in base]
        up[k][idx] += h
        down[k][idx] -= h
        numeric = (loss_of(*up) - loss_of(*down)).item() / (2 * h)
        assert g[idx].item() == pytest.approx(numeric, rel=1e-5, abs=1e-9)  # central differences: ~1e-10 noise
        assert abs(g[idx].item()) > 0


def test_a_trial_as_long_as_the_period_is_refused():
    with pytest.raises(Exception, match=r"T=6.5 is outside \(0, Theta=6\)"):
        theta.layer(torch.zeros(2), torch.zeros(1, 1), torch.zeros(1, 1, 2), 6.5, NEURON)
