"""The emulator, without Lava: timing through the graph, the float equations, block-size
invariance, prepared programs, recordings, outputs, errors and `spikeport simulate`.

The fixed-point rules themselves are probed in test_emulator_arithmetic.py. Steps are
1-based in the text and 0-based as array indices: index i is step i + 1.
"""
import re

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import emulator
from backends.emulator import engine, memory, nodes, run
from backends.recording import pack_spikes, unpack_spikes
from models.errors import SpikeportError
from probes import dense, impulse, lif, single, trace
from strategies import NetSpec, build, net_specs
from toolchain import ir as irm


# --------------------------------------------------------------- timing
def test_chain_timing_each_hop_adds_one_step():
    ir = irm.IR("chain")
    ir.add("in", irm.Input(1))
    ir.add("d1", dense([[200]]), ["in"])
    ir.add("l1", lif(du=4095, vth=100), ["d1"])
    ir.add("d2", dense([[200]]), ["l1"])
    ir.add("l2", lif(du=4095, vth=100), ["d2"])
    out = run(ir, impulse(5))
    assert out["l1/u"][0, :, 0].tolist() == [0, 12800, 0, 0, 0] and out["l1/s"][0, :, 0].tolist() == [0, 1, 0, 0, 0]
    assert out["l2/u"][0, :, 0].tolist() == [0, 0, 12800, 0, 0] and out["l2/s"][0, :, 0].tolist() == [0, 0, 1, 0, 0]


def test_a_delay_d_adds_one_plus_d_steps():
    ir = single(lif(n=4, du=4095), [[100], [100], [100], [100]], delay=[[0], [1], [2], [3]], cls=irm.DelayDense)
    u = run(ir, impulse(6))["n/u"][0]
    assert [int(np.argmax(u[:, j])) + 1 for j in range(4)] == [2, 3, 4, 5]
    assert u.max(axis=0).tolist() == [6400] * 4


def test_a_delayed_synapse_shifts_each_delay_groups_sum_on_its_own():
    # two spikes through delays 0 and 1 land at the same step: floor(1/2) + floor(1/2) = 0, not floor(2/2)
    ir = single(lif(du=4095), [[1, 1]], delay=[[1, 0]], weight_exp=-1, cls=irm.DelayDense)
    x = np.array([[1, 0], [0, 1], [0, 0]])
    assert trace(ir, x)["u"] == [0, 0, 0]


def test_recurrent_spikes_return_one_step_later():
    ir = irm.IR("rec")
    ir.add("in", irm.Input(1))
    ir.add("d", dense([[200]]), ["in"])
    ir.add("n", lif(du=4095, vth=100), ["d"])
    ir.add("rec", dense([[150]]), ["n"])
    ir.connect("rec", "n")
    got = trace(ir, impulse(5))
    assert got["u"] == [0, 12800, 9600, 9600, 9600] and got["s"] == [0, 1, 1, 1, 1]


# ------------------------------------------------------------ float engine
def _float_reference(ir, x):
    """Lava floating_pt written out for a chain with one synapse per population."""
    out, spikes = {}, (np.asarray(x) != 0).astype(float)
    for name, op in ir.nodes(irm.Neuron):
        syn = ir.op(ir.inputs(name)[0])
        delay = np.zeros(syn.weight.shape, int) if syn.delays is None else syn.delays
        B, T, _ = spikes.shape
        a = np.zeros((B, T, op.n))
        for t in range(T):
            for d in np.unique(delay):
                if t - 1 - d >= 0:
                    a[:, t] += spikes[:, t - 1 - d] @ np.where(delay == d, syn.weight, 0).T
        u, v = np.zeros((B, op.n)), np.zeros((B, op.n))
        S, V, U = (np.zeros((B, T, op.n)) for _ in range(3))
        for t in range(T):
            u = u * (1 - op.du) + a[:, t]
            v = v * (1 - op.dv) + u + op.bias
            S[:, t], v = v > op.vth, np.where(v > op.vth, 0.0, v)
            V[:, t], U[:, t] = v, u
        out.update({f"{name}/s": S, f"{name}/v": V, f"{name}/u": U})
        spikes = S
    return out


def test_float_engine_follows_lava_floating_pt_equations():
    ir = irm.IR("float")
    rng = np.random.default_rng(3)
    ir.add("in", irm.Input(5))
    ir.add("d1", irm.DelayDense(rng.normal(0, 0.6, (4, 5)), delay=rng.integers(0, 3, (4, 5))), ["in"])
    ir.add("l1", irm.LIF(4, du=0.3, dv=0.2, vth=0.7, bias=rng.normal(0, 0.05, 4)), ["d1"])
    ir.add("d2", irm.Dense(rng.normal(0, 0.8, (3, 4))), ["l1"])
    ir.add("l2", irm.LIF(3, du=0.1, dv=0.05, vth=0.5), ["d2"])
    x = (rng.random((2, 30, 5)) < 0.4) * rng.choice([1.0, 3.0, -2.0], (2, 30, 5))
    got, want = run(ir, x, mode="float"), _float_reference(ir, x)
    assert got["l2/s"].sum() > 0
    for key in want:
        assert got[key].dtype == (np.int8 if key.endswith("/s") else np.float64)
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_float_graded_input_multiplies_the_weight():
    ir = irm.IR("graded")
    ir.add("in", irm.Input(1, num_message_bits=8))
    ir.add("d", irm.Dense([[0.5]], num_message_bits=8), ["in"])
    ir.add("n", irm.LIF(1, du=1.0, dv=1.0, vth=100.0), ["d"])
    assert trace(ir, np.array([[3.0], [-2.5], [0.0]]), mode="float")["u"] == [0.0, 1.5, -1.25]


# --------------------------------------------- blocks, recording, outputs
@settings(max_examples=25, deadline=None, derandomize=True)
@given(spec=net_specs(max_steps=25), steps=st.sampled_from([1, 3]))
def test_results_do_not_depend_on_how_many_steps_a_block_holds(spec, steps):
    ir, x = build(spec)  # generated weights Lava clips on purpose: check=False (an arithmetic probe)
    whole = run(ir, x, check=False)
    saved = engine.BLOCK_BYTES
    engine.BLOCK_BYTES = steps * engine.step_bytes(ir, x.shape[0])
    try:
        blocked = run(ir, x, check=False)
    finally:
        engine.BLOCK_BYTES = saved
    for key in whole:
        assert np.array_equal(whole[key], blocked[key]), key


@settings(max_examples=15, deadline=None, derandomize=True)
@given(spec=net_specs(max_steps=20))
def test_a_prepared_program_runs_batch_after_batch_as_run_does(spec):
    ir, x = build(spec)  # generated weights Lava clips on purpose: check=False (an arithmetic probe)
    for mode in ("fixed", "float"):
        program = emulator.prepare(ir, mode, check=False)
        for batch in (x, x[:, ::-1], x[::-1]):  # one program, several inputs: no state leaks between runs
            fresh, again = run(ir, batch, mode=mode, check=False), program.run(batch)
            assert all(np.array_equal(fresh[key], again[key]) for key in fresh)


def test_a_prepared_program_is_a_snapshot_that_later_changes_to_the_ir_do_not_reach():
    x = impulse(7)
    for mode in ("fixed", "float"):
        ir = single(lif(n=2, du=100, vth=1), [[100], [50]])
        program = emulator.prepare(ir, mode)
        before = program.run(x)
        ir.op("syn").fixed.weights[:] = 0  # in place, in the very arrays prepare read
        ir.op("syn").weight[:] = 0
        nx.relabel_nodes(ir.graph, {"n": "renamed"}, copy=False)
        assert run(ir, x, mode=mode)["renamed/u"].max() == 0  # the changed IR itself is silent
        after = program.run(x)
        assert before["n/u"].max() > 0 and all(np.array_equal(before[key], after[key]) for key in before)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(spec=net_specs(max_steps=20))
def test_sparse_and_dense_synaptic_products_agree(spec):
    ir, x = build(spec)  # generated weights Lava clips on purpose: check=False (an arithmetic probe)
    saved = nodes.DENSE_MAC
    try:
        results = []
        for cost in (0.0, 1e9):  # never / always through a csr matrix
            nodes.DENSE_MAC = cost
            results.append([run(ir, x, mode=mode, check=False) for mode in ("fixed", "float")])
    finally:
        nodes.DENSE_MAC = saved
    for by_dense, by_csr in zip(*results):
        assert all(np.array_equal(by_dense[key], by_csr[key]) for key in by_dense)


def test_outputs_are_three_dimensional_with_the_documented_dtypes():
    ir = single(lif(n=2, du=100, vth=1), [[100], [50]])
    x = impulse(7)
    fixed, flt = run(ir, x), run(ir, x, mode="float")
    assert set(fixed) == {"n/s", "n/v", "n/u"} and all(a.shape == (1, 7, 2) for a in fixed.values())
    assert [fixed[f"n/{f}"].dtype for f in "svu"] == [np.int8, np.int32, np.int32]
    assert [flt[f"n/{f}"].dtype for f in "svu"] == [np.int8, np.float64, np.float64]


def test_record_selects_nodes_output_names_and_single_arrays():
    ir = single(lif(du=100, vth=1), [[100]])
    x = impulse(4)
    full = run(ir, x)
    out = run(ir, x, record=["out", "n/s"])
    assert sorted(out) == ["n/s", "out/s", "out/u", "out/v"]
    assert np.array_equal(out["out/v"], full["n/v"]) and np.array_equal(out["n/s"], full["n/s"])
    assert out["out/s"] is not out["n/s"]


def test_recordings_reuse_memory_only_once_every_view_of_them_is_gone():
    rng = np.random.default_rng(0)
    ir = single(lif(n=300, du=100, vth=40), rng.integers(-200, 255, (300, 20)))
    xs = [rng.random((8, 30, 20)) < 0.3 for _ in range(3)]
    first = run(ir, xs[0])
    kept, want = first["n/v"][3, 5:], first["n/v"][3, 5:].copy()  # a view of a view outlives the dict
    del first
    second = run(ir, xs[1])
    assert np.array_equal(kept, want) and not np.shares_memory(kept, second["n/v"])
    del kept, second
    pooled = {id(b) for b in memory._pool}  # the pool keeps its buffers: their ids stay their own
    third = run(ir, xs[2])
    assert {id(a.base) for a in third.values()} <= pooled  # all three recordings on released buffers
    assert np.array_equal(third["n/v"], run(ir, xs[2])["n/v"])


def test_large_recordings_come_from_memory_mapped_while_the_run_is_prepared(monkeypatch):
    """`run` reserves exactly what it will record in arrays of `memory.RESERVED_BYTES` or more and
    has their pages mapped on another thread (`memory.reserving`); the recordings are the same
    integers, and the memory goes with them."""
    import gc
    import weakref

    rng = np.random.default_rng(3)
    ir = single(lif(n=300, du=100, vth=40), rng.integers(-200, 255, (300, 20)))
    x = rng.random((8, 400, 20)) < 0.3
    want = run(ir, x)  # 1 MB of s and 3.7 MB each of u, v: from the pool or malloc
    monkeypatch.setattr(memory, "RESERVED_BYTES", 1 << 20)
    reserved, reservation_class = [], memory._Reservation
    monkeypatch.setattr(memory, "_Reservation", lambda n: reserved.append(reservation_class(n)) or reserved[-1])
    got = run(ir, x)
    assert sorted(got) == sorted(want) and all(np.array_equal(got[k], want[k]) for k in want)
    [reservation] = reserved
    assert reservation.used == reservation.nbytes == memory.reservation_for(a.nbytes for a in got.values())
    assert [np.shares_memory(a, reservation.buffer) for a in got.values()] == [a.nbytes >= 1 << 20 for a in got.values()]
    mapping = weakref.ref(reservation.buffer.base)
    del got, reservation
    reserved.clear()
    gc.collect()
    assert mapping() is None


def test_a_packed_recording_holds_neuron_j_in_bit_j_mod_8_of_byte_j_div_8():
    s = np.zeros((1, 2, 10), np.int8)
    s[0, 0, [0, 9]] = 1
    s[0, 1, 3] = 1
    assert pack_spikes(s).tolist() == [[[1, 2], [8, 0]]]
    assert unpack_spikes(pack_spikes(s), 10).dtype == np.int8 and np.array_equal(unpack_spikes(pack_spikes(s), 10), s)
    with pytest.raises(SpikeportError, match=r"a packed recording of 10 neurons is uint8 \(\.\.\., 2\), got int8"):
        unpack_spikes(s, 10)


def test_a_run_records_packed_spikes_in_an_eighth_of_the_bytes():
    rng = np.random.default_rng(5)
    ir = single(lif(n=300, du=100, vth=40), rng.integers(-200, 255, (300, 20)))
    x = rng.random((4, 50, 20)) < 0.3
    want, got = run(ir, x), run(ir, x, packed=True)
    assert got["n/s"].dtype == np.uint8 and got["n/s"].shape == (4, 50, 38)
    assert np.array_equal(unpack_spikes(got["n/s"], 300), want["n/s"]) and want["n/s"].any()
    assert np.array_equal(got["n/v"], want["n/v"])


def test_an_empty_batch_or_run_gives_empty_arrays():
    ir = single(lif(), [[1]])
    assert run(ir, np.zeros((0, 5, 1)))["n/v"].shape == (0, 5, 1)
    assert run(ir, np.zeros((2, 0, 1)))["n/v"].shape == (2, 0, 1)


# ---------------------------------------------------------------- errors
def test_an_input_of_the_wrong_width_names_the_node_and_both_sizes():
    with pytest.raises(SpikeportError, match=r"Input node 'in' \(1\) expects N=1 channels, got N=3"):
        run(single(lif(), [[1]]), np.zeros((4, 3)))


@pytest.mark.parametrize("shape", [(5,), (1, 2, 3, 1)])
def test_an_input_with_the_wrong_number_of_dimensions_is_refused(shape):
    with pytest.raises(SpikeportError, match=r"expected \(B, T, N\) or \(T, N\)"):
        run(single(lif(), [[1]]), np.zeros(shape))


def test_a_float_ir_is_refused_by_the_fixed_engine_and_runs_in_float_mode():
    ir = irm.IR("float")
    ir.add("in", irm.Input(1))
    ir.add("d", irm.Dense([[1.0]]), ["in"])
    ir.add("n", irm.LIF(1, du=0.1, dv=0.1, vth=0.5), ["d"])
    with pytest.raises(SpikeportError, match="d: no fixed-point parameters"):
        run(ir, impulse(3))
    assert run(ir, impulse(3), mode="float")["n/s"][0, :, 0].tolist() == [0, 1, 1]


@pytest.mark.parametrize("call, match", [
    (lambda ir: run(ir, impulse(3), mode="int"), "mode='int' is not one of"),
    (lambda ir: run(ir, impulse(3), record=["nope"]), "no node named 'nope'"),
    (lambda ir: run(ir, impulse(3), record=["syn"]), "'syn' is a Dense"),
    (lambda ir: run(ir, np.full((3, 1), np.nan)), "NaN or infinite"),
    (lambda ir: run(ir, np.array([["a"]])), "not numeric"),
])
def test_user_errors_are_one_line_spikeport_errors(call, match):
    with pytest.raises(SpikeportError, match=match):
        call(single(lif(), [[1]]))


def test_graded_fixed_inputs_must_be_int32_integers():
    ir = single(lif(), [[1]], graded=True)
    with pytest.raises(SpikeportError, match="in: graded input value 0.5 is not an integer"):
        run(ir, np.full((2, 1), 0.5))
    with pytest.raises(SpikeportError, match="in: graded input value 4294967296 is outside int32"):
        run(ir, np.full((2, 1), 1 << 32))


def test_delays_beyond_63_are_refused_with_the_node_and_limit():
    ir = single(lif(), [[1]], delay=[[64]], cls=irm.DelayDense)
    with pytest.raises(SpikeportError, match=r"syn: delay=64 is outside \[0, 63\]"):
        run(ir, impulse(2))


def test_a_progress_bar_can_be_forced_and_is_off_by_default(capsys):
    ir = single(lif(), [[1]])
    run(ir, impulse(3))
    assert capsys.readouterr().err == ""
    run(ir, impulse(3), progress=True)
    assert "emulator (fixed)" in capsys.readouterr().err


# -------------------------------------------------- spikeport simulate (CLI)
def _cli(*argv):
    from toolchain.cli import main

    return main([str(a) for a in argv])


@pytest.fixture
def model_file(tmp_path):
    from toolchain.formats import onnx as onnx_io

    ir, x = build(NetSpec(seed=5, n_in=4, layers=(5, 3), batch=2, steps=12, max_delay=(2,), recurrent=(True,)))
    onnx_io.save(ir, tmp_path / "model.onnx")
    np.save(tmp_path / "x.npy", x)
    return ir, x, tmp_path


@pytest.mark.parametrize("backend, mode", [("emulator", "fixed"), ("float", "float")])
def test_simulate_writes_the_backends_arrays_to_an_npz(model_file, backend, mode, capsys):
    ir, x, tmp = model_file
    assert _cli("simulate", tmp / "model.onnx", "--backend", backend, "--input", tmp / "x.npy",
                "--out", tmp / "y.npz") == 0
    assert "wrote" in capsys.readouterr().out
    with np.load(tmp / "y.npz") as saved:
        want = run(ir, x, mode=mode)
        assert sorted(saved.files) == sorted(want)
        assert all(np.array_equal(saved[k], want[k]) and saved[k].dtype == want[k].dtype for k in want)


def test_simulate_records_only_the_nodes_asked_for(model_file):
    _, _, tmp = model_file
    assert _cli("simulate", tmp / "model.onnx", "--input", tmp / "x.npy", "--out", tmp / "y.npz",
                "--record", "output", "layers.0/s") == 0
    with np.load(tmp / "y.npz") as saved:
        assert sorted(saved.files) == ["layers.0/s", "output/s", "output/u", "output/v"]


@pytest.mark.parametrize("content, match", [
    (None, "no such input file"),
    (b"not numpy", "not a readable .npy file"),
    (np.zeros((2, 3, 4, 1)), r"expected \(B, T, N\) or \(T, N\)"),
    (np.zeros((3, 7)), "expects N=4 channels, got N=7"),
])
def test_simulate_input_errors_are_one_line_and_leave_no_output(model_file, content, match, capsys):
    _, _, tmp = model_file
    path = tmp / "bad.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    assert _cli("simulate", tmp / "model.onnx", "--input", path, "--out", tmp / "y.npz") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(match, err)
    assert not (tmp / "y.npz").exists() and not list(tmp.glob(".y.*"))


def test_simulate_refuses_an_unknown_backend_and_a_non_npy_input(model_file):
    from toolchain.simulate import load_input, simulate

    ir, x, tmp = model_file
    with pytest.raises(SpikeportError, match="backend='gpu' is not one of emulator, float, lava, lava-float"):
        simulate(ir, x, "gpu")
    with pytest.raises(SpikeportError, match="must be a .npy file"):
        load_input(tmp / "x.csv")


def test_simulate_emit_hw_needs_the_lava_backend(model_file, capsys):
    _, _, tmp = model_file
    assert _cli("simulate", tmp / "model.onnx", "--input", tmp / "x.npy", "--out", tmp / "y.npz",
                "--emit-hw", tmp / "run.py") == 2
    assert "--emit-hw needs --backend lava" in capsys.readouterr().err
