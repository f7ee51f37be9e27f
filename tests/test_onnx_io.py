"""IR files (.onnx): exact round trips, a valid ONNX layout, and one-line refusals of bad files."""
import os

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import helper, numpy_helper

from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.formats import onnx as onnx_io

RNG = np.random.default_rng(7)


# ------------------------------------------------------------------ IR builders
def _lif(n, fixed=False, cls=irm.LIF, **kw):
    rec = irm.LIFFixed(du=818, dv=409, vth=64, bias_mant=RNG.integers(-100, 100, n),
                       bias_exp=np.full(n, 3), u=np.zeros(n), v=RNG.integers(-50, 50, n)) if fixed else None
    return cls(n, du=0.2, dv=0.1, vth=1.0, bias=RNG.normal(size=n), fixed=rec, **kw)


def _syn(n_out, n_in, fixed=False, cls=irm.Dense, **kw):
    rec = irm.SynapseFixed(RNG.integers(-128, 128, (n_out, n_in)) * 2, weight_exp=-2,
                           num_weight_bits=7, sign_mode=1) if fixed else None
    return cls(RNG.normal(size=(n_out, n_in)), fixed=rec, **kw)


def feedforward(fixed=False):
    ir = irm.IR("ff", meta={"task": "digits", "accuracy": {"test": np.float64(0.9)}, "shape": np.arange(3)})
    ir.add("input", irm.Input(4, source="input"))
    ir.add("hidden.dense", _syn(5, 4, fixed, source="layers.0"), ["input"])
    ir.add("hidden", _lif(5, fixed, source="layers.0"), ["hidden.dense"])
    ir.add("out.dense", _syn(3, 5, fixed, source="layers.1"), ["hidden"])
    ir.add("out", _lif(3, fixed, source="layers.1"), ["out.dense"])
    ir.add("output", irm.Output(3, source="layers.1"), ["out"])
    return ir


def recurrent(fixed=False):
    """The lowering's shape of a recurrent layer: a cycle hidden -> hidden.rec -> hidden."""
    ir = irm.IR("rec")
    ir.add("input", irm.Input(4))
    ir.add("hidden.dense", _syn(5, 4, fixed), ["input"])
    ir.add("hidden", _lif(5, fixed), ["hidden.dense"])
    ir.add("hidden.rec", _syn(5, 5, fixed), ["hidden"])
    ir.connect("hidden.rec", "hidden")
    ir.add("output", irm.Output(5), ["hidden"])
    return ir


def delayed(fixed=False):
    ir = irm.IR("delayed")
    ir.add("input", irm.Input(4, num_message_bits=8))
    ir.add("hidden.dense", _syn(5, 4, fixed, cls=irm.DelayDense, delay=RNG.integers(0, 64, (5, 4)),
                                num_message_bits=8), ["input"])
    ir.add("hidden", _lif(5, fixed), ["hidden.dense"])
    ir.add("output", irm.Output(5), ["hidden"])
    return ir


def sparse_with_reset(fixed=False):
    """Two synapses (one Sparse) into one LIFReset population."""
    ir = irm.IR("sparse")
    ir.add("a", irm.Input(4))
    ir.add("b", irm.Input(2))
    weight = _syn(5, 4, fixed, cls=irm.Sparse)
    weight.weight[weight.weight < 0] = 0.0
    ir.add("a.syn", weight, ["a"])
    ir.add("b.syn", _syn(5, 2, fixed), ["b"])
    ir.add("pop", _lif(5, fixed, cls=irm.LIFReset, reset_interval=5, reset_offset=2), ["a.syn", "b.syn"])
    ir.add("output", irm.Output(5), ["pop"])
    return ir


def node_added_before_its_source():
    """Insertion order that is not topological, without a cycle."""
    ir = irm.IR("late")
    ir.add("output", irm.Output(3))
    ir.add("pop", _lif(3))
    ir.add("syn", _syn(3, 2))
    ir.add("input", irm.Input(2))
    for src, dst in [("input", "syn"), ("syn", "pop"), ("pop", "output")]:
        ir.connect(src, dst)
    return ir


BUILDERS = [feedforward, recurrent, delayed, sparse_with_reset]
ALL_IRS = [pytest.param(b(fixed), id=f"{b.__name__}-{'fixed' if fixed else 'float'}")
           for b in BUILDERS for fixed in (False, True)] + [pytest.param(node_added_before_its_source(), id="late")]


def _roundtrip(ir, path):
    onnx_io.save(ir, path)
    return onnx_io.load(path)


def _refusal(path) -> str:
    with pytest.raises(SpikeportError) as err:
        onnx_io.load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def _edit(tmp_path, edit, ir=None):
    """Write ``ir`` (fixed feedforward by default), apply ``edit`` to the ModelProto, save the result."""
    model = onnx_io.to_model(ir or feedforward(fixed=True))
    edit(model)
    path = tmp_path / "edited.onnx"
    onnx.save_model(model, str(path))
    return path


def _replace_initializer(model, name, array):
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))


# ----------------------------------------------------------------- round trips
@pytest.mark.parametrize("ir", ALL_IRS)
def test_onnx_roundtrip_is_exact_for_every_kind_of_network(ir, tmp_path):
    back = _roundtrip(ir, tmp_path / "net.onnx")
    assert back == ir
    assert list(back.graph.nodes) == list(ir.graph.nodes)
    assert back.is_fixed == ir.is_fixed


def test_onnx_roundtrip_preserves_recurrent_network(tmp_path):
    ir = recurrent(fixed=True)
    back = _roundtrip(ir, tmp_path / "rec.onnx")
    assert back == ir and back.has_cycle
    assert ("hidden.rec", "hidden") in back.graph.edges


def test_onnx_roundtrip_preserves_meta_name_and_provenance(tmp_path):
    back = _roundtrip(feedforward(), tmp_path / "ff.onnx")
    assert back.name == "ff"
    assert back.meta == {"task": "digits", "accuracy": {"test": 0.9}, "shape": [0, 1, 2]}
    assert back.op("hidden").source == "layers.0"


@settings(max_examples=25, deadline=None)
@given(weight=hnp.arrays(np.float64, (3, 2), elements=st.floats(allow_nan=False, width=64)),
       du=st.floats(allow_nan=False), vth=st.floats(allow_nan=False, allow_infinity=False))
def test_float_parameters_survive_bit_for_bit(weight, du, vth):
    ir = irm.IR("exact")
    ir.add("input", irm.Input(2))
    ir.add("syn", irm.Dense(weight), ["input"])
    ir.add("pop", irm.LIF(3, du=du, dv=1e-300, vth=vth, bias=weight[:, 0]), ["syn"])
    back = onnx_io.from_model(onnx_io.to_model(ir))
    assert back == ir
    assert back.op("syn").weight.tobytes() == weight.tobytes()  # signed zeros too


# --------------------------------------------------------------------- layout
@pytest.mark.parametrize("ir", ALL_IRS)
def test_every_written_file_passes_the_onnx_checker(ir, tmp_path):
    path = tmp_path / "net.onnx"
    onnx_io.save(ir, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=False)


def test_file_names_its_domain_version_ops_and_parameters(tmp_path):
    path = tmp_path / "ff.onnx"
    onnx_io.save(feedforward(fixed=True), path)
    model = onnx.load(str(path))
    assert {(o.domain, o.version) for o in model.opset_import} == {(irm.IR_DOMAIN, irm.IR_VERSION)}
    assert [(n.name, n.op_type, n.domain) for n in model.graph.node][:3] == [
        ("input", "Input", irm.IR_DOMAIN), ("hidden.dense", "Dense", irm.IR_DOMAIN), ("hidden", "LIF", irm.IR_DOMAIN)]
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert inits["hidden.dense.weight"].dtype == np.float64
    assert inits["hidden.dense.fixed.weights"].dtype == np.int64
    assert inits["hidden.fixed.bias_mant"].shape == (5,)
    hidden = model.graph.node[2]
    attrs = {a.name: helper.get_attribute_value(a) for a in hidden.attribute}
    assert attrs["fixed.du"] == 818 and attrs["n"] == 5 and attrs["source"] == b"layers.0"
    assert numpy_helper.to_array(attrs["vth"]).dtype == np.float64
    assert [o.name for o in model.graph.output] == ["output"]


def test_recurrent_edges_are_graph_inputs_and_a_node_lists_all_its_sources(tmp_path):
    model = onnx_io.to_model(recurrent())
    assert [i.name for i in model.graph.input] == ["hidden.rec:recurrent"]
    hidden = next(n for n in model.graph.node if n.name == "hidden")
    assert list(hidden.input) == ["hidden.dense", "hidden.rec:recurrent", "hidden.bias"]
    pop = next(n for n in onnx_io.to_model(sparse_with_reset()).graph.node if n.name == "pop")
    assert list(pop.input)[:2] == ["a.syn", "b.syn"]


def test_is_fixed_file_tells_float_from_fixed(tmp_path):
    onnx_io.save(feedforward(fixed=True), tmp_path / "fixed.onnx")
    onnx_io.save(feedforward(), tmp_path / "float.onnx")
    assert onnx_io.is_fixed_file(tmp_path / "fixed.onnx")
    assert not onnx_io.is_fixed_file(tmp_path / "float.onnx")


# -------------------------------------------------------------- atomic writes
def test_failed_save_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "net.onnx"
    onnx_io.save(feedforward(), path)
    before = path.read_bytes()

    def half_write(model, name):
        with open(name, "wb") as f:
            f.write(model.SerializeToString()[:100])
        raise OSError("disk full")

    monkeypatch.setattr(onnx, "save_model", half_write)
    with pytest.raises(OSError):
        onnx_io.save(recurrent(), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["net.onnx"]


def test_ir_whose_meta_is_not_json_is_refused_before_writing(tmp_path):
    ir = feedforward()
    ir.meta["model"] = object()
    with pytest.raises(SpikeportError, match="meta cannot be written as JSON"):
        onnx_io.save(ir, tmp_path / "net.onnx")
    assert not list(tmp_path.iterdir())


def test_node_names_that_collide_with_parameter_tensors_are_refused(tmp_path):
    ir = feedforward()
    ir.add("hidden.dense.weight", irm.Input(2))
    with pytest.raises(SpikeportError, match="'hidden.dense.weight' is empty or used twice"):
        onnx_io.save(ir, tmp_path / "net.onnx")
    assert not list(tmp_path.iterdir())


def test_malformed_ir_is_refused_before_writing(tmp_path):
    ir = feedforward()
    ir.op("hidden").bias = np.zeros(4)
    with pytest.raises(SpikeportError, match="'hidden' .LIF.: bias has shape .4,., expected .5,."):
        onnx_io.save(ir, tmp_path / "net.onnx")


# ------------------------------------------------------------------- refusals
def test_truncated_onnx_file_is_refused_with_one_line_error(tmp_path):
    data = onnx_io.to_model(recurrent(fixed=True)).SerializeToString()
    path = tmp_path / "cut.onnx"
    for size in range(len(data)):  # every prefix, field boundaries included
        path.write_bytes(data[:size])
        _refusal(path)


def test_file_cut_at_the_last_field_boundary_is_refused(tmp_path):
    model = onnx_io.to_model(feedforward())
    del model.metadata_props[:]
    path = tmp_path / "cut.onnx"
    onnx.save_model(model, str(path))
    assert "truncated" in _refusal(path)


@pytest.mark.parametrize("content", [b"", b"hello, this is not onnx\n", np.arange(10).tobytes()],
                         ids=["empty", "text", "binary"])
def test_file_that_is_not_a_spikeport_onnx_file_is_refused(content, tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(content)
    _refusal(path)


def test_plain_onnx_model_is_refused_as_not_spikeport(tmp_path):
    relu = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([relu], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    path = tmp_path / "relu.onnx"
    onnx.save_model(helper.make_model(graph), str(path))
    assert "not a spikeport IR file" in _refusal(path)


def test_missing_file_is_refused(tmp_path):
    assert "no such file" in _refusal(tmp_path / "absent.onnx")


def test_file_from_a_newer_ir_version_is_refused(tmp_path):
    def bump(model):
        model.opset_import[0].version = irm.IR_VERSION + 1

    message = _refusal(_edit(tmp_path, bump))
    assert message.endswith(f"was written by IR version {irm.IR_VERSION + 1}; "
                            f"this spikeport reads up to {irm.IR_VERSION}")


def test_node_in_another_op_domain_is_refused(tmp_path):
    def move(model):
        model.opset_import.append(helper.make_opsetid("com.example", 1))
        model.graph.node[1].domain = "com.example"

    assert "node 'hidden.dense' is in op domain 'com.example'" in _refusal(_edit(tmp_path, move))


def test_unknown_op_type_is_refused(tmp_path):
    def rename(model):
        model.graph.node[2].op_type = "ALIF"

    assert "node 'hidden' has unknown op type 'ALIF'" in _refusal(_edit(tmp_path, rename))


def test_missing_initializer_is_refused_naming_node_and_tensor(tmp_path):
    def drop(model):
        keep = [t for t in model.graph.initializer if t.name != "hidden.dense.weight"]
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)

    message = _refusal(_edit(tmp_path, drop))
    assert "node 'hidden.dense' (Dense): missing initializer 'hidden.dense.weight'" in message


def test_missing_attribute_is_refused(tmp_path):
    def drop(model):
        node = model.graph.node[2]
        keep = [a for a in node.attribute if a.name != "vth"]
        del node.attribute[:]
        node.attribute.extend(keep)

    assert "node 'hidden' (LIF): missing attribute 'vth'" in _refusal(_edit(tmp_path, drop))


def test_fixed_point_array_of_the_wrong_shape_is_refused(tmp_path):
    def reshape(model):
        _replace_initializer(model, "hidden.dense.fixed.weights", np.zeros((5, 3), dtype=np.int64))

    message = _refusal(_edit(tmp_path, reshape))
    assert "node 'hidden.dense' (Dense): fixed.weights has shape (5, 3), expected (5, 4)" in message


def test_weights_that_do_not_fit_their_source_are_refused(tmp_path):
    def reshape(model):
        _replace_initializer(model, "hidden.dense.weight", np.zeros((5, 3)))
        _replace_initializer(model, "hidden.dense.fixed.weights", np.zeros((5, 3), dtype=np.int64))

    assert "weight has 3 inputs but source 'input' has 4 channels" in _refusal(_edit(tmp_path, reshape))


@pytest.mark.parametrize("value, message", [(1.0, "'fixed.bias_mant' is float64, expected int64"),
                                            (0.5, "fixed.bias_mant: value 0.5 is not an integer")])
def test_integer_parameter_stored_as_float_is_refused(tmp_path, value, message):
    def retype(model):
        _replace_initializer(model, "hidden.fixed.bias_mant", np.full(5, value))

    assert message in _refusal(_edit(tmp_path, retype))


def test_attribute_of_the_wrong_type_is_refused(tmp_path):
    def retype(model):
        node = model.graph.node[2]
        keep = [a for a in node.attribute if a.name != "du"]
        del node.attribute[:]
        node.attribute.extend(keep + [helper.make_attribute("du", 0.2)])  # float32 FLOAT attribute

    assert "attribute 'du' must be a 0-d float64 TENSOR attribute" in _refusal(_edit(tmp_path, retype))


def test_unknown_attribute_is_refused(tmp_path):
    def add(model):
        model.graph.node[2].attribute.append(helper.make_attribute("refractory", 3))

    assert "node 'hidden' (LIF): unknown attribute or initializer 'refractory'" in _refusal(_edit(tmp_path, add))


def test_edge_from_an_unknown_node_is_refused(tmp_path):
    def rewire(model):
        model.graph.node[1].input[0] = "nowhere"

    assert "input 'nowhere' is neither an earlier node" in _refusal(_edit(tmp_path, rewire))


def test_corrupt_initializer_data_is_refused(tmp_path):
    def corrupt(model):
        init = next(t for t in model.graph.initializer if t.name == "hidden.bias")
        init.raw_data = init.raw_data[:-3]

    assert "initializer 'hidden.bias' is corrupt" in _refusal(_edit(tmp_path, corrupt))


def test_meta_that_is_not_json_is_refused(tmp_path):
    def garble(model):
        model.metadata_props[-1].value = "{not json"

    assert "IR meta is not valid JSON" in _refusal(_edit(tmp_path, garble))
