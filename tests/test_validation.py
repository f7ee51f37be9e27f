"""Everything a user can hand spikeport is checked at the boundary, before any engine runs.

One table of invalid networks (`CASES`: each a valid probe network with one value made
wrong, and the exact one-line message "node: param=value is outside limit" it must
give). Each is refused in the same words by `toolchain.formats.load` (prefixed with the
file), by ``spikeport simulate`` and ``verify`` (exit 2, one stderr line, no output
file), by ``spikeport inspect`` (which still shows the network and lists every
violation, exit 2), and, as an in-memory IR, by both engines' entry points
(`backends.emulator.run`, `backends.lava.run_lava`). ``check=False`` is the escape hatch
for tests probing Lava's storage arithmetic outside Loihi's ranges.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import helper

from backends import emulator
from models.errors import SpikeportError
from toolchain import formats
from toolchain import ir as irm
from toolchain.cli import main
from toolchain.formats import onnx as onnx_format

NAN, INF = float("nan"), float("inf")
FINITE = "(-inf, inf) (float parameters must be finite)"
MIXED_WEIGHTS = "[-256, 255] (8-bit, sign mode MIXED)"
DU = "[-1, 4095] (12 bits; -1 = no current decay)"
VTH = "[0, 131071] (17 bits)"


# ------------------------------------------------------------------ networks
def network(fixed: bool = True, reset_interval=None) -> irm.IR:
    """A valid Input (2) -> Dense "syn" -> LIF "n" (2) -> Output "out", fixed or float."""
    zeros = np.zeros(2, dtype=np.int64)
    syn = irm.Dense(np.array([[1.0, -1.0], [0.5, 0.25]]),
                    fixed=irm.SynapseFixed(np.array([[64, -64], [32, 16]]), sign_mode=1) if fixed else None)
    lif = dict(du=0.25, dv=0.125, vth=1.0, bias=np.zeros(2),
               fixed=irm.LIFFixed(du=1023, dv=512, vth=64, bias_mant=zeros, bias_exp=zeros, u=zeros, v=zeros)
               if fixed else None)
    ir = irm.IR("probe")
    ir.add("in", irm.Input(2))
    ir.add("syn", syn, ["in"])
    ir.add("n", irm.LIF(2, **lif) if reset_interval is None else irm.LIFReset(2, reset_interval=reset_interval,
                                                                                **lif), ["syn"])
    ir.add("out", irm.Output(2), ["n"])
    return ir


def inputs() -> np.ndarray:
    """(B=1, T=4, N=2) spikes."""
    return np.ones((1, 4, 2), dtype=np.int64)


@dataclass(frozen=True)
class Case:
    """A network made invalid by ``make`` and the one-line message every entry point gives."""

    id: str
    make: Callable[[], irm.IR]
    message: str


def fixed_with(node: str, **values) -> Callable[[], irm.IR]:
    """The fixed network with fields of ``node``'s fixed-point record (or the op itself) set."""
    def make():
        ir = network()
        op = ir.op(node)
        for key, value in values.items():
            target = op.fixed if hasattr(op.fixed, key) else op
            setattr(target, key, np.asarray(value) if isinstance(value, list) else value)
        return ir
    return make


def float_with(fixed: bool, node: str, key: str, value) -> Callable[[], irm.IR]:
    """The float (or fixed) network with one float parameter (an array's first entry) set."""
    def make():
        ir = network(fixed)
        op = ir.op(node)
        if isinstance(getattr(op, key), np.ndarray):
            getattr(op, key).flat[0] = value
        else:
            setattr(op, key, value)
        return ir
    return make


def unreachable() -> irm.IR:
    ir = network()
    zeros = np.zeros(1, dtype=np.int64)
    ir.add("lonely", irm.LIF(1, du=0.0, dv=0.0, vth=1.0,
                             fixed=irm.LIFFixed(-1, 0, 64, zeros, zeros, zeros, zeros)))
    return ir


def _float_cases() -> list:
    out = []
    for fixed in (False, True):
        kind = "fixed" if fixed else "float"
        out += [
            Case(f"nan-weight-{kind}", float_with(fixed, "syn", "weight", NAN), f"syn: weight=nan is outside {FINITE}"),
            Case(f"inf-weight-{kind}", float_with(fixed, "syn", "weight", -INF),
                 f"syn: weight=-inf is outside {FINITE}"),
            Case(f"nan-bias-{kind}", float_with(fixed, "n", "bias", NAN), f"n: bias=nan is outside {FINITE}"),
            Case(f"inf-bias-{kind}", float_with(fixed, "n", "bias", INF), f"n: bias=inf is outside {FINITE}"),
            Case(f"nan-du-{kind}", float_with(fixed, "n", "du", NAN),
                 "n: du=nan is outside [0, 1] (float: fraction of u lost per step)"),
            Case(f"inf-dv-{kind}", float_with(fixed, "n", "dv", INF),
                 "n: dv=inf is outside [0, 1] (float: fraction of v lost per step)"),
            Case(f"nan-vth-{kind}", float_with(fixed, "n", "vth", NAN), f"n: vth=nan is outside {FINITE}"),
            Case(f"inf-vth-{kind}", float_with(fixed, "n", "vth", INF), f"n: vth=inf is outside {FINITE}"),
        ]
    return out


CASES = [
    Case("weight-300", fixed_with("syn", weights=[[300, 0], [0, 0]]), f"syn: weights=300 is outside {MIXED_WEIGHTS}"),
    Case("weight-minus-1000", fixed_with("syn", weights=[[-1000, 0], [0, 0]]),
         f"syn: weights=-1000 is outside {MIXED_WEIGHTS}"),
    Case("weight-2**40", fixed_with("syn", weights=[[1 << 40, 0], [0, 0]]),
         f"syn: weights={1 << 40} is outside {MIXED_WEIGHTS}"),
    Case("weight_exp-20", fixed_with("syn", weight_exp=20), "syn: weight_exp=20 is outside [-8, 7]"),
    Case("num_weight_bits-0", fixed_with("syn", num_weight_bits=0), "syn: num_weight_bits=0 is outside [1, 8]"),
    Case("num_weight_bits-9", fixed_with("syn", num_weight_bits=9), "syn: num_weight_bits=9 is outside [1, 8]"),
    Case("excitatory-negative-weights", fixed_with("syn", sign_mode=2),
         "syn: weights=-64 is outside [0, 255] (8-bit, sign mode EXCITATORY)"),
    Case("sign_mode-7", fixed_with("syn", sign_mode=7), "syn: sign_mode=7 is outside [0, 3]"),
    Case("num_message_bits-40", fixed_with("syn", num_message_bits=40), "syn: num_message_bits=40 is outside [0, 32]"),
    Case("du-minus-2", fixed_with("n", du=-2), f"n: du=-2 is outside {DU}"),
    Case("du-4096", fixed_with("n", du=4096), f"n: du=4096 is outside {DU}"),
    Case("du-100000", fixed_with("n", du=100000), f"n: du=100000 is outside {DU}"),
    Case("dv-minus-1", fixed_with("n", dv=-1), "n: dv=-1 is outside [0, 4095] (12 bits)"),
    Case("dv-4096", fixed_with("n", dv=4096), "n: dv=4096 is outside [0, 4095] (12 bits)"),
    Case("vth-minus-1", fixed_with("n", vth=-1), f"n: vth=-1 is outside {VTH}"),
    Case("vth-2**17", fixed_with("n", vth=1 << 17), f"n: vth=131072 is outside {VTH}"),
    Case("vth-2**40", fixed_with("n", vth=1 << 40), f"n: vth={1 << 40} is outside {VTH}"),
    Case("bias_mant-40000", fixed_with("n", bias_mant=[40000, 0]),
         "n: bias_mant=40000 is outside [-4096, 4095] (13 bits)"),
    Case("bias_exp-8", fixed_with("n", bias_exp=[8, 0]), "n: bias_exp=8 is outside [0, 7] (3 bits)"),
    Case("u-2**24", fixed_with("n", u=[1 << 24, 0]), "n: u=16777216 is outside [-8388607, 8388608] (24 bits)"),
    Case("v-2**23", fixed_with("n", v=[1 << 23, 0]), "n: v=8388608 is outside [-8388607, 8388607] (24 bits)"),
    Case("unreachable-lif", unreachable, "lonely: not reachable from any input"),
    Case("reset_interval-0", lambda: network(reset_interval=0), "n: reset_interval=0 is outside [1, inf] (steps)"),
    Case("float-du-minus-2", float_with(False, "n", "du", -2.0),
         "n: du=-2 is outside [0, 1] (float: fraction of u lost per step)"),
    Case("float-vth-negative", float_with(False, "n", "vth", -0.5), "n: vth=-0.5 is outside [0, inf] (float threshold)"),
    Case("empty-graph", lambda: irm.IR("probe"), "probe: the graph has no Input node"),
    *_float_cases(),
]


def case_ids(cases):
    return [c.id for c in cases]


def save(case: Case, tmp_path) -> str:
    """Write the case's network to ``tmp_path/net.onnx`` (writing checks shapes only)."""
    path = tmp_path / "net.onnx"
    formats.save(case.make(), path)
    return str(path)


def _string_initializer(path) -> str:
    """A network file whose ``syn.weight`` initializer holds strings."""
    model = onnx_format.to_model(network())
    init = next(i for i in model.graph.initializer if i.name == "syn.weight")
    init.CopyFrom(helper.make_tensor("syn.weight", onnx.TensorProto.STRING, [2, 2], [b"a", b"b", b"c", b"d"]))
    onnx.save_model(model, str(path))
    return f"{path}: node 'syn' (Dense): initializer 'syn.weight' holds object values, expected numbers (float64 or int64)"


def _quantization_meta(value) -> Callable:
    def write(path) -> None:
        ir = network()
        ir.meta["quantization"] = value
        formats.save(ir, path)
    return write


GOOD_REPORT = dict(node="n", lam=1.0, limited_by="state", du=1023, dv=512, vth=64, vth_error=0.0,
                   bias_max_error=0.0, bias_clipped=0, max_abs_u=1.0, max_abs_v=1.0, state_use=0.1,
                   synapses=[dict(node="syn", weight_exp=0, sign_mode="MIXED", range_use=0.25, clipped=0,
                                  rounded_to_zero=0, nonzero=4, max_rel_error=0.0)])
GARBAGE_META = [
    ("not-an-object", "garbage", "quantization metadata: is a JSON str, expected an object {node: report}"),
    ("mistyped-field", {"n": {**GOOD_REPORT, "lam": "big"}}, "quantization metadata for 'n': lam='big' is not float"),
    ("missing-field", {"n": {"lam": 1.0}}, "quantization metadata for 'n': missing field 'node'"),
    ("bad-synapse", {"n": {**GOOD_REPORT, "synapses": [7]}},
     "quantization metadata for 'n', synapse 0: is a JSON int, expected an object"),
]


# ------------------------------------------------------------- formats.load
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_load_refuses_an_invalid_network_in_one_line_naming_node_parameter_value_and_limit(case, tmp_path):
    path = save(case, tmp_path)
    with pytest.raises(SpikeportError) as err:
        formats.load(path)
    assert str(err.value) == f"{path}: {case.message}"


def test_load_refuses_string_typed_initializers(tmp_path):
    message = _string_initializer(tmp_path / "net.onnx")
    with pytest.raises(SpikeportError) as err:
        formats.load(tmp_path / "net.onnx")
    assert str(err.value) == message


@pytest.mark.parametrize("value,message", [m[1:] for m in GARBAGE_META], ids=[m[0] for m in GARBAGE_META])
def test_load_refuses_garbage_quantization_metadata(value, message, tmp_path):
    _quantization_meta(value)(tmp_path / "net.onnx")
    with pytest.raises(SpikeportError) as err:
        formats.load(tmp_path / "net.onnx")
    assert str(err.value) == f"{tmp_path / 'net.onnx'}: {message}"


def test_a_well_formed_quantization_report_loads(tmp_path):
    _quantization_meta({"n": GOOD_REPORT})(tmp_path / "net.onnx")
    assert formats.load(tmp_path / "net.onnx").meta["quantization"]["n"]["lam"] == 1.0


@pytest.mark.parametrize("key,value,message", [
    ("weight", NAN, f"syn: weight=nan is outside {FINITE}"),
    ("du", 1.5, "NIR CubaLIF 'n': du = dt/tau_syn = 1/0.666667 = 1.5 for neuron 0 is outside [0, 1] (a time "
                "constant shorter than the step): give the producer's time step (--nir-dt; --nir-from snntorch "
                "reads dt=1e-4, --nir-from norse its tau convention)"),
])
def test_load_refuses_an_invalid_nir_file(key, value, message, tmp_path):
    ir = float_with(False, "syn" if key == "weight" else "n", key, value)()
    formats.save(ir, tmp_path / "net.nir")
    with pytest.raises(SpikeportError) as err:
        formats.load(tmp_path / "net.nir")
    assert str(err.value) == f"{tmp_path / 'net.nir'}: {message}"


# ---------------------------------------------------------------------- CLI
def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_simulate_refuses_an_invalid_network_with_exit_2_one_line_and_no_output(case, tmp_path, capsys):
    path = save(case, tmp_path)
    np.save(tmp_path / "x.npy", inputs())
    backend = "emulator" if case.make().is_fixed else "float"
    code = main(["simulate", path, "--backend", backend, "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "out.npz")])
    assert code == 2
    assert _one_error_line(capsys) == f"spikeport: error: {path}: {case.message}"
    assert not (tmp_path / "out.npz").exists()


def test_simulate_on_lava_refuses_a_nan_weight_in_a_fixed_network_before_lava_starts(tmp_path, capsys):
    case = next(c for c in CASES if c.id == "nan-weight-fixed")
    path = save(case, tmp_path)
    np.save(tmp_path / "x.npy", inputs())
    code = main(["simulate", path, "--backend", "lava", "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "out.npz")])
    assert code == 2
    assert _one_error_line(capsys) == f"spikeport: error: {path}: {case.message}"
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_verify_refuses_an_invalid_network_with_exit_2_one_line_and_no_report(case, tmp_path, capsys):
    path = save(case, tmp_path)
    code = main(["verify", path, "--report", str(tmp_path / "report")])
    assert code == 2
    assert _one_error_line(capsys) == f"spikeport: error: {path}: {case.message}"
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_inspect_shows_an_invalid_network_names_its_violation_and_exits_2(case, tmp_path, capsys):
    path = save(case, tmp_path)
    assert main(["inspect", path]) == 2
    out, err = capsys.readouterr()
    assert "IR 'probe'" in out
    assert out.rstrip().endswith(f"violations (1):\n  {case.message}")
    assert err == f"spikeport: error: {path}: 1 violation(s), listed above; the first: {case.message}\n"


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_inspect_json_lists_the_violation_and_exits_2(case, tmp_path, capsys):
    path = save(case, tmp_path)
    assert main(["inspect", path, "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["violations"] == [case.message]
    assert data["name"] == "probe"


def test_inspect_names_every_violation_not_only_the_first(tmp_path, capsys):
    ir = unreachable()
    ir.op("syn").fixed.weights[0, 0] = 300
    ir.op("syn").fixed.weight_exp = 20
    ir.op("n").fixed.vth = 1 << 17
    ir.op("n").bias[1] = NAN
    formats.save(ir, tmp_path / "net.onnx")
    assert main(["inspect", str(tmp_path / "net.onnx"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["violations"] == [
        "lonely: not reachable from any input",
        "syn: weight_exp=20 is outside [-8, 7]",
        f"syn: weights=300 is outside {MIXED_WEIGHTS}",
        f"n: bias=nan is outside {FINITE}",
        f"n: vth=131072 is outside {VTH}",
    ]


def test_inspect_of_a_valid_network_lists_no_violations_and_exits_0(tmp_path, capsys):
    formats.save(network(), tmp_path / "net.onnx")
    assert main(["inspect", str(tmp_path / "net.onnx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["violations"] == []
    assert main(["inspect", str(tmp_path / "net.onnx")]) == 0
    out, err = capsys.readouterr()
    assert "violations" not in out and err == ""


@pytest.mark.parametrize("value,message", [m[1:] for m in GARBAGE_META], ids=[m[0] for m in GARBAGE_META])
def test_inspect_shows_garbage_quantization_metadata_as_unreadable(value, message, tmp_path, capsys):
    path = tmp_path / "net.onnx"
    _quantization_meta(value)(path)
    assert main(["inspect", str(path)]) == 2
    out, err = capsys.readouterr()
    assert f"quantization:\n  unreadable ({message})" in out
    assert err == f"spikeport: error: {path}: 1 violation(s), listed above; the first: {message}\n"


def test_inspect_refuses_an_unparsable_file_in_one_line(tmp_path, capsys):
    message = _string_initializer(tmp_path / "net.onnx")
    assert main(["inspect", str(tmp_path / "net.onnx")]) == 2
    assert _one_error_line(capsys) == f"spikeport: error: {message}"


# ---------------------------------------------------------------- engines
@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_the_emulator_refuses_an_invalid_in_memory_network(case):
    ir = case.make()
    mode = "fixed" if ir.is_fixed else "float"
    with pytest.raises(SpikeportError) as err:
        emulator.run(ir, inputs(), mode=mode)
    assert str(err.value) == case.message


def test_the_emulator_escape_hatch_runs_what_validation_refuses_as_lava_would():
    """``check=False`` (arithmetic probes only): weight 300 is clipped to 255 and loses its LSB
    (MIXED sign mode, 8 bits), as Lava quantises it."""
    ir = next(c for c in CASES if c.id == "weight-300").make()
    ir.op("n").fixed.vth = 1 << 16
    u = emulator.run(ir, inputs(), check=False)["n/u"][0, 1, 0]
    assert u == 64 * 254


LAVA_CASES = [c for c in CASES if c.id in ("weight-300", "vth-2**17", "nan-weight-fixed", "num_weight_bits-0")]


@pytest.mark.lava
@pytest.mark.parametrize("case", LAVA_CASES, ids=case_ids(LAVA_CASES))
def test_lava_refuses_what_the_emulator_refuses_before_it_starts(case):
    from backends.lava import run_lava

    with pytest.raises(SpikeportError) as err:
        run_lava(case.make(), inputs())
    assert str(err.value) == case.message


TORCH_CASES = [c for c in CASES if c.id in ("weight-300", "nan-weight-fixed", "unreachable-lif")]


@pytest.mark.parametrize("engine", ["float", "torch-fixed"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=case_ids(TORCH_CASES))
def test_the_torch_engines_refuse_an_invalid_in_memory_network_before_the_model_runs(case, engine):
    from toolchain import engines

    never_run = object()  # refused before the model is touched
    with pytest.raises(SpikeportError) as err:
        engines.run(engine, case.make(), inputs(), model=never_run)
    assert str(err.value) == case.message
