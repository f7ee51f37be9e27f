"""The emulator, without Lava: hand-computed probes of every fixed-point rule, the float
equations, block-size invariance, outputs and errors.

Expected values are computed by hand from the rules in docs/fixed-point.md (LIF,
Dense, and probes that were confirmed on Lava). Steps are 1-based in the
text and 0-based as array indices: index i is step i + 1.
"""
import re

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import emulator
from backends.emulator import engine, memory, nodes, run
from models import fixed_point as fx
from models.errors import SpikeportError
from strategies import NetSpec, build, net_specs
from toolchain import ir as irm

MIXED, EXC, INH = int(fx.SignMode.MIXED), int(fx.SignMode.EXCITATORY), int(fx.SignMode.INHIBITORY)


# --------------------------------------------------------------------- helpers
def lif(n=1, du=-1, dv=0, vth=(1 << 17) - 1, bias_mant=0, bias_exp=0, u=0, v=0, reset=None):
    """A LIF (or LIFReset) with fixed parameters; float parameters in the same units."""
    full = lambda a: np.broadcast_to(np.asarray(a, dtype=np.int64), (n,))  # noqa: E731
    fixed = irm.LIFFixed(du=du, dv=dv, vth=vth, bias_mant=full(bias_mant), bias_exp=full(bias_exp),
                         u=full(u), v=full(v))
    kw = dict(du=(du + 1) / 4096, dv=dv / 4096, vth=vth * 64.0,
              bias=fx.effective_bias(full(bias_mant).astype(float), full(bias_exp)), fixed=fixed)
    if reset is None:
        return irm.LIF(n, **kw)
    return irm.LIFReset(n, reset_interval=reset[0], reset_offset=reset[1], **kw)


def dense(weights, weight_exp=0, bits=0, sign_mode=0, num_weight_bits=8, delay=None, cls=irm.Dense):
    w = np.atleast_2d(np.asarray(weights, dtype=np.int64))
    fixed = irm.SynapseFixed(w, weight_exp=weight_exp, num_weight_bits=num_weight_bits, sign_mode=sign_mode)
    kw = {} if delay is None else dict(delay=np.asarray(delay))
    return cls(w * 2.0 ** weight_exp, num_message_bits=bits, fixed=fixed, **kw)


def single(neuron=None, weights=((1,),), graded=False, **syn):
    """Input -> Dense -> LIF ("n") -> Output ("out")."""
    neuron = neuron or lif()
    w = np.atleast_2d(weights)
    ir = irm.IR("probe")
    ir.add("in", irm.Input(w.shape[1], num_message_bits=16 if graded else 0))
    ir.add("syn", dense(w, bits=16 if graded else 0, **syn), ["in"])
    ir.add("n", neuron, ["syn"])
    ir.add("out", irm.Output(neuron.n), ["n"])
    return ir


def impulse(steps, n_in=1, at=0, value=1):
    x = np.zeros((steps, n_in), dtype=np.int64)
    x[at] = value
    return x


def trace(ir, x, key="n", mode="fixed"):
    out = run(ir, x, mode=mode)
    return {f: out[f"{key}/{f}"][0, :, 0].tolist() for f in "svu"}


# ------------------------------------------------------ §1 LIF (fixed point)
def test_du_zero_still_decays_by_one_4096th_rounding_toward_zero_for_both_signs():
    assert trace(single(lif(du=0), [[100]]), impulse(5))["u"] == [0, 6400, 6398, 6396, 6394]
    assert trace(single(lif(du=0), [[-100]]), impulse(5))["u"] == [0, -6400, -6398, -6396, -6394]


def test_du_minus_one_holds_u_and_du_4095_keeps_only_this_steps_input():
    assert trace(single(lif(du=-1), [[100]]), impulse(4))["u"] == [0, 6400, 6400, 6400]
    assert trace(single(lif(du=4095), [[100]]), impulse(4))["u"] == [0, 6400, 0, 0]


def test_parameters_outside_the_declared_ranges_act_as_in_lava():
    # du = 4096 gives the factor -1: u flips sign; dv = 5000 gives -904: v oscillates
    assert trace(single(lif(du=4096, u=64000)), np.zeros((2, 1)))["u"] == [-15, 0]
    assert trace(single(lif(dv=5000, v=64000)), np.zeros((3, 1)))["v"] == [-14125, 3117, -687]


@pytest.mark.parametrize("a_in, u", [
    (1 << 17, 1 << 23),  # exactly +2**23 is kept
    (-(1 << 17), 1 << 23),  # exactly -2**23 comes back as +2**23
    ((1 << 17) + 1, -(1 << 23) + 64),  # just above: one 2**24 correction
    (1 << 19, 1 << 24),  # a << 6 = 2**25: a single correction leaves u = 2**24
    (1 << 26, 0),  # a << 6 wraps in int32 to 0
    (1 << 25, -(1 << 31) + (1 << 24)),  # a << 6 = 2**31 wraps to -2**31, then +2**24
])
def test_u_gets_one_2_pow_24_correction_into_minus_2_pow_23_exclusive_2_pow_23_inclusive(a_in, u):
    # graded input `a_in` through weight 1 (excitatory or inhibitory, nothing dropped)
    ir = single(lif(du=4095), [[1 if a_in > 0 else -1]], graded=True)
    assert trace(ir, impulse(2, value=abs(a_in)))["u"] == [0, u]


def test_the_current_sum_is_int32_before_the_correction():
    """Lava adds ``decay(u) + (a << 6)`` in int32: with |u| > 2**24 the sum wraps.

    Graded 1020 x w=255 (mixed: 254) at weight_exp 7 gives a << 6 = 2122383360 each
    step; values measured on Lava (lava-nc 0.10.0, fixed_pt)."""
    ir = single(lif(du=-1), [[255]], graded=True, weight_exp=7, sign_mode=MIXED)
    got = trace(ir, np.full((6, 1), 1020))
    assert got["u"] == [0, 2105606144, -50200576, 2055405568, -100401152, 2005204992]
    assert got["v"] == [0, 0, -8388607, 0, -8388607, 0]


def test_v_saturates_at_plus_minus_2_pow_23_minus_1():
    sat = (1 << 23) - 1
    got = trace(single(lif(v=sat - 100, bias_mant=1000, vth=1 << 17)), np.zeros((2, 1)))  # vth << 6 > sat
    assert got["v"] == [sat, sat] and got["s"] == [0, 0]
    assert trace(single(lif(v=sat - 100, bias_mant=1000)), np.zeros((1, 1)))["s"] == [1]  # > (2**17-1) << 6
    assert trace(single(lif(v=-sat + 100, bias_mant=-1000)), np.zeros((2, 1)))["v"] == [-sat, -sat]


def test_threshold_is_strict_and_bias_acts_from_step_one():
    got = trace(single(lif(vth=1, bias_mant=30)), np.zeros((5, 1)))
    assert got["v"] == [30, 60, 0, 30, 60] and got["s"] == [0, 0, 1, 0, 0]  # 90 > 64 spikes
    assert trace(single(lif(vth=1, bias_mant=64)), np.zeros((2, 1)))["s"] == [0, 1]  # 64 is not > 64


def test_a_spike_resets_v_but_not_u():
    got = trace(single(lif(vth=1, bias_mant=30, u=7)), np.zeros((4, 1)))
    assert got["u"] == [7, 7, 7, 7] and got["v"] == [37, 0, 37, 0] and got["s"] == [0, 1, 0, 1]


def test_initial_v_above_threshold_spikes_at_step_one():
    assert trace(single(lif(vth=10, v=1000)), np.zeros((2, 1)))["s"] == [1, 0]


def test_bias_exponent_shifts_the_mantissa_and_negative_exponents_floor():
    assert trace(single(lif(bias_mant=-5, bias_exp=-1)), np.zeros((3, 1)))["v"] == [-3, -6, -9]
    assert trace(single(lif(bias_mant=-5, bias_exp=3)), np.zeros((2, 1)))["v"] == [-40, -80]


def test_bias_mantissa_is_stored_as_int16_as_lava_does():
    assert trace(single(lif(bias_mant=40000)), np.zeros((1, 1)))["v"] == [-25536]


def test_lif_reset_zeroes_u_and_v_at_the_start_of_matching_steps_and_still_integrates():
    neuron = lif(du=-1, bias_mant=10, reset=(5, 7))  # offset 7 % 5 = 2: steps 2, 7, 12
    got = trace(single(neuron, [[100]]), np.ones((8, 1)))
    assert got["u"] == [0, 6400, 12800, 19200, 25600, 32000, 6400, 12800]
    assert got["v"] == [10, 6410, 19220, 38430, 64040, 96050, 6410, 19220]


# ---------------------------------------------------------- §2 synapses
@pytest.mark.parametrize("sign_mode, effective", [
    (0, [-50, 254, 6, 254, -256, 2]),  # inferred MIXED: clip to [-256, 255], drop the LSB
    (MIXED, [-50, 254, 6, 254, -256, 2]),
    (EXC, [0, 255, 7, 255, 0, 3]),
    (INH, [-50, 0, 0, 0, -255, 0]),
])
def test_weights_are_clipped_and_lose_lsbs_as_lava_quantises_them(sign_mode, effective):
    ir = single(lif(n=6, du=4095), [[-50], [300], [7], [255], [-300], [3]], sign_mode=sign_mode)
    assert run(ir, impulse(2))["n/u"][0, 1].tolist() == [64 * w for w in effective]


def test_fewer_weight_bits_floor_more_lsbs_and_inhibitory_magnitudes_floor():
    ir = single(lif(n=3, du=4095), [[255], [-255], [37]], num_weight_bits=6)  # mixed: 3 LSBs
    assert run(ir, impulse(2))["n/u"][0, 1].tolist() == [64 * 248, 64 * -256, 64 * 32]
    ir = single(lif(n=2, du=4095), [[-255], [-37]], num_weight_bits=6)  # inhibitory: 2 LSBs
    assert run(ir, impulse(2))["n/u"][0, 1].tolist() == [64 * -252, 64 * -36]


@pytest.mark.parametrize("value, a_in", [(3, 1), (-3, -2), (-1, -1), (1, 0)])
def test_negative_weight_exp_floors_the_summed_activation(value, a_in):
    ir = single(lif(du=4095), [[1]], graded=True, weight_exp=-1, sign_mode=EXC)
    assert trace(ir, impulse(2, value=value))["u"] == [0, 64 * a_in]


def test_weight_exp_applies_to_the_sum_not_to_each_weight():
    ir = single(lif(du=4095), [[1, 1, 1]], weight_exp=-1)  # 3 spikes: floor(3/2) = 1, not 3 * 0
    assert trace(ir, impulse(2, n_in=3))["u"] == [0, 64]
    ir = single(lif(du=4095), [[3]], weight_exp=2)
    assert trace(ir, impulse(2))["u"] == [0, 64 * 12]


def test_any_nonzero_value_on_a_binary_port_is_one_spike():
    x = np.array([[5], [-1], [2], [-7], [0], [1]])
    assert trace(single(lif(du=4095), [[100]]), x)["u"] == [0, 6400, 6400, 6400, 6400, 0]


def test_graded_sums_beyond_float64_precision_are_exact_and_wrap_in_int32():
    """40,000 graded inputs near 2**31 at w=255: the sum exceeds 2**53 (float64 would be off
    by one), Lava's int32 dot wraps it, then a << 6 wraps again and u gets its correction."""
    n = 40_000
    x = np.random.default_rng(0).integers(1 << 30, 1 << 31, (2, n))
    total = 255 * int(sum(int(v) for v in x[0]))
    assert total > 2 ** 53 and float(total) != total
    a_in = (total + 2 ** 31) % 2 ** 32 - 2 ** 31
    scaled = (a_in * 64 + 2 ** 31) % 2 ** 32 - 2 ** 31
    assert (a_in, scaled) == (1173620813, 2097288000)
    ir = single(lif(du=4095), np.full((1, n), 255), graded=True)
    assert trace(ir, x)["u"] == [0, scaled - (1 << 24)]


def test_several_synapses_into_one_population_are_summed():
    ir = irm.IR("sum")
    ir.add("in", irm.Input(2))
    ir.add("a", dense([[100, 0]]), ["in"])
    ir.add("b", dense([[0, -30]]), ["in"])
    ir.add("n", lif(du=4095), ["a", "b"])
    assert trace(ir, np.array([[1, 1], [1, 0], [0, 1]]))["u"] == [0, 64 * 70, 64 * 100]


def test_a_synapse_feeding_two_populations_delivers_to_both_and_one_feeding_none_is_ignored():
    ir = irm.IR("fan-out")
    ir.add("in", irm.Input(1))
    ir.add("syn", dense([[100]]), ["in"])
    ir.add("a", lif(du=4095), ["syn"])
    ir.add("b", lif(du=0), ["syn"])
    ir.add("dangling", dense([[7]]), ["a"])
    out = run(ir, impulse(4))
    assert out["a/u"][0, :, 0].tolist() == [0, 6400, 0, 0] and out["b/u"][0, :, 0].tolist() == [0, 6400, 6398, 6396]


def test_a_recurrent_synapse_that_also_feeds_a_population_outside_the_loop_is_refused():
    ir = irm.IR("loop")
    ir.add("in", irm.Input(1))
    ir.add("d", dense([[100]]), ["in"])
    ir.add("a", lif(), ["d"])
    ir.add("rec", dense([[50]]), ["a"])
    ir.connect("rec", "a")
    ir.add("b", lif(), ["rec"])
    with pytest.raises(SpikeportError, match=r"rec: a synapse in a recurrent loop also feeds \['b'\]"):
        run(ir, impulse(3))


def test_sparse_is_dense():
    x = (np.random.default_rng(0).random((2, 12, 4)) < 0.5)
    w = np.random.default_rng(1).integers(-200, 200, (3, 4)) * (np.arange(12).reshape(3, 4) % 3 > 0)
    outs = [run(single(lif(n=3, du=100, vth=50), w, cls=cls), x) for cls in (irm.Dense, irm.Sparse)]
    assert all(np.array_equal(outs[0][k], outs[1][k]) for k in outs[0])


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
    ir, x = build(spec)
    whole = run(ir, x)
    saved = engine.BLOCK_BYTES
    engine.BLOCK_BYTES = steps * engine.step_bytes(ir, x.shape[0])
    try:
        blocked = run(ir, x)
    finally:
        engine.BLOCK_BYTES = saved
    for key in whole:
        assert np.array_equal(whole[key], blocked[key]), key


@settings(max_examples=15, deadline=None, derandomize=True)
@given(spec=net_specs(max_steps=20))
def test_a_prepared_program_runs_batch_after_batch_as_run_does(spec):
    ir, x = build(spec)
    for mode in ("fixed", "float"):
        program = emulator.prepare(ir, mode)
        for batch in (x, x[:, ::-1], x[::-1]):  # one program, several inputs: no state leaks between runs
            fresh, again = run(ir, batch, mode=mode), program.run(batch)
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
    ir, x = build(spec)
    saved = nodes.DENSE_MAC
    try:
        results = []
        for cost in (0.0, 1e9):  # never / always through a csr matrix
            nodes.DENSE_MAC = cost
            results.append([run(ir, x, mode=mode) for mode in ("fixed", "float")])
    finally:
        nodes.DENSE_MAC = saved
    for dense, sparse in zip(*results):
        assert all(np.array_equal(dense[key], sparse[key]) for key in dense)


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
