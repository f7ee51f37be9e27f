"""NIR interop: round trips, the forward-Euler parameter convention, and clear refusals."""
import dataclasses

import nir
import numpy as np
import pytest

from models import fixed_point as fx
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.formats import nir as nir_io

RNG = np.random.default_rng(11)


# ------------------------------------------------------------------ helpers
def feedforward(du=0.2, dv=0.1, kind=irm.Dense):
    ir = irm.IR("ff", meta={"task": "digits", "T": 20})
    ir.add("input", irm.Input(4, num_message_bits=3, source="input"))
    ir.add("hidden.dense", kind(RNG.normal(size=(5, 4)), source="layers.0"), ["input"])
    ir.add("hidden", irm.LIF(5, du=du, dv=dv, vth=1.25, bias=RNG.normal(size=5), source="layers.0"),
           ["hidden.dense"])
    ir.add("out.dense", irm.Dense(RNG.normal(size=(3, 5)), source="layers.1"), ["hidden"])
    ir.add("out", irm.LIF(3, du=0.3, dv=0.05, vth=0.5, source="layers.1"), ["out.dense"])
    ir.add("output", irm.Output(3), ["out"])
    return ir


def recurrent():
    ir = irm.IR("rec")
    ir.add("input", irm.Input(4))
    ir.add("hidden.dense", irm.Dense(RNG.normal(size=(5, 4))), ["input"])
    ir.add("hidden", irm.LIF(5, du=0.15, dv=0.07, vth=1.0, bias=RNG.normal(size=5)), ["hidden.dense"])
    ir.add("hidden.rec", irm.Dense(RNG.normal(size=(5, 5))), ["hidden"])
    ir.connect("hidden.rec", "hidden")
    ir.add("output", irm.Output(5), ["hidden"])
    return ir


def assert_same_float_ir(a: irm.IR, b: irm.IR, rtol=1e-12):
    """Equal structure, kinds, provenance and meta; float parameters equal to ``rtol``."""
    assert (a.name, a.meta, list(a.graph.nodes)) == (b.name, b.meta, list(b.graph.nodes))
    assert sorted(a.graph.edges) == sorted(b.graph.edges)
    for name, op in a.nodes():
        other = b.op(name)
        assert type(other) is type(op), name
        for field in dataclasses.fields(op):
            x, y = getattr(op, field.name), getattr(other, field.name)
            if isinstance(x, (float, np.ndarray)):
                np.testing.assert_allclose(y, x, rtol=rtol, atol=1e-15, err_msg=f"{name}.{field.name}")
            else:
                assert x == y, f"{name}.{field.name}: {x!r} != {y!r}"


def one_layer_nir(neuron, n_in=3, affine_bias=None):
    n = neuron.input_type["input"][0]
    weight = RNG.normal(size=(n, n_in)) * 2
    syn = nir.Affine(weight=weight, bias=affine_bias) if affine_bias is not None else nir.Linear(weight=weight)
    nodes = {"in": nir.Input(input_type=np.array([n_in])), "fc": syn, "lif": neuron,
             "out": nir.Output(output_type=np.array([n]))}
    return nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")])


def euler(graph, x, dt):
    """Forward Euler of a one-layer NIR graph (new current feeds v), no hop delay: (spikes, v)."""
    syn, node = graph.nodes["fc"], graph.nodes["lif"]
    bias = getattr(syn, "bias", 0.0)
    current = np.zeros(len(node.v_threshold))
    v, spikes, volts = np.zeros_like(current), [], []
    for x_t in x:
        drive = syn.weight @ x_t + bias
        if isinstance(node, nir.CubaLIF):
            current = current + dt / node.tau_syn * (-current + node.w_in * drive)
            v = v + dt / node.tau_mem * (node.v_leak - v + node.r * current)
        elif isinstance(node, nir.LIF):
            v = v + dt / node.tau * (node.v_leak - v + node.r * drive)
        else:
            v = v + dt * node.r * drive
        s = v > node.v_threshold
        v = np.where(s, 0.0, v)
        spikes.append(s)
        volts.append(v)
    return np.array(spikes), np.array(volts)


def lava_float(ir, x):
    """Lava floating_pt semantics of a one-layer IR: the synapse sends last step's spikes."""
    syn, lif = ir.op("fc"), ir.op("lif")
    u = v = np.zeros(lif.n)
    previous, spikes, volts = np.zeros(x.shape[1]), [], []
    for x_t in x:
        u, v = fx.lif_float_subthreshold(u, v, syn.weight @ previous, lif.du, lif.dv, lif.bias)
        previous = x_t
        s = v > lif.vth
        v = np.where(s, 0.0, v)
        spikes.append(s)
        volts.append(v)
    return np.array(spikes), np.array(volts)


def assert_lava_is_euler_one_step_later(graph, dt, steps=60):
    """IR(x) equals Euler(x delayed by the one synaptic hop): same spikes, same voltages."""
    x = (RNG.random((steps, 3)) < 0.4).astype(float)
    delayed = np.vstack([np.zeros((1, 3)), x[:-1]])
    s_nir, v_nir = euler(graph, delayed, dt)
    s_ir, v_ir = lava_float(nir_io.from_nir(graph, dt), x)
    assert s_nir.any()
    np.testing.assert_array_equal(s_ir, s_nir)
    np.testing.assert_allclose(v_ir, v_nir, rtol=1e-9, atol=1e-9)


def _refused(match, fn, *args, **kw):
    with pytest.raises(SpikeportError, match=match) as err:
        fn(*args, **kw)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------- round trips
@pytest.mark.parametrize("dt", [1.0, 1e-3, 0.37])
def test_nir_roundtrip_preserves_feedforward_network(dt):
    ir = feedforward()
    assert_same_float_ir(nir_io.from_nir(nir_io.to_nir(ir, dt), dt), ir)


def test_nir_roundtrip_preserves_recurrent_network():
    ir = recurrent()
    graph = nir_io.to_nir(ir, dt=1e-3)
    assert ("hidden", "hidden.rec") in graph.edges and ("hidden.rec", "hidden") in graph.edges
    back = nir_io.from_nir(graph, dt=1e-3)
    assert_same_float_ir(back, ir)
    assert back.has_cycle


def test_nir_file_roundtrip_keeps_order_kinds_provenance_and_meta(tmp_path):
    ir = feedforward(kind=irm.Sparse)
    nir_io.save(ir, tmp_path / "net.nir", dt=1e-4)
    assert list(nir.read(tmp_path / "net.nir").nodes) != ir.names()  # HDF5 sorts nodes by name
    back = nir_io.load(tmp_path / "net.nir", dt=1e-4)
    assert_same_float_ir(back, ir)
    assert isinstance(back.op("hidden.dense"), irm.Sparse) and back.op("input").num_message_bits == 3


def test_recurrent_network_survives_a_nir_file(tmp_path):
    ir = recurrent()
    nir_io.save(ir, tmp_path / "rec.nir")
    assert_same_float_ir(nir_io.load(tmp_path / "rec.nir"), ir)


def test_fixed_point_ir_exports_its_float_parameters():
    ir = feedforward()
    fixed = ir.copy()
    fixed.op("hidden.dense").fixed = irm.SynapseFixed(np.ones((5, 4)))
    assert_same_float_ir(nir_io.from_nir(nir_io.to_nir(fixed)), ir)


def test_delay_dense_without_delays_is_exported_as_linear():
    ir = feedforward(kind=irm.DelayDense)
    graph = nir_io.to_nir(ir)
    assert isinstance(graph.nodes["hidden.dense"], nir.Linear)
    assert_same_float_ir(nir_io.from_nir(graph), ir)


# -------------------------------------------------------------- conventions
def test_lif_maps_to_cubalif_by_the_euler_convention():
    dt = 1e-3
    node = nir_io.to_nir(feedforward(du=0.25, dv=0.125), dt).nodes["hidden"]
    assert isinstance(node, nir.CubaLIF)
    np.testing.assert_allclose(node.tau_syn, dt / 0.25)
    np.testing.assert_allclose(node.tau_mem, dt / 0.125)
    np.testing.assert_allclose(node.w_in, 1 / 0.25)
    np.testing.assert_allclose(node.r, 1 / 0.125)
    np.testing.assert_array_equal(node.v_threshold, np.full(5, 1.25))
    np.testing.assert_array_equal(node.v_reset, np.zeros(5))


def test_no_decay_is_an_infinite_time_constant():
    ir = feedforward(du=0.0, dv=0.0)
    ir.op("hidden").bias = np.zeros(5)
    node = nir_io.to_nir(ir).nodes["hidden"]
    assert np.all(np.isinf(node.tau_syn)) and np.all(np.isinf(node.tau_mem))
    assert np.all(np.isinf(node.w_in)) and np.all(np.isinf(node.r))
    assert_same_float_ir(nir_io.from_nir(nir_io.to_nir(ir)), ir)


def test_snntorch_style_cubalif_imports_as_its_alpha_and_beta():
    """snnTorch exports Synaptic(alpha, beta) as tau = dt/(1-alpha), w_in = tau_syn/dt, r = tau_mem/dt."""
    dt, alpha, beta = 1e-4, 0.8, 0.9
    tau_syn, tau_mem = np.full(4, dt / (1 - alpha)), np.full(4, dt / (1 - beta))
    neuron = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.zeros(4),
                         v_threshold=np.ones(4), w_in=tau_syn / dt)
    graph = one_layer_nir(neuron)
    lif = nir_io.from_nir(graph, dt).op("lif")
    assert lif.du == pytest.approx(1 - alpha) and lif.dv == pytest.approx(1 - beta)
    np.testing.assert_allclose(nir_io.from_nir(graph, dt).op("fc").weight, graph.nodes["fc"].weight)


def test_imported_cubalif_with_any_gains_spikes_as_its_euler_discretisation():
    dt = 1e-3
    neuron = nir.CubaLIF(tau_syn=np.full(4, 5e-3), tau_mem=np.full(4, 2e-2), r=np.array([1.0, 2.0, 0.5, 3.0]),
                         v_leak=np.array([0.0, 0.3, -0.2, 0.1]), v_threshold=np.full(4, 0.2),
                         w_in=np.array([1.0, 3.0, 2.0, 0.7]))
    assert_lava_is_euler_one_step_later(one_layer_nir(neuron), dt)


def test_nir_lif_imports_as_a_current_free_lif():
    dt = 1e-3
    neuron = nir.LIF(tau=np.full(4, 1e-2), r=np.array([5.0, 10.0, 8.0, 12.0]), v_leak=np.full(4, 0.1),
                     v_threshold=np.full(4, 0.3))
    graph = one_layer_nir(neuron)
    assert nir_io.from_nir(graph, dt).op("lif").du == 1.0
    assert_lava_is_euler_one_step_later(graph, dt)


def test_nir_if_imports_as_a_leak_free_current_free_lif():
    dt = 0.5
    graph = one_layer_nir(nir.IF(r=np.full(4, 0.8), v_threshold=np.full(4, 1.5)))
    lif = nir_io.from_nir(graph, dt).op("lif")
    assert (lif.du, lif.dv) == (1.0, 0.0)
    assert_lava_is_euler_one_step_later(graph, dt)


def test_affine_bias_is_folded_into_a_current_free_neuron():
    dt = 1e-3
    neuron = nir.LIF(tau=np.full(4, 1e-2), r=np.full(4, 10.0), v_leak=np.zeros(4), v_threshold=np.full(4, 0.3))
    graph = one_layer_nir(neuron, affine_bias=np.array([0.5, -0.2, 0.1, 0.0]))
    np.testing.assert_allclose(nir_io.from_nir(graph, dt).op("lif").bias, [0.5, -0.2, 0.1, 0.0])
    assert_lava_is_euler_one_step_later(graph, dt)


# ----------------------------------------------------------------- refusals
def test_affine_bias_into_a_decaying_current_is_refused():
    neuron = nir.CubaLIF(tau_syn=np.full(2, 5.0), tau_mem=np.full(2, 10.0), r=np.full(2, 10.0),
                         v_leak=np.zeros(2), v_threshold=np.ones(2), w_in=np.full(2, 5.0))
    graph = one_layer_nir(neuron, affine_bias=np.ones(2))
    _refused(r"NIR Affine 'fc': its bias is a constant input current into 'lif' \(du=0.2", nir_io.from_nir, graph)


def test_delay_dense_with_delays_is_refused():
    ir = feedforward(kind=irm.DelayDense)
    ir.op("hidden.dense").delay[1, 2] = 3
    _refused("hidden.dense: DelayDense with synaptic delays up to 3 cannot be written to NIR", nir_io.to_nir, ir)


def test_lif_reset_is_refused():
    ir = irm.IR("reset")
    ir.add("input", irm.Input(2))
    ir.add("syn", irm.Dense(np.ones((2, 2))), ["input"])
    ir.add("pop", irm.LIFReset(2, du=0.1, dv=0.1, vth=1.0, reset_interval=4), ["syn"])
    _refused("pop: LIFReset .*no periodic reset", nir_io.to_nir, ir)


def test_bias_without_leak_is_refused():
    _refused("hidden: a bias with dv=0", nir_io.to_nir, feedforward(dv=0.0))


def test_unsupported_nir_node_is_refused_naming_it():
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([3])), "wait": nir.Delay(delay=np.ones(3)),
                                "out": nir.Output(output_type=np.array([3]))},
                         edges=[("in", "wait"), ("wait", "out")])
    _refused("NIR node 'wait' of type Delay is not supported", nir_io.from_nir, graph)


def test_zero_time_constant_is_refused():
    neuron = nir.LIF(tau=np.array([1.0, 0.0]), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    _refused("NIR LIF 'lif': parameters give dv=inf for neuron 1", nir_io.from_nir, one_layer_nir(neuron))


def test_per_neuron_threshold_is_refused():
    neuron = nir.IF(r=np.ones(2), v_threshold=np.array([1.0, 2.0]))
    _refused("NIR IF 'lif': v_threshold differs across neurons", nir_io.from_nir, one_layer_nir(neuron))


def test_nonzero_reset_potential_is_refused():
    neuron = nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.full(2, -0.5))
    _refused("NIR IF 'lif': v_reset=-0.5 is not supported", nir_io.from_nir, one_layer_nir(neuron))


def test_input_straight_into_a_neuron_is_refused():
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type=np.array([2])),
                                "lif": nir.IF(r=np.ones(2), v_threshold=np.ones(2)),
                                "out": nir.Output(output_type=np.array([2]))},
                         edges=[("in", "lif"), ("lif", "out")])
    _refused("NIR graph: lif: input 'in' is a Input; neurons take synapses", nir_io.from_nir, graph)


def test_file_that_is_not_nir_is_refused(tmp_path):
    path = tmp_path / "x.nir"
    path.write_text("not hdf5")
    _refused("x.nir: not a readable NIR file", nir_io.load, path)
    nir_io.save(recurrent(), path)
    path.write_bytes(path.read_bytes()[:2000])
    _refused("x.nir: not a readable NIR file", nir_io.load, path)
    _refused("no such file", nir_io.load, tmp_path / "absent.nir")


def test_failed_nir_save_leaves_no_file(tmp_path):
    ir = feedforward(kind=irm.DelayDense)
    ir.op("hidden.dense").delay[0, 0] = 1
    with pytest.raises(SpikeportError):
        nir_io.save(ir, tmp_path / "net.nir")
    assert not list(tmp_path.iterdir())
