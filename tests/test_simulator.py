"""The reference simulator: time convention, LIF equations, gradients, checkpoints."""
import itertools

import numpy as np
import pytest
import torch

from models import fixed_point as fx
from models.errors import SpikeportError
from models.network import Network
from models.lif import lif_scan
from models.surrogate import fast_sigmoid_grad, spike
from models.synapses import synaptic_input

D = torch.float64


def _reference_scan(a, alpha, beta, bias, vth, w_rec, slope=10.0):
    """Plain autograd LIF loop: the definition the fast scan must reproduce."""
    B, T, N = a.shape
    u = torch.zeros(B, N, dtype=D)
    v, s = torch.zeros_like(u), torch.zeros_like(u)
    S, V, U = [], [], []
    for t in range(T):
        at = a[:, t] + (s @ w_rec.t() if w_rec is not None else 0)
        u = u * alpha + at
        v = v * beta + u + bias
        s = spike((v - vth) / vth.detach(), slope)
        S.append(s)
        V.append(v)
        U.append(u)
        v = v * (1 - s.detach())
    return torch.stack(S, 1), torch.stack(V, 1), torch.stack(U, 1)


@pytest.mark.parametrize("recurrent", [False, True])
def test_scan_forward_and_backward_equal_plain_autograd_loop(recurrent):
    g = torch.Generator().manual_seed(0)
    B, T, N = 3, 25, 6
    a = (torch.rand(B, T, N, generator=g, dtype=D) * 0.6).requires_grad_()
    alpha = torch.tensor(0.8, dtype=D, requires_grad=True)
    beta = torch.tensor(0.9, dtype=D, requires_grad=True)
    bias = (torch.rand(N, generator=g, dtype=D) * 0.1).requires_grad_()
    vth = torch.tensor(1.0, dtype=D, requires_grad=True)
    w = (torch.randn(N, N, generator=g, dtype=D) * 0.3).requires_grad_() if recurrent else None
    trace = lif_scan(a, alpha=alpha, beta=beta, bias=bias, vth=vth, w_rec=w)
    S, V, U = _reference_scan(a, alpha, beta, bias, vth, w)
    assert torch.equal(trace.s, S) and torch.allclose(trace.v, V)
    assert trace.s.sum() > 0
    gs, gv, gu = (torch.randn(B, T, N, generator=g, dtype=D) for _ in range(3))
    inputs = [a, alpha, beta, bias, vth] + ([w] if recurrent else [])
    got = torch.autograd.grad((trace.s * gs).sum() + (trace.v * gv).sum() + (trace.u * gu).sum(), inputs)
    want = torch.autograd.grad((S * gs).sum() + (V * gv).sum() + (U * gu).sum(), inputs)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype, vth", [(torch.float32, 1.0), (torch.float32, 0.7), (torch.float64, 1.3)])
def test_the_compiled_scan_equals_the_torch_loops_forward_bit_for_bit_and_gradients_to_rounding(
        monkeypatch, dtype, vth):
    """`models.lif_kernel` (forward, and the fused backward of a population whose threshold takes
    no gradient) against the torch loops it replaces, on a loss using s, v and u."""
    from models import lif

    assert lif._kernel() is not None  # numba is installed by make
    g = torch.Generator().manual_seed(7)
    B, T, N = 4, 40, 33
    a0 = torch.rand(B, T, N, generator=g, dtype=dtype) * 0.08
    bias = (torch.rand(N, generator=g, dtype=dtype) - 0.5) * 0.1
    gs, gv, gu = (torch.randn(B, T, N, generator=g, dtype=dtype) for _ in range(3))
    runs = []
    for compiled in (True, False):
        monkeypatch.setattr(lif, "COMPILED", compiled)
        a, b = a0.clone().requires_grad_(), bias.clone().requires_grad_()
        trace = lif_scan(a, alpha=torch.tensor(0.8, dtype=dtype), beta=torch.tensor(0.9, dtype=dtype), bias=b,
                         vth=torch.tensor(vth, dtype=dtype))
        loss = (trace.s * gs).sum() + (trace.v * gv).sum() + (trace.u * gu).sum()
        runs.append((trace, torch.autograd.grad(loss, [a, b])))
    (fast, fast_grads), (ref, ref_grads) = runs
    assert torch.equal(fast.s, ref.s) and torch.equal(fast.v, ref.v) and torch.equal(fast.u, ref.u)
    assert 0.05 < ref.s.mean() < 0.6  # spikes and resets on both sides of the threshold
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for x, y in zip(fast_grads, ref_grads):
        torch.testing.assert_close(x, y, **tol)


@pytest.mark.parametrize("du, dv", [(0, 0), (4095, 4095), (-1, 0), (818, 205)])
def test_the_compiled_fixed_scan_equals_the_torch_loop_bit_for_bit_through_every_wrap(monkeypatch, du, dv):
    """The fixed forward kernel against `models.lif._forward_fixed`: inputs whose ``<< 6`` wraps
    int32, initial u anywhere in int32 (the 2**24 correction), large biases (v saturates)."""
    from models import lif

    g = torch.Generator().manual_seed(du + 5 * dv + 2)
    a = torch.randint(-(1 << 26), 1 << 26, (3, 30, 50), generator=g).to(D)
    a[0] = torch.randint(-300, 300, (30, 50), generator=g).to(D)  # ordinary operation, spikes and resets
    bias = torch.randint(-(1 << 15), 1 << 15, (50,), generator=g).to(D)
    u0 = torch.randint(fx.INT32_MIN, fx.INT32_MAX, (50,), generator=g).to(D)
    v0 = torch.randint(-fx.V_SAT, fx.V_SAT, (50,), generator=g).to(D)
    traces = []
    for compiled in (True, False):
        monkeypatch.setattr(lif, "COMPILED", compiled)
        traces.append(lif_scan(a, alpha=torch.tensor(fx.current_factor(du) / 4096, dtype=D),
                               beta=torch.tensor(fx.voltage_factor(dv) / 4096, dtype=D), bias=bias,
                               vth=torch.tensor(1000.0, dtype=D), u0=u0, v0=v0, fixed=True))
    fast, ref = traces
    assert torch.equal(fast.s, ref.s) and torch.equal(fast.v, ref.v) and torch.equal(fast.u, ref.u)
    assert 0 < ref.s.mean() < 1 and (ref.v.abs() == fx.V_SAT).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_compiled_fixed_scan_gives_the_torch_loops_gradients_for_input_bias_and_decays(monkeypatch, dtype):
    """Fixed mode's straight-through gradients from the fused backward (which writes dL/da = 64 dL/du
    itself) against the torch loops: input, bias and both decay factors, on a loss using s, v, u."""
    from models import lif

    g = torch.Generator().manual_seed(11)
    a0 = torch.randint(-300, 400, (3, 30, 40), generator=g).to(dtype)
    bias0 = torch.randint(-2000, 2000, (40,), generator=g).to(D)
    gs, gv, gu = (torch.randn(3, 30, 40, generator=g, dtype=dtype) for _ in range(3))
    runs = []
    for compiled in (True, False):
        monkeypatch.setattr(lif, "COMPILED", compiled)
        a, bias = a0.clone().requires_grad_(), bias0.clone().requires_grad_()
        alpha = torch.tensor(fx.current_factor(818) / 4096, dtype=D, requires_grad=True)
        beta = torch.tensor(fx.voltage_factor(205) / 4096, dtype=D, requires_grad=True)
        trace = lif_scan(a, alpha=alpha, beta=beta, bias=bias, vth=torch.tensor(1000.0, dtype=D), fixed=True)
        loss = (trace.s * gs).sum() + (trace.v * gv).sum() + (trace.u * gu).sum()
        runs.append((trace, torch.autograd.grad(loss, [a, bias, alpha, beta])))
    (fast, fast_grads), (ref, ref_grads) = runs
    assert torch.equal(fast.s, ref.s) and 0.02 < ref.s.mean() < 0.8
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for x, y in zip(fast_grads, ref_grads):
        assert x.abs().max() > 0
        torch.testing.assert_close(x.to(y.dtype), y, rtol=tol, atol=tol * y.abs().max().item())


def test_surrogate_is_the_derivative_of_the_fast_sigmoid():
    x = torch.linspace(-2, 2, 40, dtype=D)  # avoids the kink at 0
    slope, eps = 10.0, 1e-6
    f = lambda z: z / (1 + slope * z.abs())  # noqa: E731  (fast sigmoid, peak slope 1)
    fd = (f(x + eps) - f(x - eps)) / (2 * eps)
    torch.testing.assert_close(fast_sigmoid_grad(x, slope), fd, rtol=1e-6, atol=1e-8)


def test_bptt_gradient_matches_finite_differences_when_no_spike_flips():
    """Below threshold the network is smooth: the backward pass must equal finite differences."""
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 30, 4, generator=g, dtype=D) * 0.05
    params = dict(alpha=torch.tensor(0.85, dtype=D), beta=torch.tensor(0.95, dtype=D),
                  bias=torch.full((4,), 0.01, dtype=D), vth=torch.tensor(100.0, dtype=D))
    weights = torch.linspace(0.1, 1.0, 30, dtype=D).view(1, 30, 1)

    def loss(p):
        return (lif_scan(a, **p).v * weights).sum()

    for name in ("alpha", "beta", "bias"):
        p = {k: v.clone().requires_grad_(k == name) for k, v in params.items()}
        (grad,) = torch.autograd.grad(loss(p), p[name])
        flat = params[name].reshape(-1)
        for i in range(flat.numel()):
            up, down = dict(params), dict(params)
            up[name] = (flat + 1e-6 * (torch.arange(flat.numel()) == i)).reshape(params[name].shape)
            down[name] = (flat - 1e-6 * (torch.arange(flat.numel()) == i)).reshape(params[name].shape)
            fd = (loss(up) - loss(down)) / 2e-6
            assert abs(float(grad.reshape(-1)[i]) - float(fd)) <= 1e-5 * max(1.0, abs(float(fd)))


def test_each_synaptic_hop_adds_one_step_like_lava():
    net = Network(dict(n_in=1, layers=[dict(n=1, du=1.0, dv=1.0, vth=0.5, bias=False)] * 2))
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.fill_(1.0)
    x = torch.zeros(1, 8, 1)
    x[0, 2, 0] = 1  # input spike at step 3 (index 2)
    t1, t2 = net(x)
    assert t1.s[0, :, 0].nonzero().flatten().tolist() == [3]
    assert t2.s[0, :, 0].nonzero().flatten().tolist() == [4]


def test_delay_d_arrives_after_one_plus_d_steps():
    s = torch.zeros(1, 10, 1)
    s[0, 0, 0] = 1
    w = torch.tensor([[1.0], [1.0], [1.0]])
    delays = torch.tensor([[0], [2], [5]])
    a = synaptic_input(s, w, delays)
    assert [int(a[0, :, j].nonzero()) for j in range(3)] == [1, 3, 6]


def _fixed_scan(a, du, dv, bias, vth):
    return lif_scan(a, alpha=torch.tensor(fx.current_factor(du) / 4096, dtype=D),
                    beta=torch.tensor(fx.voltage_factor(dv) / 4096, dtype=D),
                    bias=torch.tensor([float(bias)], dtype=D), vth=torch.tensor(float(vth), dtype=D), fixed=True)


def test_fixed_mode_holds_u_at_du_minus_one_and_spikes_strictly_above_vth_shifted():
    a = torch.zeros(1, 6, 1, dtype=D)
    a[0, 1, 0] = 100
    trace = _fixed_scan(a, du=-1, dv=0, bias=0, vth=200)
    assert trace.u[0, :, 0].tolist() == [0, 6400, 6400, 6400, 6400, 6400]
    assert trace.v[0, :, 0].tolist() == [0, 6400, 12800, 19200, 6400, 12800]  # 12800 == 200<<6: no spike
    assert trace.s[0, :, 0].tolist() == [0, 0, 0, 1, 0, 0]


def test_fixed_mode_bias_enters_v_unshifted_from_step_one():
    trace = _fixed_scan(torch.zeros(1, 3, 1, dtype=D), du=0, dv=0, bias=3, vth=1000)
    assert trace.v[0, :, 0].tolist() == [3, 6, 9]


def test_fixed_mode_rounds_decays_toward_zero_for_negative_state():
    a = torch.zeros(1, 3, 1, dtype=D)
    a[0, 0, 0] = -100
    trace = lif_scan(a, alpha=torch.tensor(fx.current_factor(0) / 4096, dtype=D),
                     beta=torch.tensor(1.0, dtype=D), bias=torch.zeros(1, dtype=D),
                     vth=torch.tensor(1e5, dtype=D), fixed=True)
    assert trace.u[0, :, 0].tolist() == [-6400, -6398, -6396]


@pytest.mark.parametrize("du", [-1, 0, 800, 4095])
def test_fixed_scan_skips_only_wraps_that_cannot_fire(du, monkeypatch):
    """The scan's bound-proven shortcuts (`fx.lif_scan_wraps`) against every wrap applied
    every step (`fx.lif_fixed_subthreshold`, the emulator's rule), from quiet inputs to
    inputs whose ``a << 6`` passes 2**31; every shortcut must be taken somewhere. (The torch
    loop's shortcuts: the compiled scan applies every rule and is held to this loop below.)"""
    from models import lif

    monkeypatch.setattr(lif, "COMPILED", False)
    chosen = []
    real = fx.lif_scan_wraps
    monkeypatch.setattr(fx, "lif_scan_wraps", lambda *args: chosen.append(real(*args)) or chosen[-1])
    g = torch.Generator().manual_seed(du + 1)
    B, T, N, dv, vth = 2, 30, 5, 300, 2000
    saturating = torch.tensor([0.0, 4095 * 128, -4096 * 128, 17.0, -3.0], dtype=D)
    small = torch.tensor([0.0, 100.0, -50.0, 17.0, -3.0], dtype=D)
    for amp, bias in itertools.product((100.0, 2.0e4, 1.3e5, 2.6e5, 4e6, 4e7), (saturating, small)):
        a = torch.round((torch.rand(B, T, N, generator=g, dtype=D) * 2 - 1) * amp)
        trace = lif_scan(
            a, alpha=torch.tensor(fx.current_factor(du) / 4096, dtype=D),
            beta=torch.tensor(fx.voltage_factor(dv) / 4096, dtype=D), bias=bias,
            vth=torch.tensor(float(vth), dtype=D), fixed=True)
        u, v = np.zeros((B, N)), np.zeros((B, N))
        for t in range(T):
            u, v = fx.lif_fixed_subthreshold(u, v, a[:, t].numpy(), du, dv, bias.numpy())
            assert np.array_equal(trace.u[:, t].numpy(), u), (amp, t)
            assert np.array_equal(trace.v[:, t].numpy(), v), (amp, t)
            s = v > fx.effective_threshold(vth)
            assert np.array_equal(trace.s[:, t].numpy(), s), (amp, t)
            v = np.where(s, 0.0, v)
    nothing = fx.Wraps(int32=False, u=False, saturate=False)
    assert {nothing, nothing._replace(saturate=True), nothing._replace(u=True, saturate=True),
            fx.ALL_WRAPS} <= set(chosen), set(chosen)


def test_fixed_mode_gradients_flow_straight_through_rounding():
    net = Network(dict(n_in=8, layers=[dict(n=6), dict(n=3)], seed=3))
    for layer in net.layers:
        layer.set_fixed_scale(200.0, 0)
    x = (torch.rand(4, 15, 8, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    out = net(x, mode="fixed")
    # exact integers: s and v in float32 (0/1, |v| < 2**23; the sums are exact there), u in float64
    assert out[-1].s.dtype == out[-1].v.dtype == torch.float32 and out[-1].u.dtype == torch.float64
    out[-1].v.sum().backward()
    grads = [layer.weight.grad for layer in net.layers]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_fixed_mode_without_scales_is_a_clear_error():
    net = Network(dict(n_in=4, layers=[dict(n=2)]))
    with pytest.raises(SpikeportError, match="fixed-point scale"):
        net(torch.zeros(1, 3, 4), mode="fixed")


@pytest.mark.parametrize("bad, match", [
    (dict(du=1.5), "du=1.5 is outside"),
    (dict(max_delay=64), "max_delay=64 is outside"),
    (dict(vth=0), "vth=0 is outside"),
])
def test_out_of_range_layer_config_names_layer_parameter_value_and_limit(bad, match):
    with pytest.raises(SpikeportError, match=f"layers.0: {match}"):
        Network(dict(n_in=4, layers=[dict(n=2, **bad)]))


def test_network_is_rebuilt_from_config_and_state_dict(tmp_path):
    from toolchain.methods.superspike import checkpoint

    net = Network(dict(n_in=5, layers=[dict(n=7, recurrent=True, max_delay=3), dict(n=2)], seed=4))
    path = tmp_path / "m.pt"
    checkpoint.save(path, net, {"task": "digits"})
    again, meta = checkpoint.load(path)
    x = (torch.rand(2, 12, 5, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    assert meta == {"task": "digits"}
    for a, b in zip(net(x), again(x)):
        assert torch.equal(a.s, b.s) and torch.equal(a.v, b.v)


def test_truncated_or_foreign_checkpoint_is_a_one_line_error(tmp_path):
    from toolchain.methods.superspike import checkpoint

    net = Network(dict(n_in=3, layers=[dict(n=2)]))
    good = tmp_path / "good.pt"
    checkpoint.save(good, net, {})
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:200])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    for path, match in [(cut, "truncated or corrupt"), (foreign, "not a spikeport checkpoint")]:
        with pytest.raises(SpikeportError, match=match) as info:
            checkpoint.load(path)
        assert "\n" not in str(info.value)
