"""IR files: the graph IR as an ONNX model in the custom op domain ``ai.spikeport``.

``save``/``load`` write and read ``.onnx`` files; ``to_model``/``from_model``
convert in memory. ``load(save(ir)) == ir`` exactly, and ``meta`` comes back too.

On-disk layout (``IR_VERSION`` 1)
---------------------------------
* ``opset_import`` holds ``ai.spikeport`` at the IR version; every node is in
  that domain. The ONNX graph is named after the IR.
* One NodeProto per IR node, in IR order. Its ``name`` and its single output
  tensor are the IR node name; ``op_type`` is the op kind (``Dense``, ``LIF``...).
* Scalar fields are attributes: ints as INT, ``source`` (provenance) as STRING,
  floats as 0-d float64 TENSOR attributes (ONNX FLOAT attributes are float32,
  which would not round-trip). Fields of the fixed-point record are prefixed
  ``fixed.`` (``fixed.vth``); a node without ``fixed.`` fields is float-only.
* Arrays are float64/int64 initializers named ``<node>.<field>``
  (``hidden.weight``, ``hidden.fixed.weights``), listed after the node's edges
  among its inputs, so viewers draw them on the node.
* Edges: a node's inputs begin with the output tensors of its sources, in IR
  predecessor order. ONNX requires nodes to be topologically sorted, so an
  edge whose source does not come before its target in IR order (a recurrent
  edge, or a self loop) reads the graph input ``<source>:recurrent`` instead,
  which stands for that source's output. Every IR graph, cyclic or not, is
  therefore a valid ONNX graph. The graph outputs are the Output nodes.
* ``metadata_props["spikeport.meta"]`` holds ``IR.meta`` as JSON (numpy
  scalars and arrays become numbers and lists). It is serialized last, so a
  file truncated at a field boundary is recognised by its absence.

Every problem with a file raises a one-line `SpikeportError` naming the file
and, where there is one, the node.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import typing
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from models.errors import SpikeportError
from toolchain import formats
from toolchain import ir as irm
from toolchain.ir import passes
from toolchain.files import atomic_path

ONNX_IR_VERSION = 10  # the ONNX file-format version written (readable by onnx >= 1.16)
RECURRENT = ":recurrent"  # suffix of the graph inputs that carry recurrent edges
META_KEY = "spikeport.meta"
FIXED_PREFIX = "fixed."


# ------------------------------------------------------------------ public API
def save(ir: irm.IR, path) -> None:
    """Write ``ir`` to ``path`` as ONNX, atomically (no partial file on failure)."""
    model = to_model(ir)
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp))


def load(path) -> irm.IR:
    """Read an IR file written by `save`; refuse anything else with a `SpikeportError`."""
    return from_model(_read(path), where=str(path))


def is_fixed_file(path) -> bool:
    """Whether the IR file at ``path`` holds fixed-point parameters (as ``IR.is_fixed``).

    Cheap: looks at node attributes only and converts no array; it does not
    validate the rest of the file (`load` does).
    """
    model = _read(path)
    _check_opset(model, str(path))
    parametric = {kind for kind, cls in irm.OP_TYPES.items() if issubclass(cls, (irm.Synapse, irm.Neuron))}
    return all(any(a.name.startswith(FIXED_PREFIX) for a in node.attribute)
               for node in model.graph.node if node.op_type in parametric)


def to_model(ir: irm.IR) -> onnx.ModelProto:
    """The ONNX model for ``ir`` (layout in the module docstring)."""
    _validate(ir, ir.name)
    pos = {name: i for i, name in enumerate(ir.graph.nodes)}
    nodes, initializers, recurrent = [], [], {}
    for name, op in ir.nodes():
        node, arrays = _encode_node(name, op, _edge_tensors(ir, name, pos, recurrent))
        nodes.append(node)
        initializers += arrays
    _check_unique_tensor_names(ir, initializers, recurrent)
    graph = helper.make_graph(
        nodes, ir.name, initializer=initializers,
        inputs=[_value_info(src + RECURRENT, n) for src, n in recurrent.items()],
        outputs=[_value_info(name, op.n) for name, op in ir.nodes(irm.Output)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(irm.IR_DOMAIN, irm.IR_VERSION)],
                              producer_name="spikeport", ir_version=ONNX_IR_VERSION)
    helper.set_model_props(model, {META_KEY: meta_to_json(ir.meta, ir.name)})
    _check_onnx(model, ir.name)
    return model


def from_model(model: onnx.ModelProto, where: str = "ONNX model") -> irm.IR:
    """The IR held by ``model``; ``where`` (a file name) prefixes every error message."""
    _check_opset(model, where)
    props = {p.key: p.value for p in model.metadata_props}
    if META_KEY not in props:
        raise SpikeportError(f"{where}: truncated, or not written by spikeport (no '{META_KEY}' metadata)")
    ir = irm.IR(model.graph.name, meta=meta_from_json(props[META_KEY], where))
    for node in model.graph.node:
        _check_node_header(node, where, ir)
        ir.graph.add_node(node.name, op=None)
    params = {init.name: init for init in model.graph.initializer}
    recurrent = {vi.name for vi in model.graph.input if vi.name.endswith(RECURRENT)}
    pos = {name: i for i, name in enumerate(ir.graph.nodes)}
    for node in model.graph.node:
        edges, arrays = _split_inputs(node, pos, params, recurrent, f"{where}: node {node.name!r} ({node.op_type})")
        ir.graph.nodes[node.name]["op"] = _decode_op(node, arrays, where)
        ir.graph.add_edges_from((src, node.name) for src in edges)
    _validate(ir, where)
    _check_onnx(model, where)
    return ir


def meta_to_json(meta: dict, where: str) -> str:
    """``IR.meta`` as JSON text; numpy scalars and arrays become numbers and lists."""
    try:
        return json.dumps(meta, default=_jsonable)
    except (TypeError, ValueError) as e:
        raise SpikeportError(f"{where}: IR meta cannot be written as JSON ({e})") from None


def meta_from_json(text: str, where: str) -> dict:
    """Inverse of `meta_to_json`, refusing text that is not a JSON object."""
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpikeportError(f"{where}: IR meta is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise SpikeportError(f"{where}: IR meta is a JSON {type(meta).__name__}, expected an object")
    return meta


# -------------------------------------------------------------- record schema
@functools.lru_cache(maxsize=None)
def _schema(cls) -> dict:
    """Field name -> int | float | str | np.ndarray | a fixed-point record class."""
    hints = typing.get_type_hints(cls)
    return {f.name: _unwrap_optional(hints[f.name]) for f in dataclasses.fields(cls)}


def _unwrap_optional(hint):
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint


def _flatten(record, prefix: str = "") -> tuple[dict, dict]:
    """(scalars, arrays) of a record, keyed by dotted field path; None fields are absent."""
    scalars, arrays = {}, {}
    for name, kind in _schema(type(record)).items():
        value, key = getattr(record, name), prefix + name
        if value is None:
            continue
        if dataclasses.is_dataclass(kind):
            sub_scalars, sub_arrays = _flatten(value, key + ".")
            scalars.update(sub_scalars)
            arrays.update(sub_arrays)
        elif kind is np.ndarray:
            arrays[key] = value
        else:
            scalars[key] = (kind, value)
    return scalars, arrays


# ------------------------------------------------------------------- encoding
def _edge_tensors(ir: irm.IR, name: str, pos: dict, recurrent: dict) -> list[str]:
    """The tensors ``name`` reads its sources from; a recurrent edge's source goes into ``recurrent``."""
    tensors = []
    for src in ir.inputs(name):
        if pos[src] < pos[name]:
            tensors.append(src)
        else:
            tensors.append(src + RECURRENT)
            recurrent[src] = ir.op(src).size
    return tensors


def _encode_node(name: str, op: irm.Op, edges: list[str]) -> tuple[onnx.NodeProto, list[TensorProto]]:
    scalars, arrays = _flatten(op)
    tensors = [numpy_helper.from_array(np.ascontiguousarray(a), f"{name}.{key}") for key, a in arrays.items()]
    node = helper.make_node(op.kind, edges + [t.name for t in tensors], [name], name=name, domain=irm.IR_DOMAIN)
    node.attribute.extend(_attribute(name, key, kind, value) for key, (kind, value) in scalars.items())
    return node, tensors


def _attribute(node: str, key: str, kind: type, value) -> AttributeProto:
    if kind is float:
        return helper.make_attribute(key, numpy_helper.from_array(np.array(value, dtype=np.float64)))
    if kind is int:
        if not isinstance(value, (int, np.integer)):
            raise SpikeportError(f"{node}: {key}={value!r} must be an integer")
        return helper.make_attribute(key, int(value))
    return helper.make_attribute(key, str(value))


def _value_info(name: str, n: int) -> onnx.ValueInfoProto:
    """A (time, n) float64 spike/activation tensor, for graph inputs and outputs."""
    return helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["T", n])


def _check_unique_tensor_names(ir: irm.IR, initializers, recurrent) -> None:
    names = Counter([*ir.graph.nodes, *(t.name for t in initializers), *(s + RECURRENT for s in recurrent)])
    for name, count in names.items():
        if count > 1 or not name:
            raise SpikeportError(
                f"{ir.name}: ONNX tensor name {name!r} is empty or used twice; rename the node "
                f"(node names must not look like '<node>.<field>' or '<node>{RECURRENT}')")


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ------------------------------------------------------------------- decoding
def _read(path) -> onnx.ModelProto:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpikeportError(f"{path}: no such file") from None
    except OSError as e:
        raise SpikeportError(f"{path}: cannot read ({e.strerror})") from None
    try:
        model = onnx.load_model_from_string(data)
    except DecodeError:
        raise SpikeportError(f"{path}: not an ONNX file, or truncated (it does not parse)") from None
    _check_text(model, str(path))
    return model


def _check_text(model: onnx.ModelProto, where: str) -> None:
    """Refuse a name or metadata text that is not valid UTF-8 (protobuf then hands back bytes)."""
    graph = model.graph
    texts = [graph.name, *(p.key for p in model.metadata_props), *(p.value for p in model.metadata_props),
             *(t.name for t in graph.initializer), *(v.name for v in (*graph.input, *graph.output))]
    for node in graph.node:
        texts += [node.name, node.op_type, node.domain, *node.input, *node.output, *(a.name for a in node.attribute)]
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise SpikeportError(f"{where}: a name or metadata text ({bytes(bad)[:24]!r}...) is not valid UTF-8; "
                             "the file is corrupt")


def _check_opset(model: onnx.ModelProto, where: str) -> None:
    versions = {o.domain: o.version for o in model.opset_import}
    if irm.IR_DOMAIN not in versions:
        raise SpikeportError(f"{where}: not a spikeport IR file (no '{irm.IR_DOMAIN}' opset import)")
    version = versions[irm.IR_DOMAIN]
    if version > irm.IR_VERSION:
        raise SpikeportError(f"{where}: was written by IR version {version}; "
                             f"this spikeport reads up to {irm.IR_VERSION}")
    if version < 1:
        raise SpikeportError(f"{where}: invalid IR version {version}")


def _check_node_header(node: onnx.NodeProto, where: str, ir: irm.IR) -> None:
    if node.domain != irm.IR_DOMAIN:
        raise SpikeportError(f"{where}: node {node.name!r} is in op domain {node.domain or 'ai.onnx'!r}, "
                             f"not '{irm.IR_DOMAIN}'")
    if node.op_type not in irm.OP_TYPES:
        raise SpikeportError(f"{where}: node {node.name!r} has unknown op type {node.op_type!r} "
                             f"(known: {', '.join(irm.OP_TYPES)})")
    if not node.name or list(node.output) != [node.name] or node.name in ir.graph:
        raise SpikeportError(f"{where}: node {node.name!r} ({node.op_type}) must have a unique name "
                             f"and one output of the same name, has {list(node.output)}")


def _split_inputs(node, pos: dict, params: dict, recurrent: set, where: str) -> tuple[list[str], dict]:
    """(source node names, {field path: array}) of one node's ONNX inputs."""
    edges, arrays, prefix = [], {}, node.name + "."
    for tensor in node.input:
        if tensor in pos and pos[tensor] < pos[node.name]:
            edges.append(tensor)
        elif tensor in recurrent and tensor.removesuffix(RECURRENT) in pos:
            edges.append(tensor.removesuffix(RECURRENT))
        elif tensor.startswith(prefix) and tensor in params:
            arrays[tensor[len(prefix):]] = _array(params[tensor], where)
        elif tensor.startswith(prefix):
            raise SpikeportError(f"{where}: missing initializer {tensor!r}")
        else:
            raise SpikeportError(f"{where}: input {tensor!r} is neither an earlier node, a graph input "
                                 f"'<node>{RECURRENT}' nor a parameter '{prefix}<field>'")
    return edges, arrays


def _array(tensor: TensorProto, where: str) -> np.ndarray:
    if tensor.data_location == TensorProto.EXTERNAL:
        raise SpikeportError(f"{where}: initializer {tensor.name!r} uses external data, which spikeport does not read")
    try:
        array = numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as e:
        raise SpikeportError(f"{where}: initializer {tensor.name!r} is corrupt ({e})") from None
    if array.dtype.kind not in "biuf":
        raise SpikeportError(f"{where}: initializer {tensor.name!r} holds {array.dtype} values, "
                             "expected numbers (float64 or int64)")
    return array


def _decode_op(node: onnx.NodeProto, arrays: dict, where: str) -> irm.Op:
    here = f"{where}: node {node.name!r} ({node.op_type})"
    scalars = {a.name: a for a in node.attribute}
    op = _build(irm.OP_TYPES[node.op_type], scalars, arrays, "", here)
    unknown = sorted(scalars) + [f"{node.name}.{key}" for key in sorted(arrays)]
    if unknown:
        raise SpikeportError(f"{here}: unknown attribute or initializer {unknown[0]!r}")
    return op


def _build(cls, scalars: dict, arrays: dict, prefix: str, here: str):
    """Construct ``cls`` from the attributes and arrays under ``prefix``, consuming them."""
    kwargs, raw = {}, {}
    for name, kind in _schema(cls).items():
        key = prefix + name
        if dataclasses.is_dataclass(kind):
            present = any(k.startswith(key + ".") for k in (*scalars, *arrays))
            kwargs[name] = _build(kind, scalars, arrays, key + ".", here) if present else None
        elif kind is np.ndarray:
            if key not in arrays:
                raise SpikeportError(f"{here}: missing initializer for parameter {key!r}")
            kwargs[name] = raw[name] = arrays.pop(key)
        else:
            if key not in scalars:
                raise SpikeportError(f"{here}: missing attribute {key!r}")
            kwargs[name] = _scalar(scalars.pop(key), kind, here)
    try:
        record = cls(**kwargs)
    except SpikeportError as e:
        raise SpikeportError(f"{here}: {prefix}{e}") from None
    for name, array in raw.items():
        if array.dtype != getattr(record, name).dtype:
            raise SpikeportError(f"{here}: parameter {prefix + name!r} is {array.dtype}, "
                                 f"expected {getattr(record, name).dtype}")
    return record


def _scalar(attr: AttributeProto, kind: type, here: str):
    if kind is int and attr.type == AttributeProto.INT:
        return int(attr.i)
    if kind is str and attr.type == AttributeProto.STRING:
        try:
            return attr.s.decode("utf-8")
        except UnicodeDecodeError:
            raise SpikeportError(f"{here}: attribute {attr.name!r} is not UTF-8 text") from None
    if kind is float and attr.type == AttributeProto.TENSOR and attr.t.data_type == TensorProto.DOUBLE:
        value = numpy_helper.to_array(attr.t)
        if value.shape == ():
            return float(value)
    expected = {int: "an INT", str: "a STRING", float: "a 0-d float64 TENSOR"}[kind]
    raise SpikeportError(f"{here}: attribute {attr.name!r} must be {expected} attribute")


# ----------------------------------------------------------------- validation
def _validate(ir: irm.IR, where: str) -> None:
    """Array shapes agree within every node, and sizes along every edge."""
    for name, op in ir.nodes():
        _check_node_shapes(name, op, where)
    try:
        passes.infer_shapes(ir)
    except SpikeportError as e:
        raise SpikeportError(f"{where}: {e}") from None


def _check_node_shapes(name: str, op: irm.Op, where: str) -> None:
    if isinstance(op, irm.Synapse):
        if op.weight.ndim != 2:
            raise SpikeportError(f"{where}: node {name!r} ({op.kind}): weight has shape {op.weight.shape}, "
                                 f"expected (n_out, n_in)")
        expected = op.weight.shape
    else:
        expected = (op.size,)
    for key, array in _flatten(op)[1].items():
        if array.shape != expected:
            raise SpikeportError(f"{where}: node {name!r} ({op.kind}): {key} has shape {array.shape}, "
                                 f"expected {expected}")


def _check_onnx(model: onnx.ModelProto, where: str) -> None:
    try:
        onnx.checker.check_model(model, full_check=False)
    except onnx.checker.ValidationError as e:
        message = " ".join(str(e).split())
        raise SpikeportError(f"{where}: not a valid ONNX model: {message}") from None


formats.register("onnx", (".onnx",), load, save, "spikeport IR as ONNX (custom op domain ai.spikeport)")
