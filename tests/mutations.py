"""Bad-input fuzzing helpers for `tests/test_bad_input.py`: the valid artefacts, their mutations,
and the CLI harness that checks spikeport's refusal contract.

Every mutation takes the bytes (or arrays) of a VALID artefact and returns the bytes of a bad
one; nothing here touches the original files. `run_cli` runs ``toolchain.cli.main`` in-process
in a fresh working directory and records exit code, stderr lines (a Python warning counts as a
stderr line: uncaught, it would be printed there), any escaped exception, the files the run left
in the watched folders and whether the inputs changed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import pickle
import re
import traceback
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models import fixed_point as fx

ERROR_LINE = re.compile(r"^spikeport( [a-z-]+)?: error: \S")

# --------------------------------------------------------------------------- harness


@dataclasses.dataclass
class Outcome:
    code: object
    stderr: list
    stdout: str
    escaped: str  # traceback text of an exception that left main(), else ""
    new_files: list
    changed_inputs: list

    def describe(self) -> str:
        return (f"exit={self.code!r} stderr={self.stderr!r} new_files={self.new_files} "
                f"changed_inputs={self.changed_inputs}\n{self.escaped}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<absent>"


def _listing(folders) -> set:
    found = set()
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                found.add(os.path.join(root, name))
    return found


def run_cli(argv, cwd: Path, inputs=(), watch=()) -> Outcome:
    """``toolchain.cli.main(argv)`` with cwd=``cwd``; ``inputs`` must stay byte-identical and no
    new file may appear in ``cwd`` or ``watch`` (checked by the caller through the Outcome)."""
    from toolchain.cli import main

    inputs = [Path(p) for p in inputs]
    folders = [Path(cwd), *map(Path, watch)]
    before_hash = {p: _digest(p) for p in inputs}
    before = _listing(folders)
    err, out, escaped, code = io.StringIO(), io.StringIO(), "", None
    old = os.getcwd()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.chdir(cwd)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        except BaseException:  # noqa: BLE001 - an escaped exception is what we look for
            escaped = traceback.format_exc()
        finally:
            os.chdir(old)
    lines = [f"warning: {w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, ImportWarning))]
    lines += [line for line in err.getvalue().splitlines() if line.strip()]
    after = _listing(folders)
    changed = [str(p) for p in inputs if _digest(p) != before_hash[p]]
    return Outcome(code, lines, out.getvalue(), escaped, sorted(after - before), changed)


def refused(outcome: Outcome) -> bool:
    return (not outcome.escaped and outcome.code == 2 and len(outcome.stderr) == 1
            and bool(ERROR_LINE.match(outcome.stderr[0])) and "Traceback" not in outcome.stderr[0]
            and not outcome.new_files and not outcome.changed_inputs)


def assert_refused(outcome: Outcome) -> None:
    assert refused(outcome), "not refused by the contract: " + outcome.describe()


def assert_refused_or_works(outcome: Outcome) -> None:
    """A mutation that may leave the file valid: either exit 0 (inputs unchanged), or refused."""
    if outcome.code == 0 and not outcome.escaped:
        assert not outcome.changed_inputs, outcome.describe()
        assert not [s for s in outcome.stderr if s.startswith("warning:")], outcome.describe()
        return
    assert_refused(outcome)


def assert_works(outcome: Outcome) -> None:
    assert outcome.code == 0 and not outcome.escaped and not outcome.changed_inputs, outcome.describe()
    assert not [s for s in outcome.stderr if "error" in s], outcome.describe()


# --------------------------------------------------------------------------- a LIFReset IR


def reset_example():
    """input(5) -> Dense -> LIFReset(4) -> output, quantized (as `tests/conformance.example`,
    without importing Lava)."""
    from toolchain import ir as irm

    w = np.random.default_rng(1).integers(-30, 90, (4, 5))
    n = 4
    fixed = irm.LIFFixed(du=1024, dv=512, vth=60, bias_mant=np.arange(n) % 3, bias_exp=np.ones(n),
                         u=np.zeros(n), v=np.zeros(n))
    ir = irm.IR("example-LIFReset")
    ir.add("input", irm.Input(5))
    ir.add("syn", irm.Dense(w / 64.0, fixed=irm.SynapseFixed(w, weight_exp=0, sign_mode=1)), ["input"])
    ir.add("pop", irm.LIFReset(n, du=0.25, dv=0.125, vth=60 / 64, bias=(np.arange(n) % 3) * 2 / 64, fixed=fixed,
                               reset_interval=7, reset_offset=2), ["syn"])
    ir.add("output", irm.Output(4), ["pop"])
    return ir


# --------------------------------------------------------------------------- ONNX mutations

INT_ATTR_RANGES = {  # attribute -> inclusive valid range (Loihi 2), on Dense or LIF nodes
    "fixed.weight_exp": fx.WEIGHT_EXP_RANGE,
    "fixed.num_weight_bits": (1, 8),
    "fixed.sign_mode": (1, 3),
    "num_message_bits": (0, 32),
    "fixed.du": fx.DU_RANGE,
    "fixed.dv": fx.DV_RANGE,
    "fixed.vth": fx.VTH_RANGE,
}
INT_ARRAY_RANGES = {  # initializer field -> inclusive valid range
    "fixed.weights": (-256, 255),
    "fixed.bias_mant": fx.BIAS_MANT_RANGE,
    "fixed.bias_exp": fx.BIAS_EXP_RANGE,
    "fixed.u": (-fx.U_MAX + 1, fx.U_MAX),
    "fixed.v": (-fx.V_SAT, fx.V_SAT),
}
FLOAT_ATTRS = ("du", "dv", "vth")  # LIF float attributes (0-d float64 tensors)
FLOAT_ARRAYS = ("weight", "bias")  # float64 initializers
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def load_model(data: bytes) -> onnx.ModelProto:
    return onnx.load_model_from_string(data)


def _node_with_attr(model, attr: str, pick: int):
    nodes = [n for n in model.graph.node if any(a.name == attr for a in n.attribute)]
    return nodes[pick % len(nodes)]


def _initializers_with(model, field: str, pick: int):
    inits = [t for t in model.graph.initializer if t.name.endswith("." + field)
             and t.name[: -len(field) - 1] in {n.name for n in model.graph.node}]
    return inits[pick % len(inits)]


def set_int_attr(data: bytes, attr: str, value: int, pick: int = 0) -> bytes:
    model = load_model(data)
    node = _node_with_attr(model, attr, pick)
    next(a for a in node.attribute if a.name == attr).i = value
    return model.SerializeToString()


def set_float_attr(data: bytes, attr: str, value: float, pick: int = 0) -> bytes:
    model = load_model(data)
    node = _node_with_attr(model, attr, pick)
    next(a for a in node.attribute if a.name == attr).t.CopyFrom(numpy_helper.from_array(np.array(value, np.float64)))
    return model.SerializeToString()


def set_array_element(data: bytes, field: str, value, pick: int = 0, index: int = 0) -> bytes:
    model = load_model(data)
    tensor = _initializers_with(model, field, pick)
    array = numpy_helper.to_array(tensor).copy()
    array.flat[index % array.size] = value
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    return model.SerializeToString()


WRONG_DTYPES = ("string", "float32", "int32", "bool", "float16", "uint8")


def retype_initializer(data: bytes, field: str, dtype: str, pick: int = 0) -> bytes:
    model = load_model(data)
    tensor = _initializers_with(model, field, pick)
    array = numpy_helper.to_array(tensor)
    if dtype == "string":
        new = helper.make_tensor(tensor.name, TensorProto.STRING, array.shape, [b"x"] * array.size)
    else:
        new = numpy_helper.from_array(array.astype(dtype), tensor.name)
    tensor.CopyFrom(new)
    return model.SerializeToString()


def drop_node(data: bytes, pick: int) -> bytes:
    """Remove one node (its initializers stay: they then belong to no node)."""
    model = load_model(data)
    nodes = list(model.graph.node)
    del model.graph.node[pick % len(nodes)]
    return model.SerializeToString()


def drop_edge(data: bytes, pick: int) -> bytes:
    """Remove one node-to-node input (a synapse, neuron or Output loses its source)."""
    model = load_model(data)
    names = {n.name for n in model.graph.node}
    edges = [(i, j) for i, n in enumerate(model.graph.node) for j, t in enumerate(n.input) if t in names]
    i, j = edges[pick % len(edges)]
    del model.graph.node[i].input[j]
    return model.SerializeToString()


def non_utf8_name(data: bytes, where: str = "input") -> bytes:
    """The first node-to-node input (``where="input"``), the first node's name everywhere it
    occurs (``"name"``), or a string in the IR meta JSON (``"meta"``), made invalid UTF-8 at the same byte length (protobuf then hands Python
    bytes, not str: what a flipped byte in a name gives)."""
    marker = "\u00ff\u00fe\u00fd"  # 6 bytes in UTF-8, found nowhere in a spikeport file
    model = load_model(data)
    if where == "input":
        node = next(n for n in model.graph.node if n.input)
        node.input[0] = marker + node.input[0][3:]
    elif where == "meta":  # the IR meta JSON text
        prop = model.metadata_props[0]
        prop.value = prop.value[:-1] + ' , "x": "' + marker + '"}'
    else:
        old = model.graph.node[0].name
        for node in model.graph.node:
            node.name = marker + old[3:] if node.name == old else node.name
            for i, t in enumerate(node.input):
                node.input[i] = marker + old[3:] if t == old else t
            for i, t in enumerate(node.output):
                node.output[i] = marker + old[3:] if t == old else t
    out = model.SerializeToString()
    assert data.count(marker.encode()) == 0 and out.count(marker.encode()) >= 1
    return out.replace(marker.encode(), b"\xff\xbf\xfe\xbe\xfd\xbd")


def truncate(data: bytes, offset: int) -> bytes:
    return data[: offset % len(data)]


def flip_bytes(data: bytes, flips) -> bytes:
    buf = bytearray(data)
    for offset, mask in flips:
        buf[offset % len(buf)] ^= mask or 0xFF
    return bytes(buf)


# --------------------------------------------------------------------------- NIR mutations


def nir_nodes(path, dataset: str) -> list:
    """The node names of a .nir file that hold ``dataset`` (e.g. tau_syn, weight)."""
    with h5py.File(path, "r") as f:
        return sorted(k for k, g in f["node/nodes"].items() if dataset in g)


def nir_set(src: Path, dst: Path, node: str, dataset: str, value=None, index=None, shape=None) -> None:
    """Copy ``src`` to ``dst``, then set ``dataset`` of ``node``: every entry (``index`` None) or one
    entry to ``value``, or (``shape``) replace it with an array of that shape."""
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        group = f["node/nodes"][node]
        array = group[dataset][()].astype(np.float64)
        if shape is not None:
            array = np.resize(array, shape)
        elif index is None:
            array[...] = value
        else:
            array.flat[index % array.size] = value
        del group[dataset]
        group.create_dataset(dataset, data=array)


# --------------------------------------------------------------------------- checkpoints


def checkpoint_variant(src: Path, dst: Path, how: str) -> None:
    """Write a bad variant of the SuperSpike checkpoint ``src`` to ``dst``."""
    import torch

    payload = torch.load(src, map_location="cpu", weights_only=True)
    if how == "foreign-pickle":
        dst.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
        return
    if how == "foreign-zip":
        with zipfile.ZipFile(dst, "w") as z:
            z.writestr("data.txt", "not a checkpoint")
        return
    if how == "text":
        dst.write_text("spikeport-checkpoint\n")
        return
    if how == "empty":
        dst.write_bytes(b"")
        return
    if how == "plain-tensor":
        torch.save(torch.zeros(3), dst)
        return
    if how == "list-payload":
        torch.save([payload["format"], payload["version"]], dst)
        return
    if how.startswith("version="):
        payload["version"] = {"version=str": "one", "version=strnum": "1", "version=none": None,
                              "version=float-nan": float("nan"), "version=list": [1],
                              "version=newer": 99}[how]
    elif how.startswith("drop:"):
        del payload[how[5:]]
    elif how.startswith("kind="):
        payload["format"] = {"kind=ttfs": "spikeport-ttfs-checkpoint",
                             "kind=spike-transform": "spikeport-spike-transform-checkpoint",
                             "kind=bogus": "spikeport-bogus", "kind=int": 42, "kind=none": None,
                             "kind=foreign": "someone-else"}[how]
    elif how.startswith("nan:") or how.startswith("inf:"):
        value = float("nan") if how.startswith("nan:") else float("inf")
        key = [k for k in payload["state_dict"] if payload["state_dict"][k].is_floating_point()]
        key = key[int(how[4:]) % len(key)]
        payload["state_dict"][key] = torch.full_like(payload["state_dict"][key], value)
    elif how == "state-dict-shape":
        key = next(k for k in payload["state_dict"] if payload["state_dict"][k].ndim == 2)
        payload["state_dict"][key] = payload["state_dict"][key][:, :-1].clone()
    elif how == "state-dict-missing":
        payload["state_dict"].pop(next(iter(payload["state_dict"])))
    elif how == "config-not-dict":
        payload["config"] = "a string"
    elif how == "config-zero-width":
        payload["config"]["layers"][0]["n"] = 0
    elif how == "meta-not-dict":
        payload["meta"] = [1, 2]
    else:
        raise ValueError(how)
    torch.save(payload, dst)


# --------------------------------------------------------------------------- .npy


def npy_with_header(path: Path, shape, dtype="bool", data: bytes = b"") -> None:
    """A .npy whose header claims ``shape`` and ``dtype``, followed by ``data`` (usually far less)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(shape)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(data)
