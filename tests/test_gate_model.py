"""The gate network (Huh & Sejnowski): gate charge, exact BPTT gradients, the continuous adjoint, the tasks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import SpikeportError
from models.gate import GateNetwork, GateNeuron, readout, simulate, weighted_mse
from models.gate_adjoint import adjoint_gradients
from toolchain.tasks.gate_tasks import PC_DEFAULTS, XOR_DEFAULTS, pc_trials, xor_label, xor_trials

torch.set_num_threads(1)


def _small_net(gate: str, seed: int = 3) -> GateNetwork:
    net = GateNetwork(3, 6, 1, GateNeuron(gate=gate, x_reset=1.0), w_scale=2.0, bias_mean=-0.3, seed=seed,
                      dtype=torch.float64)
    with torch.no_grad():
        net.O.normal_(generator=torch.Generator().manual_seed(seed))
    return net


def _short(duration: float) -> dict:
    """The XOR protocol squeezed into ``duration`` ms (pulses, cue and response at the same fractions)."""
    scale = duration / XOR_DEFAULTS["duration"]
    return dict(XOR_DEFAULTS, duration=duration, **{k: [v * scale for v in XOR_DEFAULTS[k]]
                                                    for k in ("pulse_a", "pulse_b", "cue", "response", "score")})


def _loss(out, trials) -> torch.Tensor:
    return weighted_mse(out["o"], torch.as_tensor(trials.target), torch.as_tensor(trials.weight)) \
        + 1e-3 * (out["r"] ** 2).mean()


def test_a_full_passage_through_the_gate_sends_one_unit_of_charge_a_partial_one_less():
    n = GateNeuron()
    W, O, o_b = torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64), torch.zeros(1)
    drive = torch.full((1, 400, 1), 1.0, dtype=torch.float64)  # tonic firing
    out = simulate(W, torch.eye(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64), O, o_b, drive, n)
    spikes = int(out["spikes"].sum())
    assert spikes >= 3
    ends = torch.nonzero(out["spikes"][0, :, 0])[:, 0]
    between = out["q"][0, ends[0] + 1:ends[1] + 1, 0]
    assert float(between.sum()) == pytest.approx(1.0, abs=1e-12)
    assert int((between > 0).sum()) >= 2  # graded: spread over several steps
    partial = []
    for amplitude in np.arange(10.0, 30.0, 0.25):  # kicks into the zone; the weaker ones fall back (rest -3, saddle +3)
        pulse = torch.zeros(1, 80, 1, dtype=torch.float64)
        pulse[0, 5:9] = amplitude
        out = simulate(W, torch.eye(1, dtype=torch.float64), torch.full((1,), -9.0, dtype=torch.float64), O, o_b,
                       pulse, GateNeuron(x_reset=-3.0))
        peak = float(out["q"][0, :, 0].cumsum(0).max())
        if not out["spikes"].any() and peak > 0:
            partial.append(amplitude)
            assert peak < 1
            assert float(out["q"].sum()) == pytest.approx(0.0, abs=1e-12)  # fell back out of the zone: charge returned
    assert partial


def test_recurrent_weights_have_no_self_connections_and_no_gradient_on_the_diagonal():
    net = _small_net("box")
    trials = xor_trials(4, 0, 1.0, _short(200.0))
    assert torch.all(torch.diagonal(net.recurrent()) == 0)
    _loss(readout(net, torch.as_tensor(trials.inputs)), trials).backward()
    assert torch.all(torch.diagonal(net.W.grad) == 0) and net.W.grad.abs().sum() > 0


@pytest.mark.parametrize("gate", ["box", "smooth"])
def test_compiled_bptt_equals_autograd_through_the_steps_in_float64(gate):
    net = _small_net(gate)
    trials = xor_trials(4, 1, 1.0, _short(300.0))
    x = torch.as_tensor(trials.inputs)
    reference = torch.autograd.grad(_loss(net(x), trials), list(net.parameters()))
    fast = torch.autograd.grad(_loss(readout(net, x), trials), list(net.parameters()))
    assert sum(float(g.abs().sum()) for g in reference) > 0
    for a, b in zip(reference, fast):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12 * float(a.abs().max()))


def test_bptt_gradients_match_central_finite_differences_within_1e_4():
    net = _small_net("box", seed=5)
    trials = xor_trials(4, 2, 1.0, _short(250.0))
    x = torch.as_tensor(trials.inputs)
    grads = dict(zip([n for n, _ in net.named_parameters()],
                     torch.autograd.grad(_loss(readout(net, x), trials), list(net.parameters()))))
    assert int(net(x)["spikes"].sum()) > 20  # the check runs through spikes and resets
    rng = np.random.default_rng(0)
    checked = 0
    for name, p in net.named_parameters():
        for idx in (tuple(int(rng.integers(0, s)) for s in p.shape) for _ in range(4)):
            if name == "W" and idx[0] == idx[1]:
                continue
            eps = 1e-6
            with torch.no_grad():
                p[idx] += eps
                up = float(_loss(net(x), trials))
                p[idx] -= 2 * eps
                down = float(_loss(net(x), trials))
                p[idx] += eps
            fd, g = (up - down) / (2 * eps), float(grads[name][idx])
            assert abs(fd - g) <= 1e-4 * max(abs(g), 1e-3), (name, idx, fd, g)
            checked += 1
    assert checked >= 15


def test_bptt_converges_to_the_continuous_adjoint_as_dt_shrinks():
    rng = np.random.default_rng(0)
    N, duration = 3, 60.0
    W = rng.normal(0, 0.5, (N, N)) * (1 - np.eye(N))
    U, b, O, o_b = rng.normal(0, 0.6, (N, 2)), np.full(N, -1.0), rng.normal(0, 1, (1, N)), np.array([0.1])
    errors = []
    for dt in (0.04, 0.02):
        n = GateNeuron(dt=dt, tau_v=8.0, tau_s=10.0, x_a=-0.6, width=2.0, x_th=18.0, x_reset=-1.0, gate="smooth")
        t = np.arange(int(round(duration / dt))) * dt
        i = np.stack([np.sin(2 * np.pi * t / 25), np.cos(2 * np.pi * t / 40)], 1)
        target, weight = np.sin(2 * np.pi * t / 30)[:, None], (t > 10).astype(float)
        adjoint = adjoint_gradients(W, U, b, O, o_b, i, target, weight, n, np.full(N, -1.0))
        net = GateNetwork(2, N, 1, n, dtype=torch.float64)
        with torch.no_grad():
            for p, value in zip((net.W, net.U, net.b, net.O, net.o_b), (W, U, b, O, o_b)):
                p.copy_(torch.from_numpy(value))
        x = torch.tensor(i)[None]
        state = net(x) if dt == 0.04 else None  # the autograd reference once: no spike, x inside the zone
        if state is not None:
            inside = (state["x"] > n.x_a) & (state["x"] < n.x_a + n.width)
            assert not state["spikes"].any() and float(inside.double().mean()) > 0.05
        loss = weighted_mse(readout(net, x)["o"], torch.tensor(target)[None], torch.tensor(weight))
        bptt = torch.autograd.grad(loss, [net.W, net.U, net.b, net.O, net.o_b])
        errors.append([np.abs(adjoint[k] - g.numpy()).max() / np.abs(g.numpy()).max()
                       for k, g in zip(("W", "U", "b", "O", "o_b"), bptt)])
    coarse, fine = np.array(errors)
    assert fine.max() < 0.025  # measured: 1.8e-2 (W, the one-step synaptic hop), <= 1e-3 for the others
    assert np.all(fine < 0.6 * coarse)  # first order in dt


def test_xor_trials_cycle_the_four_conditions_and_the_target_is_their_xor():
    cfg = dict(XOR_DEFAULTS, noise=0.0)
    trials = xor_trials(8, 0, 1.0, cfg)
    assert list(trials.condition) == [0, 1, 2, 3, 0, 1, 2, 3]
    a, b = trials.inputs[:, 75, 0], trials.inputs[:, 375, 0]
    assert np.array_equal(trials.target[:, 800, 0], np.where(a != b, 1.0, -1.0))
    assert np.array_equal(xor_label(trials.condition), np.where(a != b, 1.0, -1.0))
    assert trials.inputs[:, 675, 1].tolist() == [1.0] * 8 and not trials.inputs[:, :, 2].any()
    assert trials.weight[0, 100] == pytest.approx(0.1) and trials.weight[0, 660] == 0 and trials.weight[0, 800] == 1
    noisy = xor_trials(8, 0, 1.0), xor_trials(8, 1, 1.0)
    assert not np.array_equal(noisy[0].inputs, noisy[1].inputs)  # fresh seeds, fresh trials
    with pytest.raises(SpikeportError, match=r"xor: cue=\[650.0, 700.0\] is outside \[0, 600\] ms"):
        xor_trials(4, 0, 1.0, dict(XOR_DEFAULTS, duration=600.0))


def test_predictive_coding_input_is_unit_variance_low_pass_noise_with_its_time_constant():
    trials = pc_trials(64, 0, 1.0, dict(PC_DEFAULTS, duration=2000.0))
    x = trials.inputs[..., 0]
    assert x.std() == pytest.approx(1.0, abs=0.05)
    lag = 50
    corr = np.mean(x[:, lag:] * x[:, :-lag]) / np.mean(x * x)
    assert corr == pytest.approx(np.exp(-lag / PC_DEFAULTS["tau_in"]), abs=0.05)
    assert np.array_equal(trials.target, trials.inputs) and not trials.score[:, :50].any()
