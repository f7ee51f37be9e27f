"""The emulator's fast paths compute exactly the reference's integers (and Lava's).

Reference: the block scheduler with numpy LIF populations and matrix products
(`backends.emulator.paths.forced(network="blocks", neuron="numpy", synapse="dense")`).
Fast paths: the compiled LIF block, event-driven synapses (alone and fused into
the LIF block), the whole network as one compiled loop, each also on numba's
threads. Kernels are checked against `models.fixed_point` on extreme values
(int32 wraps, the 2**24 correction of u, saturation of v), networks on random
specs (`strategies`: recurrence, skips, LIFReset, flood inputs, weight styles,
weight_exp) and, for a few, against Lava ``fixed_pt`` itself.
"""
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from backends.emulator import kernels, paths, prepare, run
from backends.emulator.lif import spike_and_reset
from backends.emulator.network import CompiledNetwork
from backends.emulator.nodes import event_driven, fused_event_driven
from backends.recording import pack_spikes, unpack_spikes
from models import fixed_point as fx
from strategies import NetSpec, build, net_specs, random_spec
from toolchain import ir as irm

PROPERTY = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
REFERENCE = dict(network="blocks", neuron="numpy", synapse="dense")
FAST = [dict(network="blocks", neuron="compiled", synapse="event"),  # every block event-driven, fused
        dict(network="blocks", neuron="compiled", synapse="dense"),  # compiled LIF on matrix products
        dict(network="blocks"),  # the scheduler choosing per block
        dict(network="compiled")]  # the whole network in one loop where it applies


def _assert_same(ref: dict, out: dict, what: str) -> None:
    assert sorted(ref) == sorted(out), what
    for key in ref:
        assert out[key].dtype == ref[key].dtype, (what, key)
        if not np.array_equal(out[key], ref[key]):
            b, t, j = np.argwhere(out[key] != ref[key])[0]
            raise AssertionError(f"{what}: {key} differs first at sample {b}, step {t + 1}, neuron {j}: "
                                 f"{out[key][b, t, j]} vs reference {ref[key][b, t, j]}")


def _all_paths_equal(ir, x) -> None:
    with paths.forced(**REFERENCE):
        ref = run(ir, x, check=False)
    for fast in FAST:
        with paths.forced(**fast):
            _assert_same(ref, run(ir, x, check=False), str(fast))


# ------------------------------------------------------------------- kernels
def _extreme_state(rng, shape):
    """Integers around every boundary of the LIF rule: +-2**23, +-2**24, +-2**31 and beyond."""
    edges = np.array([0, 1, -1, fx.U_MAX, fx.U_MAX + 1, -fx.U_MAX, -fx.U_MAX + 1, fx.V_SAT, -fx.V_SAT,
                      1 << 24, -(1 << 24), fx.INT32_MAX, fx.INT32_MIN, 3 << 29, -(3 << 29)], dtype=np.float64)
    near = rng.choice(edges, shape) + rng.integers(-70, 71, shape)
    wide = rng.integers(-(1 << 31), 1 << 31, shape).astype(np.float64)
    return np.where(rng.random(shape) < 0.5, near, wide)


@pytest.mark.parametrize("du, dv", [(0, 0), (4095, 4095), (-1, 0), (818, 205), (3000, 17)])
def test_compiled_lif_block_equals_the_fixed_point_rule_at_every_boundary(du, dv):
    rng = np.random.default_rng(du + 1 + 7 * dv)
    k, batch, n = 6, 3, 700  # more than one CHUNK of neurons per row
    u0, v0 = _extreme_state(rng, (batch, n)), _extreme_state(rng, (batch, n))
    u0, v0 = fx.wrap_int32(u0), fx.wrap_int32(v0)  # Lava's int32 state
    a = np.where(rng.random((k, batch, n)) < 0.3, _extreme_state(rng, (k, batch, n)) / 64 // 1,
                 rng.integers(-3000, 3000, (k, batch, n)))
    bias = rng.integers(-(1 << 15), 1 << 15, n).astype(np.float64)
    theta, resets = 1000.0 * 64, np.array([False, False, True, False, False, True])
    u, v = u0.copy(), v0.copy()
    S, U, V = np.empty((k, batch, n), bool), np.empty((k, batch, n)), np.empty((k, batch, n))
    kernels.lif_fixed_block(u, v, a, fx.current_factor(du) / 4096, fx.voltage_factor(dv) / 4096, bias, theta,
                            resets, S, U, V, True)
    ru, rv = u0, v0
    for i in range(k):
        if resets[i]:
            ru, rv = np.zeros_like(ru), np.zeros_like(rv)
        ru, rv = fx.lif_fixed_subthreshold(ru, rv, a[i], du, dv, bias)
        s = np.empty(rv.shape, bool)
        rv = rv.copy()
        spike_and_reset(rv, theta, s)
        assert np.array_equal(S[i], s) and np.array_equal(U[i], ru) and np.array_equal(V[i], rv), f"step {i}"
    assert np.array_equal(u, ru) and np.array_equal(v, rv)
    assert (np.abs(a * 64) > fx.INT32_MAX).any()  # the wrapping rows were exercised


def test_the_integer_decay_rounds_toward_zero_exactly_as_the_float64_rule_at_every_boundary():
    """``(x * f + (4095 if negative)) >> 12`` in int64 equals ``trunc(x * (f / 4096))`` for every
    int32 x and factor 0..4096: around 0, the multiples of 4096, +-2**23, +-2**24, +-2**31."""
    edges = [0, 4096, 1 << 20, fx.U_MAX, 1 << 24, fx.INT32_MAX]
    xs = sorted({max(fx.INT32_MIN, min(fx.INT32_MAX, sign * e + d)) for e in edges for sign in (1, -1)
                 for d in range(-4097, 4098, 97)} | {fx.INT32_MIN, fx.INT32_MIN + 1, -1, 1})
    for factor in (0, 1, 2, 2047, 3277, 4095, 4096):
        expected = fx.decay(np.array(xs, np.float64), factor)
        got = np.array([kernels.decay_int(np.int32(x), factor) for x in xs], np.float64)
        assert np.array_equal(got, expected), factor
    assert kernels.decay_int(np.int32(-1), 4095) == 0 and kernels.decay_int(np.int32(-4097), 4095) == -4095  # not floor's -4096


@pytest.mark.parametrize("du, dv", [(0, 0), (4095, 4095), (-1, 0), (818, 205), (3000, 17)])
def test_the_integer_lif_step_equals_the_fixed_point_rule_at_every_boundary(du, dv):
    """The whole-network loop's LIF step (int32 state, int32 wrapped input) against
    `models.fixed_point` on states and inputs at +-2**23, +-2**24, +-2**31 (every wrap fires)."""
    rng = np.random.default_rng(du + 3 + 11 * dv)
    steps, n = 6, 2000
    u, v = (fx.wrap_int32(_extreme_state(rng, n)).astype(np.int32) for _ in range(2))
    bias = rng.integers(-(1 << 19), 1 << 19, n).astype(np.int32)
    theta, spiked = 1000 * 64, np.empty(n, bool)
    ru, rv = u.astype(np.float64), v.astype(np.float64)
    for i in range(steps):
        a = fx.wrap_int32(_extreme_state(rng, n)).astype(np.int32)
        kernels.lif_int(u, v, a, bias, np.int32(fx.current_factor(du)), np.int32(fx.voltage_factor(dv)), theta,
                        spiked, np.empty(0, np.int32))
        ru, rv = fx.lif_fixed_subthreshold(ru, rv, a.astype(np.float64), du, dv, bias.astype(np.float64))
        s = np.empty(n, bool)
        spike_and_reset(rv, theta, s)
        assert np.array_equal(spiked, s) and np.array_equal(u, ru) and np.array_equal(v, rv), f"step {i + 1}"
    assert (np.abs(a.astype(np.float64) * 64) > fx.INT32_MAX).any() and spiked.any() and not spiked.all()


@pytest.mark.parametrize("weight_exp", [-3, 0, 2, 7])
def test_event_sums_equal_the_matrix_product_shifted_as_lava_shifts(weight_exp):
    rng = np.random.default_rng(weight_exp + 10)
    rows, n_in, n_out = 40, 300, 70
    spikes = rng.random((rows, n_in)) < rng.choice([0.0, 0.02, 0.5, 1.0], (rows, 1))
    max_w = 1 << 20 if weight_exp == 7 else 255  # large enough sums for the int32 wrap after the shift
    wt = rng.integers(-max_w, max_w + 1, (n_in, n_out)).astype(np.float64)
    expected = fx.shift_by_weight_exp(spikes.astype(np.float64) @ wt, weight_exp)
    for most in (int(spikes.sum(1).max()), n_in):
        acc = np.empty(n_out, kernels.accumulator_dtype(max_w, most))
        out = np.empty((rows, n_out))
        kernels.event_sums(spikes, kernels.integer_weights(wt), acc, 2.0 ** weight_exp, weight_exp < 0, True, out)
        assert np.array_equal(out, expected)
    assert (np.abs(spikes.astype(np.float64) @ wt * 2.0 ** weight_exp) > fx.INT32_MAX).any() == (weight_exp == 7)


@pytest.mark.parametrize("sign_mode", [None, fx.SignMode.MIXED, fx.SignMode.EXCITATORY, fx.SignMode.INHIBITORY])
@pytest.mark.parametrize("num_weight_bits", range(1, 9))
def test_compiled_weight_quantisation_gives_lava_weights_of_the_int32_storage_transposed_and_narrowest(
        sign_mode, num_weight_bits):
    """`kernels.lava_weights` is `fx.lava_weights` of the weights stored as int32 (wrapping), for
    every sign mode and bit count, on values around every clip bound and beyond int32."""
    rng = np.random.default_rng(num_weight_bits)
    edges = np.array([0, 1, -1, 127, 128, -128, -129, 254, 255, 256, -255, -256, -257, fx.INT32_MAX,
                      fx.INT32_MIN, 1 << 31, (1 << 32) + 3, -(1 << 32) - 200, (1 << 40) - 1])
    w = np.concatenate([edges, rng.integers(-300, 301, 181)]).reshape(20, 10)
    if sign_mode == fx.SignMode.EXCITATORY:
        w = np.abs(w)
    elif sign_mode == fx.SignMode.INHIBITORY:
        w = -np.abs(w)
    want = fx.lava_weights(w.astype(np.int32), num_weight_bits, sign_mode)
    got = kernels.lava_weights(w, num_weight_bits, sign_mode)
    assert np.array_equal(got, want) and got.T.flags.c_contiguous
    assert got.dtype == (np.int8 if np.abs(want).max() <= 127 else np.int16)
    assert kernels.lava_weights(np.array([[-100, 100]]), 8, fx.SignMode.MIXED).dtype == np.int8


def test_the_accumulator_is_the_narrowest_dtype_that_holds_every_partial_sum():
    assert kernels.accumulator_dtype(66, 40) is np.int16
    assert kernels.accumulator_dtype(255, 129) is np.int32  # 32895 > int16
    assert kernels.accumulator_dtype(255, 1 << 24) is np.int64
    assert kernels.integer_weights(np.array([[-127.0, 127.0]])).dtype == np.int8
    assert kernels.integer_weights(np.array([[-256.0, 0.0]])).dtype == np.int16



@pytest.mark.parametrize("pair", ["_LIF_BLOCK", "_EVENT_LIF_BLOCK", "_NETWORK_RUN"])
def test_the_serial_and_parallel_compilations_of_a_kernel_keep_separate_disk_caches(pair):
    """numba names a cache after the function alone: a shared one made the parallel kernel load
    the serial code (one thread, twice the time) after `make install`'s warm-up."""
    serial, parallel = getattr(kernels, pair)
    assert not serial.targetoptions.get("parallel") and parallel.targetoptions.get("parallel")
    assert serial._cache._cache_file._index_path != parallel._cache._cache_file._index_path

def test_the_event_path_is_chosen_for_a_wide_layer_and_the_product_for_a_narrow_busy_one():
    rows, n_in, n_out = 32, 1000, 10_000
    assert event_driven(int(0.02 * rows * n_in), rows, n_in, n_out)
    assert event_driven(int(0.6 * rows * n_in), rows, n_in, n_out)  # adding a row costs less than its products
    assert not event_driven(int(0.6 * rows * n_in), rows, n_in, 4)  # scanning the sources costs more than 4 outputs
    with paths.forced(synapse="event"):
        assert event_driven(rows * n_in, rows, n_in, n_out)
    with paths.forced(synapse="dense"):
        assert not event_driven(1, rows, n_in, n_out)


def test_a_fused_block_takes_events_at_any_activity_on_a_wide_layer_and_products_on_a_narrow_one():
    rows, n_in = 32, 1000
    assert fused_event_driven(rows * n_in, rows, n_in, 10_000)  # every source spikes: still the rows
    assert fused_event_driven(int(0.02 * rows * n_in), rows, n_in, 10_000)
    assert not fused_event_driven(int(0.3 * rows * n_in), rows, n_in, 4)  # a row start costs more than 4 products
    with paths.forced(synapse="dense"):
        assert not fused_event_driven(1, rows, n_in, 10_000)


def test_forced_refuses_an_unknown_path():
    with pytest.raises(ValueError, match="synapse='sparse'"):
        with paths.forced(synapse="sparse"):
            pass


# ------------------------------------------------------------------ networks
@settings(max_examples=25, **PROPERTY)
@given(spec=net_specs(max_batch=4))
def test_every_fast_path_equals_the_reference_on_random_networks(spec):
    _all_paths_equal(*build(spec))


@pytest.mark.parametrize("seed", range(12))
def test_networks_the_compiled_loop_runs_equal_the_reference(seed):
    """Binary inputs, no delays: the specs `CompiledNetwork` takes (recurrence, skips, LIFReset, floods)."""
    spec = random_spec(np.random.default_rng(seed), graded=False, max_delay=())
    ir, x = build(spec)
    assert CompiledNetwork.of(prepare(ir, check=False)) is not None
    _all_paths_equal(ir, x)


def test_the_compiled_loop_sums_inputs_beyond_int32_as_lava_wraps_them():
    """Four synapses of 255 << 7 from 20,000 always-spiking inputs into one population: each
    output fits int32, their sum (2.6e9) does not, nor does its ``<< 6``; the loop sums in int32
    (only the sum modulo 2**26 reaches u) and records what the reference records."""
    n_in, n = 20_000, 3
    ir = irm.IR("wide-sum")
    ir.add("input", irm.Input(n_in))
    w = np.full((n, n_in), 254)
    w[1] = -254
    for q in range(4):
        ir.add(f"dense{q}", irm.Dense(weight=w * 128.0, fixed=irm.SynapseFixed(w, weight_exp=7)), ["input"])
    zeros = np.zeros(n, dtype=np.int64)
    ir.add("lif", irm.LIF(n, du=0.5, dv=0.5, vth=64000.0,
                          fixed=irm.LIFFixed(du=2047, dv=2048, vth=1000, bias_mant=zeros, bias_exp=zeros,
                                             u=zeros, v=zeros)), [f"dense{q}" for q in range(4)])
    x = np.ones((2, 4, n_in), np.int8)
    assert CompiledNetwork.of(prepare(ir, check=False)) is not None
    _all_paths_equal(ir, x)


def test_the_threaded_kernels_equal_the_serial_ones(monkeypatch):
    monkeypatch.setattr(kernels, "PARALLEL_WORK", 0)
    for seed in range(4):
        ir, x = build(random_spec(np.random.default_rng(100 + seed), graded=False, max_delay=(), batch=5))
        _all_paths_equal(ir, x)


def test_networks_outside_the_compiled_loop_run_on_the_block_scheduler():
    graded, _ = build(NetSpec(seed=1, graded=True))
    delayed, _ = build(NetSpec(seed=1, max_delay=(3,)))
    plain, _ = build(NetSpec(seed=1))
    assert CompiledNetwork.of(prepare(graded, check=False)) is None
    assert CompiledNetwork.of(prepare(delayed, check=False)) is None
    assert CompiledNetwork.of(prepare(plain, check=False)) is not None
    assert CompiledNetwork.of(prepare(plain, mode="float", check=False)) is None
    with paths.forced(network="blocks"):
        assert CompiledNetwork.of(prepare(plain, check=False)) is None


def test_a_sparse_wide_layer_runs_event_driven_and_equals_the_product_path(monkeypatch):
    """1000 inputs -> 3000 LIF at 2% input spikes (the scale benchmark's shape, smaller): the
    scheduler takes the fused event path in every block and records exactly what matrix
    products give."""
    spec = NetSpec(seed=3, n_in=1000, layers=(3000,), batch=3, steps=25, density=0.02, weights="mixed")
    ir, x = build(spec)
    with paths.forced(**REFERENCE):
        ref = run(ir, x, check=False)
    program = prepare(ir, check=False)
    assert CompiledNetwork.of(program) is None  # 3M weights: the block scheduler
    calls = []
    fused = kernels.event_lif_block
    monkeypatch.setattr(kernels, "event_lif_block", lambda *args: calls.append(args[-7].shape[0]) or fused(*args))  # resets: k
    _assert_same(ref, program.run(x), "default")
    assert sum(calls) == spec.steps  # every step's block took the event path
    assert ref["layers.0/s"].any()


def test_an_event_fed_layer_hands_its_spikes_to_the_next_synapse_and_one_read_only_by_an_output_records_them(
        monkeypatch):
    """Two wide layers at sparse activity, both event-driven: the first's block spikes feed the
    second's synapse (written), the second is read only by its Output (its block spikes are not
    written: the recording alone holds them); both record what matrix products give."""
    spec = NetSpec(seed=4, n_in=1000, layers=(3000, 2000), batch=2, steps=20, density=0.02, weights="mixed")
    ir, x = build(spec)
    with paths.forced(**REFERENCE):
        ref = run(ir, x, check=False)
    block_spikes = {}
    fused = kernels.event_lif_block
    monkeypatch.setattr(kernels, "event_lif_block",
                        lambda *args: block_spikes.setdefault(args[4].shape[1], set()).add(args[-6].size > 0)
                        or fused(*args))  # u: (B, n); S: the block's spikes, or size 0
    _assert_same(ref, prepare(ir, check=False).run(x), "default")
    assert block_spikes == {3000: {True}, 2000: {False}}
    assert ref["layers.0/s"].any() and ref["layers.1/s"].any()


@pytest.mark.parametrize("spec", [
    NetSpec(seed=3, n_in=1000, layers=(1030,), batch=3, steps=25, density=0.02, weights="mixed"),  # event-fed:
    NetSpec(seed=1, n_in=20, layers=(13, 5), batch=2, steps=30, density=0.2, weights="mixed")],  # a partial tile
    ids=["wide layer", "small network"])  # and byte; the compiled network, populations of 13 and 5 neurons
def test_packed_spikes_are_the_recorded_spikes_eight_to_a_byte_on_every_path(spec):
    """``packed=True`` records each step's spikes as bits (neuron j: bit j % 8 of byte j // 8), the
    reference's spikes exactly, on every path; u and v are recorded as ever."""
    ir, x = build(spec)
    with paths.forced(**REFERENCE):
        ref = run(ir, x, check=False)
    want = {key: pack_spikes(a) if key.endswith("/s") else a for key, a in ref.items()}
    for path in [REFERENCE, *FAST]:
        with paths.forced(**path):
            got = run(ir, x, check=False, packed=True)
        _assert_same(want, got, f"packed, {path}")
    assert all(got[key].shape[-1] == -(-ref[key].shape[-1] // 8) for key in ref if key.endswith("/s"))
    assert all(np.array_equal(unpack_spikes(got[k], ref[k].shape[-1]), ref[k]) for k in ref if k.endswith("/s"))


@pytest.mark.lava
@pytest.mark.parametrize("seed", [0, 5])
def test_the_fast_paths_equal_lava_fixed_pt(seed):
    from backends.lava.runner import run_lava

    spec = random_spec(np.random.default_rng(seed), graded=False, max_delay=(), batch=2)
    ir, x = build(spec)
    lava = run_lava(ir, x, mode="fixed", check=False)
    for fast in FAST:
        with paths.forced(**fast):
            _assert_same(lava, run(ir, x, check=False), f"{fast} vs Lava")


def test_a_small_one_off_run_skips_loading_the_kernels_and_a_repeated_or_large_one_loads_them():
    """Loading numba's code costs about a second once per process: a first small run stays on the
    reference paths, a program's second run (or a run of WARM_UP_WORK neuron-steps) loads it."""
    from fresh_interpreter import run_isolated

    script = (
        "import sys; import numpy as np; sys.path.insert(0, 'tests')\n"
        "from strategies import NetSpec, build\n"
        "from backends.emulator import paths, prepare\n"
        "ir, x = build(NetSpec(seed=2))\n"
        "program = prepare(ir, check=False)\n"
        "first = program.run(x); print('kernels' in dir(sys.modules['backends.emulator']), 'numba' in sys.modules)\n"
        "second = program.run(x); print(paths.KERNELS in sys.modules)\n"
        "print(all(np.array_equal(first[k], second[k]) for k in first))\n")
    code, out, err = run_isolated([sys.executable, "-c", script], timeout=300)
    assert code == 0, err
    assert out.split() == ["False", "False", "True", "True"]
