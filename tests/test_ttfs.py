"""Exact time-to-first-spike networks (models.ttfs_layer) and their discrete deployment (toolchain.methods.ttfs).

Fast: small random layers, the digits set or synthetic data; no MNIST.
"""
import math

import numpy as np
import pytest
import torch

from models.ttfs_layer import TTFSNetwork, output_logits, ttfs_layer, ttfs_loss
from toolchain.methods.ttfs.lower import encode_input, lower_ttfs
from toolchain.methods.ttfs.quantize import quantize_ttfs
from toolchain.methods.ttfs.readout import continuous_times, output_readout, run_deployed
from toolchain.methods.ttfs.train import load_checkpoint, train_ttfs


def _finite(z):
    return torch.where(torch.isfinite(z), z, torch.zeros_like(z))


def _random_layer(seed, B=5, n_in=14, n_out=6, t_max=2.0, silent=0.2):
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(B, n_in, generator=gen, dtype=torch.float64) * t_max
    t[torch.rand(B, n_in, generator=gen) < silent] = math.inf
    w = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) * 0.5 + 0.15
    return t, w


def _brute_force_times(t_in, w, theta, t_stop=10.0, dt=2e-3):
    """First threshold crossing of V(t) = sum_i w_i (1 - exp(-(t - t_i))) on a fine grid, refined by bisection."""
    t_in, w = np.asarray(t_in), np.asarray(w)
    grid = np.arange(0.0, t_stop, dt)
    out = np.full((len(t_in), len(w)), np.inf)
    for b in range(len(t_in)):
        fires = np.isfinite(t_in[b])
        def volt(t, j):  # noqa: E306
            el = np.clip(np.asarray(t)[..., None] - np.where(fires, t_in[b], 0.0), 0.0, None)
            return ((1.0 - np.exp(-el)) * fires) @ w[j]
        for j in range(len(w)):
            above = np.nonzero(volt(grid, j) > theta)[0]
            if len(above):
                lo, hi = grid[above[0] - 1], grid[above[0]]
                for _ in range(50):
                    mid = 0.5 * (lo + hi)
                    lo, hi = (lo, mid) if volt(mid, j) > theta else (mid, hi)
                out[b, j] = hi
    return out


@pytest.mark.parametrize("compiled", [False, True], ids=["reference", "compiled"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_equals_time_stepped_continuous_neuron(seed, compiled):
    t, w = _random_layer(seed)
    t[:, :3] = 2.0  # a block of inputs at one common last time (merged into one event)
    z = ttfs_layer(torch.exp(t), w, 1.0, compiled=compiled)
    z_tail = ttfs_layer(torch.exp(t), w, 1.0, tail_z=math.exp(2.0), tail_mask=torch.isfinite(t) & (t == 2.0),
                        compiled=compiled)
    ref = _brute_force_times(t.numpy(), w.numpy(), 1.0)
    got = torch.log(z).numpy()
    assert np.array_equal(np.isinf(got), np.isinf(ref))
    assert np.isfinite(ref).sum() > 10  # the case is not degenerate
    np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], atol=1e-9)
    torch.testing.assert_close(z_tail, z, rtol=1e-12, atol=0)


@pytest.mark.parametrize("compiled", [False, True], ids=["reference", "compiled"])
def test_gradients_agree_with_finite_differences(compiled):
    t, w = _random_layer(3)
    zin = torch.exp(t)
    # weights: the causal sets do not change within eps = 1e-6 for this case
    torch.autograd.gradcheck(lambda ww: _finite(ttfs_layer(zin, ww, 1.0, compiled=compiled)),
                             (w.clone().requires_grad_(),), eps=1e-6, atol=1e-5, rtol=1e-4)
    # input times (only the inputs that spike; z_in of silent inputs stays inf)
    fires = torch.isfinite(zin)

    def of_inputs(zf):
        z = torch.full_like(zin, math.inf).masked_scatter(fires, zf)
        return _finite(ttfs_layer(z, w, 1.0, compiled=compiled))
    torch.autograd.gradcheck(of_inputs, (zin[fires].clone().requires_grad_(),), eps=1e-6, atol=1e-5, rtol=1e-4)


def _layer_values_and_grads(z_in, w, compiled, **tail):
    """Spike times of one layer and the gradients of a loss using every finite one, by z_in and w."""
    z_in, w = z_in.clone().requires_grad_(), w.clone().requires_grad_()
    z = ttfs_layer(z_in, w, 1.0, compiled=compiled, **tail)
    gen = torch.Generator().manual_seed(1)
    (_finite(z) * torch.rand(z.shape, generator=gen, dtype=z.dtype)).sum().backward()
    return z.detach(), z_in.grad, w.grad


@pytest.mark.parametrize("tail", [False, True], ids=["events-only", "merged-tail"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_compiled_layer_equals_reference_values_and_gradients_in_float64(seed, tail):
    """`models.ttfs_kernel` against the PyTorch reference on MNIST-like layers: silent inputs,
    neurons that never spike, spikes selected by an event and by the merged tail."""
    gen = torch.Generator().manual_seed(seed)
    B, n_in, n_out = 9, 60, 25
    x = torch.rand(B, n_in, generator=gen, dtype=torch.float64)
    x[torch.rand(B, n_in, generator=gen) < 0.6] = 0.0  # black pixels, all at t_max_in = 2
    z_in = torch.exp(2.0 * (1 - x))
    if not tail:
        z_in[x == 0] = math.inf  # silent inputs instead of the tail
    w = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) * 0.12 + 0.03
    kw = dict(tail_z=math.exp(2.0), tail_mask=x == 0) if tail else {}
    ref = _layer_values_and_grads(z_in, w, False, **kw)
    got = _layer_values_and_grads(z_in, w, True, **kw)
    z_ref = ref[0]
    assert torch.isinf(z_ref).sum() > 5 and torch.isfinite(z_ref).sum() > 50  # both cases occur
    assert torch.equal(torch.isinf(got[0]), torch.isinf(z_ref))
    fin = torch.isfinite(z_ref)
    torch.testing.assert_close(got[0][fin], z_ref[fin], rtol=1e-12, atol=0)
    for g_got, g_ref in zip(got[1:], ref[1:]):
        assert g_ref.abs().max() > 0
        torch.testing.assert_close(g_got, g_ref, rtol=1e-12, atol=1e-12 * float(g_ref.abs().max()))


def test_compiled_network_equals_reference_through_two_layers():
    """The 784-800-10 shape at a small batch: values and weight gradients of the training loss."""
    net = TTFSNetwork(dict(n_in=784, sizes=[800, 10], seed=2)).double()
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(6, 784, generator=gen, dtype=torch.float64)
    x[torch.rand(6, 784, generator=gen) > 0.19] = 0.0
    y = torch.arange(6) % 10
    results = []
    for compiled in (False, True):
        ws = [p.detach().clone().requires_grad_() for p in net.weights]
        z, tail, mask = net.encode(x), math.exp(net.t_max_in), x == 0
        outs = []
        for w in ws:
            z = ttfs_layer(z, w, net.theta, tail, mask, compiled=compiled)
            tail = mask = None
            outs.append(z)
        ttfs_loss(outs[-1], y, net.weight_sum_penalty(ws), 1.0).backward()
        results.append([o.detach() for o in outs] + [w.grad for w in ws])
    for got, ref in zip(results[1], results[0]):
        assert torch.equal(torch.isinf(got), torch.isinf(ref))
        fin = torch.isfinite(ref)
        torch.testing.assert_close(got[fin], ref[fin], rtol=1e-12, atol=1e-12 * float(ref[fin].abs().max()))


def test_network_gradient_through_two_layers_and_tail():
    net = TTFSNetwork(dict(n_in=8, sizes=[5, 3], t_max_in=1.5, init_mean=4.0, seed=1)).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 8, generator=gen, dtype=torch.float64)
    x[x < 0.3] = 0.0  # black pixels: the merged tail event
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    w0 = [p.detach().clone() for p in net.weights]

    def loss_of(a, b):
        return ttfs_loss(net(x, weights=[a, b])[-1], y)
    params = [p.clone().requires_grad_() for p in w0]
    torch.autograd.gradcheck(loss_of, params, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_silent_neurons_give_zero_not_nan_gradients():
    net = TTFSNetwork(dict(n_in=8, sizes=[5, 3], t_max_in=1.0, seed=0))
    with torch.no_grad():
        net.weights[0].fill_(-0.1)  # no hidden neuron can reach threshold: everything is silent
    x = torch.rand(4, 8)
    z = net(x)
    assert torch.isinf(z[0]).all() and torch.isinf(z[1]).all()
    loss = ttfs_loss(z[-1], torch.tensor([0, 1, 2, 0]), net.weight_sum_penalty(), 1.0)
    loss.backward()
    assert torch.isfinite(loss)
    for p in net.weights:
        assert torch.isfinite(p.grad).all()
    assert (net.weights[0].grad < 0).all()  # only the penalty pushes: raise every weight sum
    # a partly silent output layer: finite logits, zero gradient for the silent entries
    zo = torch.tensor([[2.0, math.inf, 3.0]], requires_grad=True)
    logits = output_logits(zo)
    assert torch.isfinite(logits).all() and logits[0, 1] == -4.0
    torch.nn.functional.cross_entropy(logits, torch.tensor([1])).backward()
    assert torch.isfinite(zo.grad).all() and zo.grad[0, 1] == 0


def _digits_net(seed=0):
    from toolchain.tasks.datasets import load_digits

    data = load_digits()
    net = TTFSNetwork(dict(n_in=64, sizes=[40, 10], t_max_in=2.0, init_mean=6.0, init_std=1.0, seed=seed))
    return net.double(), data.x_test[:40].astype(np.float64)


def test_discretised_ir_first_spikes_approach_continuous_times():
    net, x = _digits_net()
    cont = continuous_times(net, x)
    errors = []
    for dt in (0.2, 0.05, 0.0125):
        ir = lower_ttfs(net, dt, refire="inhibit", t_end=6.0)
        res = run_deployed(ir, x, mode="float")
        first = res["first"]["layers.0"]
        both = np.isfinite(first) & np.isfinite(cont[0])
        assert both.sum() > 0.8 * np.isfinite(cont[0]).sum()
        assert res["spike_counts"]["layers.0"].max() == 1  # self-inhibition: one spike per hidden neuron
        errors.append(np.abs(first[both] * dt - cont[0][both]).mean())
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.02  # units of tau_syn; ~ dt/2 at the finest step
    # fixed point (bound-calibrated, snapped scales) follows the float engine
    irq, _ = quantize_ttfs(lower_ttfs(net, 0.05, t_end=6.0), x)
    fixed = run_deployed(irq, x, mode="fixed")
    flt = run_deployed(lower_ttfs(net, 0.05, t_end=6.0), x, mode="float")
    assert (fixed["pred"] == flt["pred"]).mean() >= 0.9
    assert fixed["spike_counts"]["layers.0"].max() == 1


def test_discrete_membrane_is_continuous_membrane_over_du():
    """One input of weight w at index k: v[i] = V(i dt) / du exactly (the derivation in toolchain.methods.ttfs.lower)."""
    net = TTFSNetwork(dict(n_in=1, sizes=[1, 1], theta=100.0, t_max_in=1.0))
    with torch.no_grad():
        net.weights[0].fill_(0.7)
        net.weights[1].fill_(1.0)
    dt = 0.1
    ir = lower_ttfs(net, dt, refire="allow", t_end=3.0)
    from backends.emulator import run

    x = np.zeros((1, ir.meta["ttfs"]["steps"], 1))
    k = 4
    x[0, k, 0] = 1
    v = run(ir, x, ["layers.0/v"], mode="float")["layers.0/v"][0, :, 0]
    du = ir.meta["ttfs"]["du"]
    i = np.arange(len(v))
    w = ir.op("layers.0.dense").weight[0, 0]
    cont = np.where(i > k, w * (1 - (1 - du) ** (i - k)), 0.0)  # V(i dt), decay exp(-dt/tau_eff) = 1 - du
    np.testing.assert_allclose(v * du, cont, rtol=1e-12, atol=1e-15)


def test_latch_makes_the_inhibition_exactly_h_after_the_spike():
    """A strongly driven hidden neuron re-fires under Lava's reset; with the self-inhibition
    and latch its current is exactly (feed-forward current - H) from the step after its spike."""
    from backends.emulator import run

    net = TTFSNetwork(dict(n_in=2, sizes=[1, 1], theta=1.0, t_max_in=1.0))
    with torch.no_grad():
        net.weights[0].copy_(torch.tensor([[3.0, 2.0]]))
        net.weights[1].fill_(2.0)
    dt = 0.1
    allow = lower_ttfs(net, dt, refire="allow", t_end=4.0)
    inhibit = lower_ttfs(net, dt, refire="inhibit", inhibit="bound", t_end=4.0)
    x = np.zeros((1, allow.meta["ttfs"]["steps"], 2))
    x[0, 0, 0] = x[0, 12, 1] = 1  # a second input arrives after the first spike
    a = run(allow, x, ["layers.0/s", "layers.0/u"], mode="float")
    b = run(inhibit, x, ["layers.0/s", "layers.0/u"], mode="float")
    assert a["layers.0/s"].sum() > 3 and b["layers.0/s"].sum() == 1
    n = int(np.argmax(b["layers.0/s"][0, :, 0]))
    assert n == int(np.argmax(a["layers.0/s"][0, :, 0]))
    np.testing.assert_allclose(b["layers.0/u"][0, n + 1:, 0] - a["layers.0/u"][0, n + 1:, 0], -5.0, rtol=1e-12)


def test_readout_breaks_ties_by_interpolated_crossing():
    s = np.zeros((1, 4, 3))
    v = np.zeros((1, 4, 3))
    u = np.zeros((1, 4, 3))
    s[0, 2, [0, 2]] = 1  # neurons 0 and 2 both spike at index 2
    v[0, 1] = [5.0, 1.0, 9.0]  # neuron 2 was closer to threshold 10
    u[0, 2] = [10.0, 1.0, 10.0]
    pred, first, t_int, any_out = output_readout(s, v, u, 10.0)
    assert pred[0] == 2 and any_out[0]
    np.testing.assert_allclose(t_int[0, [0, 2]], [1.5, 1.1])
    assert np.isinf(first[0, 1])


def test_train_digits_smoke_and_checkpoint(tmp_path):
    from toolchain.tasks.datasets import load_digits

    data = load_digits()
    res = train_ttfs("digits", epochs=3, seed=0, out=tmp_path / "t.pt", progress=False, log=None,
                        hidden=[32], t_max_in=2.0, lr=5e-3, max_train=600, data=data)
    assert res.meta["accuracy"]["test"] > 0.5
    model, meta = load_checkpoint(tmp_path / "t.pt")
    x = torch.as_tensor(data.x_test[:20])
    torch.testing.assert_close(model(x)[-1], res.model(x)[-1])
    assert meta["method"] == "ttfs" and meta["epochs"] == 3


@pytest.mark.lava
def test_lava_matches_emulator_on_deployed_ttfs():
    from backends.emulator import run
    from backends.lava.runner import run_lava

    net, x = _digits_net(seed=1)
    net = TTFSNetwork({**net.config, "sizes": [12, 4]}).double()
    with torch.no_grad():
        net.weights[1].mul_(3.0)
    ir, _ = quantize_ttfs(lower_ttfs(net, 0.25, t_end=5.0), x)
    xin = encode_input(x[:3], ir.meta)
    emu = run(ir, xin, mode="fixed")
    lava = run_lava(ir, xin, mode="fixed")
    assert set(emu) == set(lava)
    for key in emu:
        np.testing.assert_array_equal(np.asarray(lava[key]), np.asarray(emu[key]), err_msg=key)
    assert np.asarray(emu["layers.0/s"]).sum() > 0 and np.asarray(emu["layers.1/s"]).sum() > 0
