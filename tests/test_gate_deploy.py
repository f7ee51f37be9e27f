"""Deploying gate networks: graded gate charge through Lava Dense, emulator = Lava bit for bit, refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.errors import SpikeportError
from toolchain.methods.gate import deploy
from toolchain.methods.gate.train import train_gate
from toolchain.tasks.gate_tasks import make_trials

torch.set_num_threads(1)
TINY = dict(duration=150.0, n_rec=10, eval_trials=4, eval_every=1, batch_size=4)
SHORT_XOR = dict(TINY, pulse_a=[10.0, 20.0], pulse_b=[40.0, 50.0], cue=[80.0, 90.0], response=[90.0, 140.0],
                 score=[100.0, 140.0])


@pytest.fixture(scope="module")
def pc_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("gate") / "pc.pt"
    train_gate("predictive-coding", iterations=2, out=out, progress=False, log=None, **TINY)
    return out


def _trials(ir, n=6, seed=3):
    return make_trials(ir.meta["task"], n, seed, ir.meta["run_config"]["dt"], ir.meta["run_config"])


def test_the_float_emulator_reproduces_the_trained_model_readout(pc_model):
    net, ir, _ = deploy.compile_gate(pc_model)
    trials = _trials(ir)
    reference = deploy.float_run(net, trials)["o"]
    assert np.abs(reference).max() > 0.05
    assert np.abs(deploy.deployed("float-emulator", ir, trials)["o"] - reference).max() < 1e-9


def test_the_fixed_point_readout_stays_close_to_the_float_model(pc_model):
    net, ir, _ = deploy.compile_gate(pc_model)
    trials = _trials(ir)
    reference = deploy.float_run(net, trials)["o"]
    fixed = deploy.deployed("emulator", ir, trials)["o"]
    assert np.corrcoef(fixed.ravel(), reference.ravel())[0, 1] > 0.9  # spike times move by a step at most here
    assert np.abs(fixed - reference).mean() < 0.25 * np.abs(reference).mean()


def test_lava_fixed_pt_is_bit_identical_to_the_emulator_and_carries_graded_payloads(pc_model):
    _, ir, _ = deploy.compile_gate(pc_model)
    trials = _trials(ir, n=2)
    bi = deploy.bit_identity(ir, trials)
    assert bi.samples == 2 and bi.identical_samples == 2 and bi.first_divergence is None
    sent = deploy.deployed("emulator", ir, trials)["record"]["rec/s"]
    assert np.abs(sent).max() > 1  # graded: payloads other than 0/1 went through Dense(num_message_bits=8)


def test_packed_spikes_are_refused_for_a_population_that_sends_graded_values(pc_model):
    from backends.emulator import run

    _, ir, _ = deploy.compile_gate(pc_model)
    x = deploy.encode(_trials(ir, n=1), ir, "fixed")
    with pytest.raises(SpikeportError, match=r"^rec: packed=True records binary spikes, but this \S+ sends graded"):
        run(ir, x, record=["rec/s"], packed=True)


def test_a_full_passage_in_fixed_point_sends_exactly_two_to_the_payload_bits(pc_model):
    _, ir, _ = deploy.compile_gate(pc_model)
    rec = deploy.deployed("emulator", ir, _trials(ir))["record"]
    q, x = rec["rec/q"].astype(np.int64), rec["rec/x"]
    spiked = x == ir.op("rec").fixed.x_reset
    spiked[:, 0] = False
    b, t, i = np.nonzero(spiked)
    assert len(b) > 5
    for bb, tt, ii in zip(b[:20], t[:20], i[:20]):
        previous = np.nonzero(spiked[bb, :tt, ii])[0]
        if previous.size:  # from one reset to the next: one full passage
            assert q[bb, previous[-1] + 1:tt + 1, ii].sum() == 2 ** deploy.PAYLOAD_BITS


def test_compile_refuses_a_smooth_gate_and_a_step_that_is_not_a_power_of_two(tmp_path):
    smooth = tmp_path / "smooth.pt"
    train_gate("predictive-coding", iterations=1, out=smooth, progress=False, log=None, gate="smooth", **TINY)
    with pytest.raises(SpikeportError, match="gate='smooth' has no fixed-point form"):
        deploy.compile_gate(smooth)
    odd = tmp_path / "odd.pt"
    train_gate("predictive-coding", iterations=1, out=odd, progress=False, log=None, tau_v=6.0, **TINY)
    with pytest.raises(SpikeportError, match="not a power of two"):
        deploy.compile_gate(odd)


def test_training_resumes_exactly_where_it_stopped(tmp_path):
    whole, part = tmp_path / "whole.pt", tmp_path / "part.pt"
    train_gate("xor", iterations=3, out=whole, progress=False, log=None, **SHORT_XOR)
    train_gate("xor", iterations=2, out=part, progress=False, log=None, **SHORT_XOR)
    train_gate("xor", iterations=3, out=part, resume=True, progress=False, log=None, **SHORT_XOR)
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in (whole, part))
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(SpikeportError, match="only iterations may change"):
        train_gate("xor", iterations=4, out=part, resume=True, progress=False, log=None, **dict(SHORT_XOR, n_rec=12))
    json.dumps(torch.load(part, weights_only=True)["history"])  # the history is plain data


def test_the_current_gets_the_least_headroom_that_keeps_twice_its_calibrated_peak_in_24_bits():
    frac, k = 17, 3  # x_th = 18 fills 22 bits, h = 2**-3
    assert deploy.current_headroom(frac, k, 31.9) == 0  # 2 * 31.9 * 2**17 < 2**23
    assert deploy.current_headroom(frac, k, 32.1) == 1
    assert deploy.current_headroom(frac, k, 108.0) == 2
    assert deploy.current_headroom(frac, k, 255.0) == 3
    with pytest.raises(SpikeportError, match=r"current \|c \+ U i\| up to 600 .* cannot hold it"):
        deploy.current_headroom(frac, k, 600.0)


def test_a_strong_input_drive_deploys_without_leaving_the_24_bit_current(pc_model):
    net, ir, lines = deploy.compile_gate(pc_model)  # the defaults' U ~ N(0, 144): |U i| beyond 64
    trials = _trials(ir)
    peak = np.abs(deploy.current(net, trials, deploy.float_run(net, trials)["r"])).max()
    assert peak > 64 and ir.op("rec").fixed.u_shift < ir.meta["gate"]["k"]
    assert any("current u = (c + U i) 2**" in line for line in lines)
    deployed = deploy.deployed("emulator", ir, trials)["o"]  # a current outside 24 bits would be refused here
    assert np.isfinite(deployed).all()
