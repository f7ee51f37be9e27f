"""The Lava backend (backends/lava): IR -> real lava-nc processes, run in stoppable children.

Every expected value here is derived by hand from docs/fixed-point.md
(Lava's integer semantics), not from another engine: u enters as
``a_in << 6``, decays round toward zero with factor (4095-du)/4096, v is
recorded after reset, an input sent at step t reaches a LIF behind one
synapse at step t+1 (t+1+d behind a delay d). Steps are numbered 1..T; row
t-1 of every array is step t.
"""
import sys

import numpy as np
import pytest

from backends.lava import check_lava_params, run_lava, runner
from fresh_interpreter import run_isolated
from lava_networks import EXC, INH, MIXED, chain_ir, dense, impulses, lif, zoo_inputs, zoo_ir
from models.errors import SpikeportError
from toolchain import ir as irm


# ----------------------------------------------------- hand-derived semantics
# Each fixed-mode network below is built by its ``_<name>()`` (ir, x, record) next to its test;
# the `hand_runs` fixture runs them all on Lava in one child (`run_lava_many`: each its own Lava
# network, as `run_lava` runs it) and each test checks its own network's arrays by hand.
def _chain():
    return chain_ir(), impulses(7, 1, 1, 4), ["l1", "out"]  # (T, N): the result is still (B=1, T, n)


@pytest.mark.lava
def test_chain_input_sent_at_step_t_reaches_layer1_at_t_plus_1_and_layer2_at_t_plus_2(hand_runs):
    out = hand_runs["chain"]
    assert sorted(out) == ["l1/s", "l1/u", "l1/v", "out/s", "out/u", "out/v"]
    assert out["l1/u"].shape == (1, 7, 1) and out["l1/s"].dtype == np.int8 and out["l1/v"].dtype == np.int32
    # 200 << 6 = 12800 > vth << 6 = 640: a spike in the step the input arrives, then v = 0 (post-reset)
    np.testing.assert_array_equal(out["l1/u"][0, :, 0], [0, 12800, 0, 0, 12800, 0, 0])
    np.testing.assert_array_equal(out["l1/s"][0, :, 0], [0, 1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(out["out/u"][0, :, 0], [0, 0, 12800, 0, 0, 12800, 0])
    np.testing.assert_array_equal(out["out/s"][0, :, 0], [0, 0, 1, 0, 0, 1, 0])
    assert not out["l1/v"].any() and not out["out/v"].any()


def _decay():
    ir = irm.IR("decay")
    ir.add("in", irm.Input(1))
    ir.add("in2", irm.Input(1))  # a second Input: x's columns are split in node order
    ir.add("da", dense([[100], [-100]]), ["in"])
    ir.add("a", lif(2, du=0), ["da"])  # factor 4095/4096
    ir.add("db", dense([[100]]), ["in"])
    w2 = np.array([[50]])
    ir.add("sb", irm.Sparse(w2.astype(float), fixed=irm.SynapseFixed(w2, sign_mode=EXC)), ["in2"])
    ir.add("b", lif(1, du=-1), ["db", "sb"])  # factor 4096/4096
    return ir, np.hstack([impulses(5, 1, 1), impulses(5, 1, 3)]), ["a/u", "b/u", "b/v"]


@pytest.mark.lava
def test_current_decay_rounds_toward_zero_and_du_minus_1_holds_the_current(hand_runs):
    out = hand_runs["decay"]
    assert sorted(out) == ["a/u", "b/u", "b/v"]
    np.testing.assert_array_equal(out["a/u"][0, :, 0], [0, 6400, 6398, 6396, 6394])
    np.testing.assert_array_equal(out["a/u"][0, :, 1], [0, -6400, -6398, -6396, -6394])  # not -6399
    np.testing.assert_array_equal(out["b/u"][0, :, 0], [0, 6400, 6400, 9600, 9600])  # + 50 << 6 from in2
    np.testing.assert_array_equal(out["b/v"][0, :, 0], [0, 6400, 12800, 22400, 32000])  # dv = 0: no leak


def _delays_ir():
    ir = irm.IR("delays")
    ir.add("in", irm.Input(1))
    ir.add("dd", dense([[100]] * 4, delays=[0, 1, 2, 3]), ["in"])
    ir.add("l", lif(4), ["dd"])
    return ir


DELAY_X = np.stack([impulses(7, 1, 1), impulses(7, 1, 2)])  # sample 2 one step later


def _delays_tiled():
    return _delays_ir(), DELAY_X, ["l/u"]  # DelaySparse, block-diagonal


def _delays_single():
    return _delays_ir(), DELAY_X[1], ["l/u"]  # DelayDense


@pytest.mark.lava
def test_delay_d_reaches_the_neuron_at_step_t_plus_1_plus_d_in_tiled_and_single_runs(hand_runs):
    want = np.zeros((2, 7, 4), dtype=np.int64)
    for d in range(4):
        want[0, 1 + d, d] = want[1, 2 + d, d] = 6400
    np.testing.assert_array_equal(hand_runs["delays_tiled"]["l/u"], want)
    np.testing.assert_array_equal(hand_runs["delays_single"]["l/u"][0], want[1])


def _recurrent():
    ir = irm.IR("recurrent")
    ir.add("in", irm.Input(1))
    ir.add("d", dense([[0]], sign_mode=EXC), ["in"])
    ir.add("l", lif(1, du=4095, dv=0, vth=1, bias=30), ["d"])
    ir.add("rec", dense([[20]]), ["l"])
    ir.connect("rec", "l")
    return ir, np.zeros((6, 1)), ["l"]


@pytest.mark.lava
def test_recurrent_self_excitation_fires_every_step_after_the_first_spike(hand_runs):
    out = hand_runs["recurrent"]
    # bias alone: v = 30, 60, 90 > 64 (spike at 3); then 20 << 6 = 1280 arrives every next step
    np.testing.assert_array_equal(out["l/s"][0, :, 0], [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(out["l/v"][0, :, 0], [30, 60, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["l/u"][0, :, 0], [0, 0, 0, 1280, 1280, 1280])


def _graded():
    ir = irm.IR("graded")
    ir.add("in", irm.Input(1, num_message_bits=16))
    ir.add("d", dense([[3]], weight_exp=-1, num_message_bits=16), ["in"])
    ir.add("l", lif(1), ["d"])
    return ir, np.array([[5], [-3], [0], [2], [0]]), ["l/u"]


@pytest.mark.lava
def test_graded_input_multiplies_the_weight_and_negative_weight_exp_floors_the_sum(hand_runs):
    out = hand_runs["graded"]
    # 3*5 = 15 >> 1 = 7; 3*(-3) = -9 >> 1 = -5 (floor); 3*2 = 6 >> 1 = 3; each << 6
    np.testing.assert_array_equal(out["l/u"][0, :, 0], [0, 7 * 64, -5 * 64, 0, 3 * 64])


def _reset():
    ir = irm.IR("reset")
    ir.add("in", irm.Input(1))
    ir.add("d", dense([[100]]), ["in"])
    ir.add("l", lif(1, du=-1, dv=0, reset=(5, 2)), ["d"])
    return ir, impulses(8, 1, 1), ["l"]


@pytest.mark.lava
def test_lif_reset_zeroes_u_and_v_when_step_mod_interval_equals_offset(hand_runs):
    out = hand_runs["reset"]
    # step 2: reset, then the arriving input is still integrated; step 7: reset, nothing arrives
    np.testing.assert_array_equal(out["l/u"][0, :, 0], [0, 6400, 6400, 6400, 6400, 6400, 0, 0])
    np.testing.assert_array_equal(out["l/v"][0, :, 0], [0, 6400, 12800, 19200, 25600, 32000, 0, 0])


def _signs():
    ir = irm.IR("signs")
    ir.add("in", irm.Input(2))
    ir.add("exc", dense([[7, 0], [0, 3]], sign_mode=EXC), ["in"])  # kept as is
    ir.add("mix", dense([[7, -5], [1, 0]], sign_mode=MIXED), ["in"])  # LSB dropped: [[6, -6], [0, 0]]
    ir.add("inh", dense([[-5, 0], [0, -2]], sign_mode=INH), ["in"])  # kept as is
    ir.add("l", lif(2), ["exc", "mix", "inh"])
    x = np.stack([impulses(3, 2, 1), np.array([[0, 1], [0, 0], [0, 0]])])
    return ir, x, ["l/u"]  # tiled: block-diagonal Sparse, explicit sign modes


@pytest.mark.lava
def test_sign_modes_apply_per_synapse_and_synapses_into_one_population_are_summed(hand_runs):
    out = hand_runs["signs"]
    # sample 1, both channels: 7 + 6 - 6 - 5 = 2 and 3 + 0 - 2 = 1; sample 2, channel 1 only: -6 and 3 - 2 = 1
    np.testing.assert_array_equal(out["l/u"][:, 1], [[2 * 64, 1 * 64], [-6 * 64, 1 * 64]])
    assert not out["l/u"][:, 2].any()


HAND_BUILT = {"chain": _chain, "decay": _decay, "delays_tiled": _delays_tiled, "delays_single": _delays_single,
              "recurrent": _recurrent, "graded": _graded, "reset": _reset, "signs": _signs}


@pytest.fixture(scope="module")
def hand_runs():
    """``{name: run_lava(ir, x, record=record)}`` for every `HAND_BUILT` network, all run in one
    Lava child (`run_lava_many`). A Lava failure fails every test using this."""
    return dict(zip(HAND_BUILT, runner.run_lava_many([make() for make in HAND_BUILT.values()])))


@pytest.mark.lava
def test_float_mode_follows_lava_floating_pt_equations():
    ir = irm.IR("float")
    ir.add("in", irm.Input(1))
    ir.add("d", irm.Dense([[0.5]]), ["in"])
    ir.add("l", irm.LIF(1, du=0.25, dv=0.5, vth=0.6, bias=[0.1]), ["d"])
    x = impulses(8, 1, 1, 2)
    out = run_lava(ir, x, mode="float")
    u = v = 0.0
    want = {"s": [], "v": [], "u": []}
    for t in range(8):
        a = 0.5 * x[t - 1, 0] if t > 0 else 0.0  # one-step synaptic delay
        u = u * (1 - 0.25) + a
        v = v * (1 - 0.5) + u + 0.1
        s = v > 0.6
        v = 0.0 if s else v
        for key, val in zip("svu", (s, v, u)):
            want[key].append(val)
    assert out["l/v"].dtype == np.float64
    np.testing.assert_array_equal(out["l/s"][0, :, 0], want["s"])
    assert any(want["s"])
    np.testing.assert_allclose(out["l/v"][0, :, 0], want["v"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["l/u"][0, :, 0], want["u"], rtol=1e-12, atol=1e-12)


# ------------------------------------------------ batching and other engines
@pytest.fixture(scope="module")
def zoo_runs():
    ir, x = zoo_ir(), zoo_inputs()
    tiled = run_lava(ir, x)
    per_sample = run_lava(ir, x, batching="per-sample", workers=2)
    return ir, x, tiled, per_sample


@pytest.mark.lava
def test_tile_batching_equals_one_network_per_sample_exactly(zoo_runs):
    _, x, tiled, per_sample = zoo_runs
    assert sorted(tiled) == sorted(per_sample) == sorted(f"{n}/{k}" for n in ("l1", "l2") for k in "svu")
    for key in tiled:
        assert tiled[key].shape[:2] == x.shape[:2]
        np.testing.assert_array_equal(tiled[key], per_sample[key], err_msg=key)
    assert tiled["l1/s"].sum() > 0 and tiled["l2/s"].sum() > 0, "the scenario must spike"


@pytest.mark.lava
def test_lava_equals_the_emulator_for_s_v_u(zoo_runs):
    emulator = pytest.importorskip("backends.emulator")
    ir, x, tiled, _ = zoo_runs
    emulated = emulator.run(ir, x, mode="fixed")
    for key in tiled:
        np.testing.assert_array_equal(tiled[key], emulated[key], err_msg=key)


SAVED_VS_GET_DATA = """
import pickle, sys
import numpy as np
from backends.lava.compat import import_lava
import_lava()
from backends.lava.builder import SAVE_TO, build_network, saving_monitor_model
from backends.lava.runner import batched_inputs, tile_inputs
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.monitor.process import Monitor

ir, x = pickle.load(open(sys.argv[1], "rb"))
net = build_network(ir, tile_inputs(batched_inputs(ir, x, "fixed")), tiles=len(x),
                    record=[("l1", "s"), ("l1", "v"), ("l2", "u")])
saved = {}
for node, monitors in net.monitors.items():
    for var, monitor in monitors.items():
        saved[node, var] = monitor, f"{sys.argv[2]}/{node}-{var}.npy"
        monitor.proc_params[SAVE_TO] = saved[node, var][1]
cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map={Monitor: saving_monitor_model()})
net.anchor.run(condition=RunSteps(num_steps=net.num_steps), run_cfg=cfg)
same = [np.array_equal(m.get_data()[node]["s_out" if var == "s" else var], np.load(path))
        for (node, var), (m, path) in saved.items()]
net.anchor.stop()
sys.exit(0 if all(same) else 3)
"""


@pytest.mark.lava
def test_monitor_recording_saved_to_file_equals_lava_get_data(tmp_path):
    import pickle

    with open(tmp_path / "job.pkl", "wb") as f:
        pickle.dump((zoo_ir(), zoo_inputs()[:2, :8]), f)
    code, _, err = run_isolated([sys.executable, "-c", SAVED_VS_GET_DATA, str(tmp_path / "job.pkl"), str(tmp_path)])
    assert code == 0, err


# ------------------------------------------------------------ refused inputs
def _no_children(monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("a Lava child was started")

    monkeypatch.setattr(runner, "_Child", refuse)


@pytest.mark.parametrize("node, param, change, value", [
    ("l1", "vth", lambda ir: setattr(ir.op("l1").fixed, "vth", 2.5), "2.5"),
    ("l2", "du", lambda ir: setattr(ir.op("l2").fixed, "du", 5000), "5000"),
    ("l1", "bias_mant", lambda ir: ir.op("l1").fixed.bias_mant.__setitem__(0, 40000), "40000"),
    ("dd", "delay", lambda ir: ir.op("dd").delay.__setitem__((0, 0), 64), "64"),
])
def test_bad_parameters_are_refused_before_lava_starts_naming_node_param_and_value(monkeypatch, node, param,
                                                                                   change, value):
    _no_children(monkeypatch)
    ir = zoo_ir()
    change(ir)
    with pytest.raises(SpikeportError) as err:
        run_lava(ir, zoo_inputs())
    message = str(err.value)
    assert message.startswith(f"{node}: {param}={value}") and "\n" not in message


@pytest.mark.lava
def test_several_networks_in_one_child_give_each_network_its_own_run_lava_result(zoo_runs, monkeypatch):
    """`run_lava_many`: one child for two networks (records as asked), each result `run_lava`'s."""
    ir, x, tiled, _ = zoo_runs
    chain_x = impulses(6, 1, 2)
    alone = run_lava(chain_ir(), chain_x, record=["l1", "out"])
    started, real = [], runner._Child
    monkeypatch.setattr(runner, "_Child", lambda jobs, folder: started.append(len(jobs)) or real(jobs, folder))
    chain, zoo = runner.run_lava_many([(chain_ir(), chain_x, ["l1", "out"]), (ir, x)])
    assert started == [2]  # one child, both jobs
    for got, want in ((chain, alone), (zoo, tiled)):
        assert sorted(got) == sorted(want)
        assert all(got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]) for k in want)
    assert chain["out/s"].sum() > 0


def test_one_bad_network_among_several_is_refused_before_lava_starts(monkeypatch):
    _no_children(monkeypatch)
    ir = zoo_ir()
    ir.op("l2").fixed.du = 5000
    with pytest.raises(SpikeportError, match=r"^l2: du=5000"):
        runner.run_lava_many([(chain_ir(), impulses(4, 1, 1)), (ir, zoo_inputs())])
    assert runner.run_lava_many([]) == []


def test_du_minus_1_is_accepted_as_no_current_decay():
    ir = zoo_ir()
    ir.op("l1").fixed.du = -1
    check_lava_params(ir)


def test_float_ir_is_refused_in_fixed_mode(monkeypatch):
    _no_children(monkeypatch)
    ir = zoo_ir()
    ir.op("d1").fixed = None
    with pytest.raises(SpikeportError, match="d1: IR is float; compile/quantize first"):
        run_lava(ir, zoo_inputs())


@pytest.mark.parametrize("x, match", [
    (np.zeros((2, 5, 3)), r"input: shape \(2, 5, 3\)"),
    (np.full((5, 6), 0.5), None),  # binary input: 0.5 is a spike, accepted
])
def test_input_shape_is_checked_and_binary_input_accepts_any_nonzero(x, match):
    if match:
        with pytest.raises(SpikeportError, match=match):
            runner.batched_inputs(zoo_ir(), x, "fixed")
    else:
        assert runner.batched_inputs(zoo_ir(), x, "fixed")["in"].max() == 1
