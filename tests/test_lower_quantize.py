"""Lowering torch networks to the IR, quantizing them, and checking them against the target."""
import numpy as np
import pytest
import torch

from models import fixed_params as fp
from models import fixed_point as fx
from models.errors import SpikeportError
from models.network import Network
from toolchain import ir as irm
from toolchain.ir import passes
from toolchain.lower import lower
from toolchain.quantize import quantize, snap_to_weight_grid

FEEDFORWARD = dict(n_in=6, layers=[dict(n=5), dict(n=3)], seed=1)
DELAYED = dict(n_in=6, layers=[dict(n=5, max_delay=4), dict(n=3)], seed=2)
RECURRENT = dict(n_in=6, layers=[dict(n=5, recurrent=True), dict(n=3)], seed=3)


def test_lowering_names_nodes_after_module_paths_and_keeps_the_chain():
    ir = lower(Network(FEEDFORWARD))
    assert ir.names() == ["input", "layers.0.dense", "layers.0", "layers.1.dense", "layers.1", "output"]
    assert sorted(ir.graph.edges) == sorted([("input", "layers.0.dense"), ("layers.0.dense", "layers.0"),
                                             ("layers.0", "layers.1.dense"), ("layers.1.dense", "layers.1"),
                                             ("layers.1", "output")])
    assert not ir.is_fixed and not ir.has_cycle


def test_lowering_a_delayed_layer_gives_delaydense_with_the_same_delays():
    net = Network(DELAYED)
    op = lower(net).op("layers.0.dense")
    assert isinstance(op, irm.DelayDense)
    assert np.array_equal(op.delay, net.layers[0].delays.numpy())


def test_lowering_a_recurrent_layer_gives_a_cycle_through_a_synapse():
    ir = lower(Network(RECURRENT))
    assert ir.has_cycle
    assert ("layers.0", "layers.0.rec") in ir.graph.edges and ("layers.0.rec", "layers.0") in ir.graph.edges
    passes.validate(ir)


def test_lowering_an_unsupported_module_names_its_type():
    with pytest.raises(SpikeportError, match="torch.nn.modules.conv.Conv2d is not supported"):
        lower(torch.nn.Conv2d(1, 1, 3))


@pytest.mark.parametrize("config", [FEEDFORWARD, DELAYED, RECURRENT])
def test_lowering_a_scaled_network_writes_the_integers_fixed_mode_uses(config):
    net = Network(config)
    for layer in net.layers:
        layer.set_fixed_scale(321.0, 1, 0)
    ir = lower(net)
    assert ir.is_fixed
    for i, layer in enumerate(net.layers):
        p = layer.fixed_parameters()
        syn, lif = ir.op(f"layers.{i}.dense"), ir.op(f"layers.{i}")
        assert np.array_equal(syn.fixed.weights, p["weight"].detach().numpy())
        assert (lif.fixed.du, lif.fixed.dv, lif.fixed.vth) == (int(p["du"]), int(p["dv"]), int(p["vth"]))
        bias = fx.effective_bias(lif.fixed.bias_mant.astype(float), lif.fixed.bias_exp)
        assert np.array_equal(bias, p["bias"].detach().numpy())
        # the integers are already on Lava's grid: Lava's own quantization changes nothing
        assert np.array_equal(fx.lava_weights(syn.fixed.weights.astype(float), 8, fx.SignMode(syn.fixed.sign_mode)),
                              syn.fixed.weights)


def _stats(ir, u=2.0, v=3.0):
    return {n: {"u": u, "v": v} for n in ir.names(irm.Neuron)}


def test_quantization_uses_the_8bit_range_and_reports_every_layer():
    ir = lower(Network(FEEDFORWARD))
    q, reports = quantize(ir, _stats(ir))
    assert q.is_fixed and not ir.is_fixed  # a copy: the float IR is untouched
    passes.validate(q, require_fixed=True)
    for r in reports:
        assert r.state_use <= 0.5 + 1e-9  # 2x headroom below 2**23
        for s in r.synapses:
            assert s.range_use > 0.45 and s.clipped == 0
    assert set(q.meta["quantization"]) == {"layers.0", "layers.1"}


def _one_layer(top_weight: float) -> irm.IR:
    """input -> Dense (largest |weight| ``top_weight``, mixed signs) -> LIF."""
    ir = irm.IR("one")
    ir.add("input", irm.Input(3), [])
    ir.add("d", irm.Dense(top_weight * np.array([[1.0, -0.3, 0.15], [0.5, 0.0, -0.8]])), ["input"])
    ir.add("n", irm.LIF(2, du=0.1, dv=0.1, vth=1.0), ["d"])
    return ir


@pytest.mark.parametrize("use, snapped", [(0.52, True), (0.69, True), (0.72, False), (0.95, False)])
def test_the_scale_is_lowered_to_fill_the_weight_grid_only_when_that_gains_more_than_it_costs(use, snapped):
    """At the chosen scale the largest weight uses a fraction r of the 8-bit grid; lowering the
    scale by 2r fills it (weights 1/r finer, state 2r coarser): taken for r < 1/sqrt(2)."""
    state_lam = fx.V_SAT / (2.0 * 64 * 3.0)  # what the state range allows for peak |v| = 3
    ir = _one_layer(254 * 2.0 ** 3 * use / state_lam)  # r = use at weight_exp 3
    q, (report,) = quantize(ir, {"n": {"u": 2.0, "v": 3.0}})
    (syn,) = report.synapses
    if snapped:
        assert report.lam == pytest.approx(state_lam / (2 * use), rel=1e-9) and syn.weight_exp == 2
        assert syn.range_use == pytest.approx(254 / 256) and "to fill d's 8-bit grid" in report.limited_by
    else:
        assert report.lam == pytest.approx(state_lam, rel=1e-12) and syn.weight_exp == 3
        assert syn.range_use == pytest.approx(254 * use / 256, abs=1 / 256)
    again, _ = snap_to_weight_grid(q, "n", report.lam)  # snapping a snapped scale changes nothing
    assert again == report.lam


def test_quantization_maps_decays_with_the_du_plus_one_offset():
    net = Network(dict(n_in=2, layers=[dict(n=2, du=0.0, dv=0.0), dict(n=2, du=1.0, dv=0.5)]))
    q, _ = quantize(lower(net), _stats(lower(net)))
    assert (q.op("layers.0").fixed.du, q.op("layers.0").fixed.dv) == (-1, 0)  # no decay at all
    assert (q.op("layers.1").fixed.du, q.op("layers.1").fixed.dv) == (4095, 2048)  # u = this step's input


def test_du_and_dv_from_float_decays():
    assert fp.decays_to_fixed(0.0, 0.0) == (-1, 0)
    assert fp.decays_to_fixed(0.25, 0.5) == (1023, 2048)
    assert fp.decays_from_fixed(1023, 2048) == (0.25, 0.5)


def test_weights_that_would_all_round_to_zero_are_refused_with_the_node_named():
    net = Network(FEEDFORWARD)
    with torch.no_grad():
        net.layers[1].weight.fill_(1e-30)
    ir = lower(net)
    with pytest.raises(SpikeportError, match="layers.1.dense: all 15 nonzero weights round to zero"):
        quantize(ir, _stats(ir))


def test_a_delay_of_64_is_refused_naming_node_parameter_value_and_limit():
    ir = lower(Network(DELAYED))
    ir.op("layers.0.dense").delay[0, 0] = 64
    with pytest.raises(SpikeportError, match=r"layers.0.dense: delay=64 is outside \[0, 63\]"):
        passes.validate(ir)


@pytest.mark.parametrize("field, value, match", [
    ("du", 5000, r"layers.0: du=5000 is outside \[-1, 4095\]"),
    ("vth", 1 << 17, r"layers.0: vth=131072 is outside \[0, 131071\]"),
])
def test_out_of_range_fixed_neuron_parameters_are_refused(field, value, match):
    ir = lower(Network(FEEDFORWARD))
    q, _ = quantize(ir, _stats(ir))
    setattr(q.op("layers.0").fixed, field, value)
    with pytest.raises(SpikeportError, match=match):
        passes.validate(q)


def test_shape_mismatch_along_an_edge_is_refused():
    ir = lower(Network(FEEDFORWARD))
    ir.op("layers.1.dense").weight = np.zeros((3, 4))
    with pytest.raises(SpikeportError, match="layers.1.dense: weight has 4 inputs but source 'layers.0' has 5"):
        passes.validate(ir)


def test_core_mapping_counts_neurons_synapses_and_cores():
    ir = lower(Network(dict(n_in=100, layers=[dict(n=10000), dict(n=10)])))
    est = passes.core_mapping(ir)
    assert est["neurons"] == 10010 and est["synapses"] == 100 * 10000 + 10000 * 10
    assert est["populations"][0]["cores"] == 2  # 10,000 neurons > 8,192 per core
    assert est["chips"] == 1


@pytest.mark.parametrize("field, value", [("vth", 100.5), ("du", float("nan")), ("bias_mant", [3, 2.25])])
def test_fixed_point_records_refuse_non_integers_instead_of_truncating(field, value):
    kwargs = dict(du=0, dv=0, vth=100, bias_mant=[0, 0], bias_exp=[0, 0], u=[0, 0], v=[0, 0])
    kwargs[field] = value
    with pytest.raises(SpikeportError, match=f"^{field}: value .* is not an integer"):
        irm.LIFFixed(**kwargs)
    assert irm.LIFFixed(**{**kwargs, field: 7.0 if field != "bias_mant" else [3.0, 2.0]})  # exact floats are fine
