"""NIR interop: round trips, the forward-Euler parameter convention, and clear refusals."""
import dataclasses

import nir
import numpy as np
import pytest

from models.errors import SpikeportError
from toolchain import engines
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


def two_layer_nir(bias: bool):
    """in -> fc1 (Affine) -> l1 (CubaLIF) -> fc2 (Affine) -> l2 (CubaLIF, v_leak) -> out, dt = 1."""
    def cuba(n, tau_syn, tau_mem, v_leak):
        return nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.full(n, tau_mem),
                           v_leak=np.full(n, v_leak), v_threshold=np.full(n, 0.6), w_in=np.full(n, tau_syn))
    b1, b2 = (RNG.normal(size=5) * 0.2, RNG.normal(size=2) * 0.2) if bias else (np.zeros(5), np.zeros(2))
    nodes = {"in": nir.Input(input_type=np.array([3])), "fc1": nir.Affine(weight=RNG.normal(size=(5, 3)), bias=b1),
             "l1": cuba(5, 4.0, 8.0, 0.0), "fc2": nir.Affine(weight=RNG.normal(size=(2, 5)) * 1.5, bias=b2),
             "l2": cuba(2, 3.0, 5.0, 0.15 if bias else 0.0), "out": nir.Output(output_type=np.array([2]))}
    edges = [("in", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "l2"), ("l2", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def euler_two_layer(graph, x):
    """Forward Euler (dt = 1) of `two_layer_nir`, no hop delay: {"l1": spikes, "l2": spikes}."""
    spikes, s = {}, x
    for fc, name in (("fc1", "l1"), ("fc2", "l2")):
        syn, node = graph.nodes[fc], graph.nodes[name]
        i = v = np.zeros(syn.weight.shape[0])
        out = []
        for s_t in s:
            i = i + (-i + node.w_in * (syn.weight @ s_t + syn.bias)) / node.tau_syn
            v = v + (node.v_leak - v + node.r * i) / node.tau_mem
            fired = v > node.v_threshold
            v = np.where(fired, 0.0, v)
            out.append(fired)
        spikes[name] = s = np.array(out, dtype=float)
    return spikes


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


def run_float(ir, x):
    """The float emulator on one sample ``x`` (T, n_in): (spikes, v) of node "lif", (T, n)."""
    out = engines.run("float-emulator", ir, x[None], record=["lif"])
    return out["lif/s"][0].astype(bool), out["lif/v"][0]


def assert_spikeport_is_euler_one_hop_later(graph, dt, steps=60):
    """Euler time: the IR's step t + 1 is the Euler graph's step t (one hop), biases included:
    same spikes, same voltages, and nothing in step 1."""
    x = (RNG.random((steps, 3)) < 0.4).astype(float)
    s_nir, v_nir = euler(graph, x, dt)
    s_ir, v_ir = run_float(nir_io.from_nir(graph, dt), x)
    assert s_nir.any()
    assert not s_ir[0].any() and np.all(v_ir[0] == 0)
    np.testing.assert_array_equal(s_ir[1:], s_nir[:-1])
    np.testing.assert_allclose(v_ir[1:], v_nir[:-1], rtol=1e-9, atol=1e-9)


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
    assert_spikeport_is_euler_one_hop_later(one_layer_nir(neuron), dt)


def test_nir_lif_imports_as_a_current_free_lif():
    dt = 1e-3
    neuron = nir.LIF(tau=np.full(4, 1e-2), r=np.array([5.0, 10.0, 8.0, 12.0]), v_leak=np.full(4, 0.1),
                     v_threshold=np.full(4, 0.3))
    graph = one_layer_nir(neuron)
    assert nir_io.from_nir(graph, dt).op("lif").du == 1.0
    assert_spikeport_is_euler_one_hop_later(graph, dt)


def test_nir_if_imports_as_a_leak_free_current_free_lif():
    dt = 0.5
    graph = one_layer_nir(nir.IF(r=np.full(4, 0.8), v_threshold=np.full(4, 1.5)))
    lif = nir_io.from_nir(graph, dt).op("lif")
    assert (lif.du, lif.dv) == (1.0, 0.0)
    assert_spikeport_is_euler_one_hop_later(graph, dt)


def test_affine_bias_into_a_current_free_neuron_is_a_clock_driven_input_current():
    dt = 1e-3
    neuron = nir.LIF(tau=np.full(4, 1e-2), r=np.full(4, 10.0), v_leak=np.zeros(4), v_threshold=np.full(4, 0.3))
    graph = one_layer_nir(neuron, affine_bias=np.array([0.5, -0.2, 0.1, 0.0]))
    ir = nir_io.from_nir(graph, dt)
    np.testing.assert_array_equal(ir.op("lif").bias, np.zeros(4))
    np.testing.assert_allclose(ir.op("fc.bias").weight[:, 0], [0.5, -0.2, 0.1, 0.0])
    assert ir.inputs("fc.bias") == ["nir.clock.1"]
    assert_spikeport_is_euler_one_hop_later(graph, dt)


def test_affine_bias_into_a_decaying_current_is_imported_exactly():
    """snnTorch's default nn.Linear(bias=True) -> Synaptic: a constant input current into a CubaLIF."""
    neuron = nir.CubaLIF(tau_syn=np.full(4, 5.0), tau_mem=np.full(4, 10.0), r=np.full(4, 10.0),
                         v_leak=np.zeros(4), v_threshold=np.full(4, 0.8), w_in=np.full(4, 5.0))
    assert_spikeport_is_euler_one_hop_later(one_layer_nir(neuron, affine_bias=np.array([0.3, -0.1, 0.05, 0.2])), 1.0)


def test_affine_bias_and_v_leak_of_a_two_layer_euler_graph_start_with_each_layers_input():
    """Layer k's drives are clock input from step k + 1: its spikes in step t + k are Euler's in step t."""
    graph = two_layer_nir(bias=True)
    x = (RNG.random((80, 3)) < 0.4).astype(float)
    expected = euler_two_layer(graph, x)
    out = engines.run("float-emulator", nir_io.from_nir(graph), x[None], record=["l1", "l2"])
    for k, name in enumerate(["l1", "l2"], start=1):
        assert expected[name].any()
        np.testing.assert_array_equal(out[f"{name}/s"][0, k:], expected[name][:-k])
        assert not out[f"{name}/s"][0, :k].any()


def test_euler_graph_round_trips_through_spikeport_with_its_biases_as_affine_and_v_leak():
    graph = two_layer_nir(bias=True)
    back = nir_io.to_nir(nir_io.from_nir(graph))
    assert back.metadata[nir_io.TIME_KEY] == "euler" and set(back.nodes) == set(graph.nodes)
    np.testing.assert_allclose(back.nodes["fc1"].bias, graph.nodes["fc1"].bias, rtol=1e-12)
    np.testing.assert_allclose(back.nodes["fc2"].bias, graph.nodes["fc2"].bias, rtol=1e-12)
    np.testing.assert_allclose(back.nodes["l2"].v_leak, graph.nodes["l2"].v_leak, rtol=1e-9)


# ----------------------------------------------------------------- refusals
def test_peer_export_refuses_a_bias_that_acts_before_the_first_input():
    _refused("--nir-for norse: hidden: its bias acts from step 1", nir_io.to_nir, feedforward(), nir_for="norse")


def test_plain_export_of_a_step_one_bias_warns_and_keeps_spikeport_time():
    with pytest.warns(UserWarning, match="hidden: its bias acts from step 1"):
        graph = nir_io.to_nir(feedforward())
    assert graph.metadata[nir_io.TIME_KEY] == "spikeport"


def test_time_constant_shorter_than_the_step_is_refused_naming_dt():
    neuron = nir.CubaLIF(tau_syn=np.full(2, 5e-4), tau_mem=np.full(2, 1e-3), r=np.full(2, 10.0),
                         v_leak=np.zeros(2), v_threshold=np.ones(2), w_in=np.full(2, 5.0))
    _refused(r"NIR CubaLIF 'lif': du = dt/tau_syn = 1/0.0005 = 2000 for neuron 0 is outside \[0, 1\].*--nir-dt",
             nir_io.from_nir, one_layer_nir(neuron))


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
    _refused(r"NIR LIF 'lif': tau=0.0 is outside \(0, inf\]", nir_io.from_nir, one_layer_nir(neuron))


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


def test_nan_time_constant_is_refused_naming_it():
    neuron = nir.LIF(tau=np.array([1e-2, np.nan, 1e-2, 1e-2]), r=np.ones(4), v_leak=np.zeros(4),
                     v_threshold=np.ones(4))
    _refused(r"NIR LIF 'lif': tau=nan is outside \(0, inf\]", nir_io.from_nir, one_layer_nir(neuron), 1e-3)


def test_skip_connection_of_another_hop_count_is_refused_when_biases_need_a_start_step():
    graph = two_layer_nir(bias=True)
    graph.nodes["skip"] = nir.Linear(weight=RNG.normal(size=(2, 3)))
    graph.edges += [("in", "skip"), ("skip", "l2")]
    _refused("NIR graph: l2 is 1 hops from the input but fed through fc2 from l1, 1 hops", nir_io.from_nir, graph)
    with pytest.warns(UserWarning, match="l2 is 1 hops from the input but fed through fc2"):
        graph.nodes["fc1"].bias[:] = graph.nodes["fc2"].bias[:] = graph.nodes["l2"].v_leak[:] = 0
        nir_io.from_nir(graph)


def test_bias_clock_quantizes_and_spikes_in_every_step_on_the_fixed_emulator():
    from toolchain import quantize

    ir = nir_io.from_nir(two_layer_nir(bias=True))
    x = (RNG.random((3, 40, 3)) < 0.4).astype(float)
    fixed, _ = quantize.quantize(ir, quantize.calibration_stats(ir, x))
    out = engines.run("emulator", fixed, x, record=["nir.clock.1", "nir.clock.2"])
    assert out["nir.clock.1/s"].all()
    assert not out["nir.clock.2/s"][:, 0].any() and out["nir.clock.2/s"][:, 1:].all()


def test_snntorch_producer_refuses_a_time_step_its_exporter_never_writes():
    neuron = nir.LIF(tau=np.full(4, 1e-3), r=np.full(4, 10.0), v_leak=np.zeros(4), v_threshold=np.ones(4))
    _refused("--nir-from snntorch: --nir-dt 0.001 is not 0.0001, the time step snnTorch's NIR exporter hard-codes",
             nir_io.from_nir, one_layer_nir(neuron), 1e-3, "snntorch")


def test_norse_producer_reads_its_time_constants_as_dt_times_too_small():
    """Norse 1.1.0 writes tau = dt * (1/tau_inv): LIFCell(tau_syn_inv=200, tau_mem_inv=100) at dt=1e-3."""
    dt = 1e-3
    neuron = nir.CubaLIF(tau_syn=np.full(2, dt / 200), tau_mem=np.full(2, dt / 100), r=np.ones(2),
                         v_leak=np.zeros(2), v_threshold=np.ones(2))
    lif = nir_io.from_nir(one_layer_nir(neuron), nir_from="norse").op("lif")
    assert lif.du == pytest.approx(0.2) and lif.dv == pytest.approx(0.1)
