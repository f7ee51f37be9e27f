"""The emulator's fixed-point arithmetic, without Lava: hand-computed probes of every LIF and
synapse rule (decays, wraps, saturation, threshold, bias, reset, weight quantisation,
weight_exp, binary and graded messages).

Expected values are computed by hand from the rules in docs/fixed-point.md (LIF,
Dense, and probes that were confirmed on Lava). Steps are 1-based in the
text and 0-based as array indices: index i is step i + 1.
"""
import numpy as np
import pytest

from backends.emulator import run
from models import fixed_point as fx
from models.errors import SpikeportError
from probes import EXC, INH, MIXED, dense, impulse, lif, single, trace
from toolchain import ir as irm


# ------------------------------------------------------ §1 LIF (fixed point)
def test_du_zero_still_decays_by_one_4096th_rounding_toward_zero_for_both_signs():
    assert trace(single(lif(du=0), [[100]]), impulse(5))["u"] == [0, 6400, 6398, 6396, 6394]
    assert trace(single(lif(du=0), [[-100]]), impulse(5))["u"] == [0, -6400, -6398, -6396, -6394]


def test_du_minus_one_holds_u_and_du_4095_keeps_only_this_steps_input():
    assert trace(single(lif(du=-1), [[100]]), impulse(4))["u"] == [0, 6400, 6400, 6400]
    assert trace(single(lif(du=4095), [[100]]), impulse(4))["u"] == [0, 6400, 0, 0]


def test_parameters_outside_the_declared_ranges_act_as_in_lava():
    # du = 4096 gives the factor -1: u flips sign; dv = 5000 gives -904: v oscillates
    # (check=False: values validation refuses, run only to probe Lava's arithmetic)
    assert trace(single(lif(du=4096, u=64000)), np.zeros((2, 1)), check=False)["u"] == [-15, 0]
    assert trace(single(lif(dv=5000, v=64000)), np.zeros((3, 1)), check=False)["v"] == [-14125, 3117, -687]


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
    got = trace(single(lif(v=sat - 100, bias_mant=1000, vth=1 << 17)), np.zeros((2, 1)),  # vth << 6 > sat
                check=False)  # vth = 2**17 is outside Loihi's 17 bits: a probe of Lava's arithmetic
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
    # bias_exp = -1 is outside Loihi's 3 bits: check=False probes Lava's arithmetic
    assert trace(single(lif(bias_mant=-5, bias_exp=-1)), np.zeros((3, 1)), check=False)["v"] == [-3, -6, -9]
    assert trace(single(lif(bias_mant=-5, bias_exp=3)), np.zeros((2, 1)))["v"] == [-40, -80]


def test_bias_mantissa_is_stored_as_int16_as_lava_does():
    # 40000 is outside Loihi's 13 bits: check=False probes Lava's int16 storage
    assert trace(single(lif(bias_mant=40000)), np.zeros((1, 1)), check=False)["v"] == [-25536]


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
    # +-300 are outside the 8-bit mantissas: check=False probes how Lava clips them
    assert run(ir, impulse(2), check=False)["n/u"][0, 1].tolist() == [64 * w for w in effective]


def test_fewer_weight_bits_floor_more_lsbs_and_inhibitory_magnitudes_floor():
    ir = single(lif(n=3, du=4095), [[255], [-255], [37]], num_weight_bits=6)  # mixed: 3 LSBs
    assert run(ir, impulse(2))["n/u"][0, 1].tolist() == [64 * 248, 64 * -256, 64 * 32]
    ir = single(lif(n=2, du=4095), [[-255], [-37]], num_weight_bits=6)  # inhibitory: 2 LSBs
    assert run(ir, impulse(2))["n/u"][0, 1].tolist() == [64 * -252, 64 * -36]



@pytest.mark.parametrize("sign_mode", [None, MIXED, EXC, INH])
@pytest.mark.parametrize("num_weight_bits", [1, 5, 8])
def test_integer_weights_quantise_to_the_same_integers_as_the_float_rule(sign_mode, num_weight_bits):
    """The emulator quantises stored int32 weights by integer clip and shifts; the float
    rule (floor of the quotient, on the magnitude for inhibitory) is the definition."""
    rng = np.random.default_rng(num_weight_bits)
    w = rng.integers(-400, 400, size=(40, 50)).astype(np.int32)
    if sign_mode == EXC:
        w = np.abs(w)
    elif sign_mode == INH:
        w = -np.abs(w)
    got = fx.lava_weights(w, num_weight_bits, sign_mode)
    assert got.dtype == np.int32
    assert np.array_equal(got, fx.lava_weights(w.astype(np.float64), num_weight_bits, sign_mode))

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
