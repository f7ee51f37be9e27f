"""The emulator against Lava itself: fixed == ``fixed_pt`` and float == ``floating_pt``, exactly.

Random networks from `strategies` (every rule of docs/fixed-point.md: delays,
recurrence, graded inputs, summed synapses, LIFReset, extreme and
LSB-dropping weights, odd decays, biases, initial state, u wraps and v
saturation) run on lava-nc 0.10.0 (`backends.lava.runner.run_lava`, which
runs a whole batch in one Lava network) and on the emulator; s, v (post-reset)
and u must be identical for every node, sample and step. Lava costs about
half a second to compile and a few seconds per call here, so each property
draws few, deterministic examples (``derandomize``), each a list of networks
that `run_lava_many` runs in one Lava child process (every network still its
own Lava network, compiled and run in turn): the child's start-up is paid once
an example, not once a network.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.emulator import run
from models import fixed_point as fx
from strategies import NetSpec, build, net_specs
from toolchain import ir as irm

pytestmark = pytest.mark.lava

PROPERTY = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def _lava(ir, x, mode, check=True):
    from backends.lava.runner import run_lava

    return run_lava(ir, x, mode=mode, check=check)


def _assert_identical(ir, x, mode, check=True, lava=None):
    """``check=False``: a generated network whose weights Lava clips on purpose (an arithmetic probe).
    ``lava``: Lava's outputs for this network when already run (`_assert_all_identical`)."""
    emulated = run(ir, x, mode=mode, check=check)
    lava = _lava(ir, x, mode, check) if lava is None else lava
    assert sorted(emulated) == sorted(lava)
    for key in emulated:
        assert emulated[key].dtype == lava[key].dtype, key
        if not np.array_equal(emulated[key], lava[key]):
            sample, step, neuron = np.argwhere(emulated[key] != lava[key])[0]
            raise AssertionError(f"{ir.name} {mode}: {key} first differs at sample {sample}, step {step + 1}, "
                                 f"neuron {neuron}: emulator {emulated[key][sample, step, neuron]}, "
                                 f"Lava {lava[key][sample, step, neuron]}")
    return emulated


def _assert_all_identical(specs, mode):
    """Every network of ``specs`` on the emulator and on Lava (all in one Lava child), bit for bit;
    a spec drawn twice (hypothesis's simplest example repeats) is one network, run once."""
    from backends.lava.runner import run_lava_many

    specs = list(dict.fromkeys(specs))
    runs = [build(spec) for spec in specs]
    for i, ((ir, x), lava) in enumerate(zip(runs, run_lava_many(runs, mode=mode, check=False))):
        try:
            _assert_identical(ir, x, mode, check=False, lava=lava)
        except AssertionError as failure:
            raise AssertionError(f"network {i + 1} of {len(runs)} ({specs[i]}): {failure}") from None


# 4 examples of 4 networks: 16 networks (the first example is hypothesis's simplest), 4 Lava children
@settings(max_examples=4, **PROPERTY)
@given(specs=st.lists(net_specs(max_batch=6), min_size=4, max_size=4))
def test_fixed_emulator_equals_lava_fixed_pt_bit_for_bit(specs):
    _assert_all_identical(specs, "fixed")


# 3 examples of 3 networks: 9 networks, 3 Lava children
@settings(max_examples=3, **PROPERTY)
@given(specs=st.lists(net_specs(max_batch=6), min_size=3, max_size=3))
def test_float_emulator_equals_lava_floating_pt_exactly(specs):
    _assert_all_identical(specs, "float")


def test_edges_u_boundaries_int32_wraps_and_v_saturation_equal_lava():
    """One network, one Lava run: each neuron of ``edge`` gets one graded a_in per step, through
    an excitatory or an inhibitory synapse of weight 1 (+-2**23 boundaries, a single
    correction, int32 shift wraps); ``wrap`` accumulates
    a << 6 = 2122383360 per step (the int32 sum before the correction) and saturates v."""
    a_in = [1 << 17, -(1 << 17), (1 << 17) + 1, 1 << 19, 1 << 26, 1 << 25, -(1 << 22)]
    n = len(a_in)
    ir = irm.IR("edges")
    ir.add("in", irm.Input(n + 1, num_message_bits=24))
    sign = np.hstack([np.diag(np.sign(a_in)), np.zeros((n, 1), int)])
    ir.add("edge.exc", _graded_dense(np.maximum(sign, 0), 0, fx.SignMode.EXCITATORY), ["in"])
    ir.add("edge.inh", _graded_dense(np.minimum(sign, 0), 0, fx.SignMode.INHIBITORY), ["in"])
    ir.add("edge", _lif(n, du=4095), ["edge.exc", "edge.inh"])
    ir.add("wrap.dense", _graded_dense(np.eye(1, n + 1, n, dtype=int) * 255, 7, fx.SignMode.MIXED), ["in"])
    ir.add("wrap", _lif(1, du=-1), ["wrap.dense"])
    x = np.tile(np.abs(a_in + [1020]), (1, 6, 1))
    out = _assert_identical(ir, x, "fixed")
    assert out["edge/u"][0, 1].tolist() == [1 << 23, 1 << 23, -(1 << 23) + 64, 1 << 24, 0, -(1 << 31) + (1 << 24),
                                           -(1 << 28) + (1 << 24)]
    assert out["wrap/u"][0, :, 0].tolist() == [0, 2105606144, -50200576, 2055405568, -100401152, 2005204992]


def test_flood_inputs_really_wrap_u_and_saturate_v_on_both_engines():
    ir, x = build(NetSpec(seed=9, n_in=700, layers=(3,), batch=2, steps=12, flood=True, weights="excitatory",
                          weight_exp=0, du=-1, dv=0, density=0.9))
    out = _assert_identical(ir, x, "fixed")
    u, v = out["layers.0/u"], out["layers.0/v"]
    assert u.max() > 1 << 22 and u.min() < -(1 << 22)  # the single 2**24 correction was taken
    assert (np.abs(v) == fx.V_SAT).any()


def _graded_dense(w, weight_exp, sign_mode):
    fixed = irm.SynapseFixed(w, weight_exp=weight_exp, sign_mode=int(sign_mode))
    return irm.Dense(w * 2.0 ** weight_exp, num_message_bits=24, fixed=fixed)


def _lif(n, du):
    zeros = np.zeros(n, dtype=np.int64)
    fixed = irm.LIFFixed(du=du, dv=0, vth=(1 << 17) - 1, bias_mant=zeros, bias_exp=zeros, u=zeros, v=zeros)
    return irm.LIF(n, du=(du + 1) / 4096, dv=0.0, vth=float(((1 << 17) - 1) << 6), fixed=fixed)
