"""Bad input on every path: the refusal contract, pinned by mutation fuzzing of VALID artefacts.

Contract, for every bad artefact through every verb that reads it (``toolchain.cli.main`` in
process; three cases in a subprocess to see the real stderr): exit code 2; exactly one stderr
line, ``spikeport: error: ...`` (or argparse's ``spikeport <verb>: error: ...``), and no Python
warning before it (in process a warning counts as a stderr line); no traceback; no new file in
the working, output or artefact folder (no temporary left); every input byte-identical. Flag,
config and output-path errors must also name the culprit (so no case passes for another
reason). And the other side: every path taken here works with the valid artefact (exit 0).

The valid artefacts are made once per module: a digits network trained for one epoch
(``.pt``), its compiled fixed ``.onnx``, its ``.nir`` export, a hand-built LIFReset IR, a
one-epoch TTFS checkpoint (for ``--dt``), ``.npy`` inputs and a JSON config. Hypothesis draws
the mutations (``derandomize=True``, no database, no shrinking: the same examples every run).
Mutation helpers and the harness: `tests/mutations.py`. A gap (a rule not enforced yet) is
listed in `GAPS` and its case is ``xfail(strict=True)``: it stays visible, and must be
unmarked when the fix lands. Lava: two cases (``lava`` marker), refused before Lava runs.

Cases (hypothesis examples + parametrized cases), 663 in all:

=====================================================================  =====
ONNX (389)
  7 fixed-point int attributes x 6 verbs x 3 examples                    126
  (weight_exp, num_weight_bits, sign_mode, num_message_bits, du, dv, vth)
  5 int arrays x 6 verbs x 2 (weights, bias_mant, bias_exp, u, v)          60
  NaN/inf in 5 float fields x 6 verbs x 2 (weight, bias, du, dv, vth)      60
  wrong-dtype initializers (string, float32, int32, bool, ...) 6 x 4       24
  truncated 6 x 5; flipped bytes 6 x 5                                     60
  dropped node 6 x 2; dropped edge 6 x 2                                   24
  a string field (node input, node name, meta JSON) not UTF-8 x 6 verbs    18
  LIFReset reset_interval 0, -1, INT64_MIN x 5 verbs                       15
  NaN weight through --backend lava: simulate, --emit-hw (marked lava)       2
NIR (60): tau_syn/tau_mem <= 0, NaN, inf 2 x 4 verbs x 3; NaN/inf          60
  weights 4 x 4; wrong shapes 4 x 3; truncated 4 x 2
checkpoints (92): 29 variants x compile, verify; 14 x export; 8 x          92
  train --finetune (foreign pickle/zip, text, empty, string/None/NaN/
  newer version, missing keys, wrong kind tags, NaN/inf weights, shapes,
  bad config/meta); truncated 4 verbs x 3
.npy inputs (34): 14 kinds x 2 backends (dims, width, strings, complex,    34
  NaN, inf, pickle, huge headers, not npy); truncated 2 x 3
configs and flags (35): 15 configs (list/string/number/null, unknown       35
  key, epochs, lr, batch_size, threads); 20 flags (epochs, threads,
  samples, lava-samples, min-match-1, max-accuracy-drop,
  calibration-samples, dt)
output paths (17): --out = an input, a folder, "", under a file x 4        17
  verbs; simulate --out = the model
real stderr in a subprocess                                                 3
well-formed (33): every path above with the valid artefact (27); valid     33
  .npy variants (6)
=====================================================================  =====

Verbs for a network file: inspect, simulate (emulator, float), compile, verify (``--no-report
--samples 4 --backends float,emulator``), export; NIR: inspect, simulate (float), compile, export.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import mutations as mu
from toolchain import formats

SETTINGS = dict(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def fuzz(n: int):
    return settings(max_examples=n, **SETTINGS)


ONNX_VERBS = ("inspect", "simulate-emulator", "simulate-float", "compile", "verify", "export")
NON_UTF8 = ("input", "name", "meta")  # which string field of the .onnx is not UTF-8
RESET_VERBS = ("inspect", "simulate-emulator", "simulate-float", "compile", "export")  # no task: no verify
NIR_VERBS = ("inspect", "simulate-float", "compile", "export")


# Known gaps: (category, *param ids) -> the rule not enforced yet. Each such case is
# xfail(strict=True): it must keep failing until the fix lands, then the marker must go.
GAPS: dict = {}  # (category, *case) -> the rule not enforced yet; every rule listed is enforced now


def grid(category: str, *axes, ids=None):
    """pytest.param for every combination of ``axes`` (one axis: its values), marked xfail when
    `GAPS` names the combination (key: category, then the combination's values or, with ``ids``
    for a single axis, its id)."""
    params = []
    for i, combo in enumerate(itertools.product(*axes)):
        names = (ids[i],) if ids else combo
        key = (category, *names)
        marks = [pytest.mark.xfail(strict=True, reason=GAPS[key])] if key in GAPS else []
        params.append(pytest.param(*combo, marks=marks, id="-".join(str(c) for c in names)))
    return params


# ------------------------------------------------------------------ the valid artefacts, once


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    """Paths of the valid artefacts (read-only for every test). Training runs with --threads 1 (two
    shared cores); torch's thread count is restored after the module."""
    import torch

    threads = torch.get_num_threads()
    d = tmp_path_factory.mktemp("artefacts")
    _CASES_ROOT[:] = [tmp_path_factory.mktemp("cases")]
    quiet = dict(cwd=d, inputs=())
    for argv in (["train", "--task", "digits", "--epochs", "1", "--quiet", "--threads", "1",
                  "--out", str(d / "m.pt")],
                 ["compile", str(d / "m.pt"), "--out", str(d / "m.onnx"), "--calibration-samples", "32"],
                 ["export", str(d / "m.pt"), "--format", "nir", "--out", str(d / "m.nir")],
                 ["train", "--method", "ttfs", "--task", "digits", "--epochs", "1", "--quiet",
                  "--out", str(d / "t.pt")]):
        outcome = mu.run_cli(argv, **quiet)
        assert outcome.code == 0 and not outcome.escaped, outcome.describe()
    formats.save(mu.reset_example(), d / "reset.onnx")
    np.save(d / "x.npy", np.random.default_rng(0).random((2, 20, 64)) < 0.2)
    np.save(d / "x5.npy", np.random.default_rng(0).random((2, 12, 5)) < 0.4)
    (d / "cfg.json").write_text(json.dumps({"epochs": 1, "lr": 0.003}))
    shutil.copytree(d, d.parent / "pristine")
    yield d
    torch.set_num_threads(threads)


_CASES_ROOT = []


def _fresh():
    """A new, empty working folder for one case (beside, not inside, the artefact folder)."""
    return Path(tempfile.mkdtemp(prefix="case-", dir=_CASES_ROOT[0]))


def _run(argv, cwd, art, extra_inputs=()):
    """Run with every artefact and extra file as a watched, must-not-change input. An artefact the
    run changed (a contract failure, reported by the Outcome) is restored, so later cases still
    see the valid one."""
    inputs = [p for p in Path(art).iterdir() if p.is_file()] + [Path(p) for p in extra_inputs]
    outcome = mu.run_cli(argv, cwd=cwd, inputs=inputs, watch=[art])
    pristine = Path(art).parent / "pristine"
    for name in os.listdir(art):
        if (art / name).is_dir() and not (pristine / name).exists():
            shutil.rmtree(art / name)
    for saved in pristine.iterdir():
        if not (art / saved.name).is_file() or (art / saved.name).read_bytes() != saved.read_bytes():
            if (art / saved.name).is_dir():
                shutil.rmtree(art / saved.name)
            shutil.copyfile(saved, art / saved.name)
    for name in set(os.listdir(art)) - set(os.listdir(pristine)):
        (art / name).unlink()
    return outcome


# The verbs that read an IR file, each given the bad file path and a fresh output folder.
def _onnx_verbs(x_npy):
    return {
        "inspect": lambda f, o: ["inspect", f],
        "simulate-emulator": lambda f, o: ["simulate", f, "--backend", "emulator", "--input", x_npy,
                                           "--out", str(o / "out.npz")],
        "simulate-float": lambda f, o: ["simulate", f, "--backend", "float", "--input", x_npy,
                                        "--out", str(o / "out.npz")],
        "compile": lambda f, o: ["compile", f, "--out", str(o / "out.onnx"), "--calibration-samples", "16"],
        "verify": lambda f, o: ["verify", f, "--no-report", "--samples", "4", "--backends", "float,emulator"],
        "export": lambda f, o: ["export", f, "--format", "onnx", "--out", str(o / "exported.onnx")],
    }




def _refuse_bytes(art, data: bytes, verb: str, suffix=".onnx", x="x.npy", lenient=False):
    case = _fresh()
    bad = case / f"bad{suffix}"
    bad.write_bytes(data)
    argv = _onnx_verbs(str(art / x))[verb](str(bad), case)
    outcome = _run(argv, case, art, [bad])
    outcome.new_files = [f for f in outcome.new_files if f != str(bad)]
    (mu.assert_refused_or_works if lenient else mu.assert_refused)(outcome)


@pytest.fixture(scope="module")
def onnx_bytes(art):
    """The valid fixed .onnx as a zero-argument function (hypothesis would print the bytes)."""
    data = (art / "m.onnx").read_bytes()
    return lambda: data


def _out_of_range(lo, hi):
    return st.one_of(st.integers(hi + 1, hi + 1000), st.integers(lo - 1000, lo - 1),
                     st.sampled_from([mu.INT64_MAX, mu.INT64_MIN, 1 << 40, -(1 << 40)]))


NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])

# ------------------------------------------------------------------ ONNX


@pytest.mark.parametrize("verb,attr", grid("onnx-int-attr", ONNX_VERBS, sorted(mu.INT_ATTR_RANGES)))
@fuzz(3)
@given(data=st.data(), pick=st.integers(0, 3))
def test_onnx_int_attribute_out_of_range(art, onnx_bytes, verb, attr, data, pick):
    value = data.draw(_out_of_range(*mu.INT_ATTR_RANGES[attr]), label="value")
    _refuse_bytes(art, mu.set_int_attr(onnx_bytes(), attr, value, pick), verb)


@pytest.mark.parametrize("verb,field", grid("onnx-int-array", ONNX_VERBS, sorted(mu.INT_ARRAY_RANGES)))
@fuzz(2)
@given(data=st.data(), pick=st.integers(0, 3), index=st.integers(0, 10 ** 6))
def test_onnx_int_array_out_of_range(art, onnx_bytes, verb, field, data, pick, index):
    value = data.draw(_out_of_range(*mu.INT_ARRAY_RANGES[field]), label="value")
    _refuse_bytes(art, mu.set_array_element(onnx_bytes(), field, value, pick, index), verb)


@pytest.mark.parametrize("verb,field", grid("onnx-float", ONNX_VERBS, mu.FLOAT_ATTRS + mu.FLOAT_ARRAYS))
@fuzz(2)
@given(value=NONFINITE, pick=st.integers(0, 3), index=st.integers(0, 10 ** 6))
def test_onnx_float_not_finite(art, onnx_bytes, verb, field, value, pick, index):
    if field in mu.FLOAT_ATTRS:
        data = mu.set_float_attr(onnx_bytes(), field, value, pick)
    else:
        data = mu.set_array_element(onnx_bytes(), field, value, pick, index)
    _refuse_bytes(art, data, verb)


@pytest.mark.parametrize("verb", grid("onnx-dtype", ONNX_VERBS))
@fuzz(4)
@given(field=st.sampled_from(sorted(mu.INT_ARRAY_RANGES) + list(mu.FLOAT_ARRAYS)),
       dtype=st.sampled_from(mu.WRONG_DTYPES), pick=st.integers(0, 3))
def test_onnx_initializer_wrong_dtype(art, onnx_bytes, verb, field, dtype, pick):
    _refuse_bytes(art, mu.retype_initializer(onnx_bytes(), field, dtype, pick), verb)


@pytest.mark.parametrize("verb", grid("onnx-truncated", ONNX_VERBS))
@fuzz(5)
@given(offset=st.integers(0, 10 ** 7))
def test_onnx_truncated(art, onnx_bytes, verb, offset):
    _refuse_bytes(art, mu.truncate(onnx_bytes(), offset), verb)


@pytest.mark.parametrize("verb", grid("onnx-flipped", ONNX_VERBS))
@fuzz(5)
@given(flips=st.lists(st.tuples(st.integers(0, 10 ** 7), st.integers(0, 255)), min_size=1, max_size=8))
def test_onnx_flipped_bytes(art, onnx_bytes, verb, flips):
    """A flip may leave a valid file (a changed weight): then it must simply work."""
    _refuse_bytes(art, mu.flip_bytes(onnx_bytes(), flips), verb, lenient=True)


@pytest.mark.parametrize("verb", grid("onnx-drop-node", ONNX_VERBS))
@fuzz(2)
@given(pick=st.integers(0, 5))
def test_onnx_node_dropped(art, onnx_bytes, verb, pick):
    _refuse_bytes(art, mu.drop_node(onnx_bytes(), pick), verb)


@pytest.mark.parametrize("verb", grid("onnx-drop-edge", ONNX_VERBS))
@fuzz(2)
@given(pick=st.integers(0, 4))
def test_onnx_edge_dropped(art, onnx_bytes, verb, pick):
    _refuse_bytes(art, mu.drop_edge(onnx_bytes(), pick), verb)


@pytest.mark.parametrize("verb,where", grid("onnx-non-utf8", ONNX_VERBS, NON_UTF8))
def test_onnx_string_not_utf8(art, onnx_bytes, verb, where):
    """What a flipped byte in a tensor name gives: a string field protobuf cannot decode."""
    _refuse_bytes(art, mu.non_utf8_name(onnx_bytes(), where), verb)


@pytest.mark.parametrize("verb,interval", grid("onnx-reset-interval", RESET_VERBS, [0, -1, mu.INT64_MIN]))
def test_onnx_reset_interval_below_one(art, verb, interval):
    data = mu.set_int_attr((art / "reset.onnx").read_bytes(), "reset_interval", interval)
    _refuse_bytes(art, data, verb, x="x5.npy")


# ------------------------------------------------------------------ NIR


def _refuse_nir(art, verb, **change):
    case = _fresh()
    bad = case / "bad.nir"
    mu.nir_set(art / "m.nir", bad, **change)
    argv = _onnx_verbs(str(art / "x.npy"))[verb](str(bad), case)
    outcome = _run(argv, case, art, [bad])
    outcome.new_files = [f for f in outcome.new_files if f != str(bad)]
    mu.assert_refused(outcome)


NIR_NEURONS = ("layers.0", "layers.1")
NIR_SYNAPSES = ("layers.0.dense", "layers.1.dense")


@pytest.mark.parametrize("verb,key", grid("nir-tau", NIR_VERBS, ("tau_syn", "tau_mem")))
@fuzz(3)
@given(node=st.sampled_from(NIR_NEURONS),
       value=st.one_of(st.sampled_from([0.0, -0.0, math.nan, -math.inf, math.inf]), st.floats(-1e6, -1e-6)),
       everywhere=st.booleans(), index=st.integers(0, 200))
def test_nir_tau_not_positive(art, verb, key, node, value, everywhere, index):
    _refuse_nir(art, verb, node=node, dataset=key, value=value, index=None if everywhere else index)


@pytest.mark.parametrize("verb", grid("nir-weight", NIR_VERBS))
@fuzz(4)
@given(node=st.sampled_from(NIR_SYNAPSES), value=NONFINITE, index=st.integers(0, 10 ** 5))
def test_nir_weight_not_finite(art, verb, node, value, index):
    _refuse_nir(art, verb, node=node, dataset="weight", value=value, index=index)


@pytest.mark.parametrize("verb", grid("nir-shape", NIR_VERBS))
@fuzz(3)
@given(node=st.sampled_from(NIR_NEURONS + NIR_SYNAPSES), shape=st.sampled_from([(3,), (7, 5), (1, 1, 4), ()]))
def test_nir_wrong_shape(art, verb, node, shape):
    dataset = "weight" if node.endswith("dense") else "tau_mem"
    _refuse_nir(art, verb, node=node, dataset=dataset, shape=shape)


@pytest.mark.parametrize("verb", grid("nir-truncated", NIR_VERBS))
@fuzz(2)
@given(offset=st.integers(0, 10 ** 7))
def test_nir_truncated(art, verb, offset):
    _refuse_bytes(art, mu.truncate((art / "m.nir").read_bytes(), offset), verb, suffix=".nir")


# ------------------------------------------------------------------ checkpoints

CHECKPOINT_VARIANTS = [
    "foreign-pickle", "foreign-zip", "text", "empty", "plain-tensor", "list-payload",
    "version=str", "version=strnum", "version=none", "version=float-nan", "version=list", "version=newer",
    "drop:format", "drop:config", "drop:state_dict",
    "kind=ttfs", "kind=spike-transform", "kind=bogus", "kind=int", "kind=none", "kind=foreign",
    "nan:0", "nan:1", "inf:2", "state-dict-shape", "state-dict-missing",
    "config-not-dict", "config-zero-width", "meta-not-dict",
]


def _checkpoint_verbs(o):
    return {
        "compile": lambda f: ["compile", f, "--out", str(o / "out.onnx"), "--calibration-samples", "16"],
        "verify": lambda f: ["verify", f, "--no-report", "--samples", "4", "--backends", "float,emulator"],
        "export": lambda f: ["export", f, "--format", "nir", "--out", str(o / "out.nir")],
        "finetune": lambda f: ["train", "--task", "digits", "--epochs", "1", "--quiet", "--finetune", f,
                               "--out", str(o / "out.pt")],
    }


def _refuse_checkpoint(art, verb, make):
    case = _fresh()
    bad = case / "bad.pt"
    make(bad)
    outcome = _run(_checkpoint_verbs(case)[verb](str(bad)), case, art, [bad])
    mu.assert_refused(outcome)


# Every variant through compile and verify; a cross-section through export and train --finetune.
CHECKPOINT_CASES = (grid("checkpoint", ["compile", "verify"], CHECKPOINT_VARIANTS)
                    + grid("checkpoint", ["export"], CHECKPOINT_VARIANTS[1::2])
                    + grid("checkpoint", ["finetune"], ["foreign-zip", "text", "version=str", "drop:config",
                                                        "kind=bogus", "nan:0", "state-dict-shape",
                                                        "meta-not-dict"]))


@pytest.mark.parametrize("verb,variant", CHECKPOINT_CASES)
def test_checkpoint_bad(art, verb, variant):
    _refuse_checkpoint(art, verb, lambda bad: mu.checkpoint_variant(art / "m.pt", bad, variant))


@pytest.mark.parametrize("verb", grid("checkpoint-truncated", ["compile", "verify", "export", "finetune"]))
@fuzz(3)
@given(offset=st.integers(1, 10 ** 6))
def test_checkpoint_truncated(art, verb, offset):
    data = (art / "m.pt").read_bytes()
    _refuse_checkpoint(art, verb, lambda bad: bad.write_bytes(mu.truncate(data, offset)))


@pytest.mark.lava
@pytest.mark.parametrize("how", grid("onnx-lava", ["simulate", "emit-hw"]))
def test_onnx_lava_backend_refuses_before_running(art, onnx_bytes, how):
    """--backend lava reads the network too: refused before Lava is built (so no Lava time)."""
    case = _fresh()
    bad = case / "bad.onnx"
    bad.write_bytes(mu.set_array_element(onnx_bytes(), "weight", math.nan, 0, 3))
    argv = ["simulate", str(bad), "--backend", "lava", "--input", str(art / "x.npy"), "--out", str(case / "o.npz")]
    if how == "emit-hw":
        argv += ["--emit-hw", str(case / "run_on_loihi.py")]
    mu.assert_refused(_run(argv, case, art, [bad]))


# ------------------------------------------------------------------ .npy inputs


def _npy_cases():
    rng = np.random.default_rng(3)
    spikes = rng.random((2, 20, 64)) < 0.2
    return {
        "1-d": lambda p: np.save(p, spikes[0, 0]),
        "4-d": lambda p: np.save(p, spikes[None]),
        "0-d": lambda p: np.save(p, np.array(1)),
        "width-63": lambda p: np.save(p, spikes[..., :63]),
        "width-65": lambda p: np.save(p, np.concatenate([spikes, spikes[..., :1]], -1)),
        "strings": lambda p: np.save(p, spikes.astype(str)),
        "complex": lambda p: np.save(p, spikes.astype(complex)),
        "nan": lambda p: np.save(p, np.where(spikes, np.nan, 0.0)),
        "inf": lambda p: np.save(p, np.where(spikes, np.inf, 0.0)),
        "object-pickle": lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "huge-header": lambda p: mu.npy_with_header(p, (10 ** 6, 10 ** 6, 64), "bool", b"\x00" * 64),
        "huge-header-int64": lambda p: mu.npy_with_header(p, (1 << 20, 1 << 20, 64), "<i8"),
        "huge-header-2d": lambda p: mu.npy_with_header(p, (1 << 40, 64), "<f8", b"\x00" * 512),
        "not-npy": lambda p: p.write_text("0 1 0 1\n"),
    }


NPY_CASES = sorted(_npy_cases())


def _refuse_npy(art, backend, make):
    case = _fresh()
    bad = case / "bad.npy"
    make(bad)
    argv = ["simulate", str(art / "m.onnx"), "--backend", backend, "--input", str(bad),
            "--out", str(case / "out.npz")]
    mu.assert_refused(_run(argv, case, art, [bad]))


@pytest.mark.parametrize("backend,name", grid("npy", ("emulator", "float"), NPY_CASES))
def test_npy_bad(art, backend, name):
    _refuse_npy(art, backend, _npy_cases()[name])


@pytest.mark.parametrize("backend", grid("npy-truncated", ("emulator", "float")))
@fuzz(3)
@given(offset=st.integers(1, 10 ** 6))
def test_npy_truncated(art, backend, offset):
    data = (art / "x.npy").read_bytes()
    _refuse_npy(art, backend, lambda bad: bad.write_bytes(data[:offset % len(data)]))


# ------------------------------------------------------------------ configs and flags

BAD_CONFIGS = {  # name -> (JSON value, a word the error line must contain: it names the culprit)
    "list": ([1, 2], "json"), "string": ("epochs", "json"), "number": (3, "json"), "null": (None, "json"),
    "unknown-key": ({"epochz": 1}, "epochz"), "epochs-0": ({"epochs": 0}, "epochs"),
    "epochs-neg": ({"epochs": -1}, "epochs"), "epochs-str": ({"epochs": "two"}, "epochs"),
    "epochs-float": ({"epochs": 1.5}, "epochs"), "lr-0": ({"lr": 0}, "lr"), "lr-neg": ({"lr": -0.1}, "lr"),
    "lr-nan": ({"lr": math.nan}, "lr"), "batch-0": ({"batch_size": 0}, "batch_size"),
    "batch-neg": ({"batch_size": -4}, "batch_size"), "threads-0": ({"threads": 0}, "threads"),
}


@pytest.mark.parametrize("name", grid("config", sorted(BAD_CONFIGS)))
def test_config_bad(art, name):
    case = _fresh()
    cfg = case / "cfg.json"
    value, word = BAD_CONFIGS[name]
    cfg.write_text(json.dumps(value))
    argv = ["train", "--task", "digits", "--quiet", "--config", str(cfg), "--out", str(case / "out.pt")]
    outcome = _run(argv, case, art, [cfg])
    mu.assert_refused(outcome)
    assert word in outcome.stderr[0].lower(), outcome.stderr


def _flag_cases(a):
    """name -> (argv, the flag the error line must name)."""
    verify = ["verify", str(a / "m.pt"), "--no-report", "--backends", "float,emulator"]
    train = ["train", "--task", "digits", "--quiet", "--out", "out.pt"]
    ttfs = str(a / "t.pt")
    compile_pt = ["compile", str(a / "m.pt"), "--out", "o.onnx"]
    return {
        "train --epochs -1": (train + ["--epochs", "-1"], "epochs"),
        "train --epochs 0": (train + ["--epochs", "0"], "epochs"),
        "train --epochs x": (train + ["--epochs", "x"], "epochs"),
        "train --threads 0": (train + ["--epochs", "1", "--threads", "0"], "threads"),
        "train --threads -2": (train + ["--epochs", "1", "--threads", "-2"], "threads"),
        "verify --samples 0": (verify + ["--samples", "0"], "samples"),
        "verify --samples -3": (verify + ["--samples", "-3"], "samples"),
        "verify --lava-samples > samples": (verify + ["--samples", "4", "--lava-samples", "5"], "lava-samples"),
        "verify --lava-samples -1": (verify + ["--samples", "4", "--lava-samples", "-1"], "lava-samples"),
        "verify --min-match-1 nan": (verify + ["--samples", "4", "--min-match-1", "nan"], "min-match-1"),
        "verify --min-match-1 2": (verify + ["--samples", "4", "--min-match-1", "2"], "min-match-1"),
        "verify --max-accuracy-drop nan": (verify + ["--samples", "4", "--max-accuracy-drop", "nan"],
                                           "max-accuracy-drop"),
        "compile --calibration-samples 0": (compile_pt + ["--calibration-samples", "0"], "calibration-samples"),
        "compile --calibration-samples -5": (compile_pt + ["--calibration-samples", "-5"], "calibration-samples"),
        "compile nir --calibration-samples 0": (["compile", str(a / "m.nir"), "--out", "o.onnx",
                                                 "--calibration-samples", "0"], "calibration-samples"),
        "compile ttfs --dt 0": (["compile", ttfs, "--out", "o.onnx", "--dt", "0"], "dt"),
        "compile ttfs --dt -1": (["compile", ttfs, "--out", "o.onnx", "--dt", "-1"], "dt"),
        "compile ttfs --dt nan": (["compile", ttfs, "--out", "o.onnx", "--dt", "nan"], "dt"),
        "compile ttfs --dt inf": (["compile", ttfs, "--out", "o.onnx", "--dt", "inf"], "dt"),
        "verify ttfs --dt 0": (["verify", ttfs, "--no-report", "--samples", "4", "--backends", "float,emulator",
                                "--dt", "0"], "dt"),
    }


FLAG_CASES = sorted(_flag_cases(Path(".")))


@pytest.mark.parametrize("name", grid("flag", FLAG_CASES))
def test_flag_bad(art, name):
    argv, flag = _flag_cases(art)[name]
    outcome = _run(argv, _fresh(), art)
    mu.assert_refused(outcome)
    assert flag in outcome.stderr[0], outcome.stderr


# ------------------------------------------------------------------ output paths

OUT_SUFFIX = {"compile": ".onnx", "export": ".onnx", "simulate": ".npz", "train": ".pt"}


def _out_cases(a):
    """verb -> argv builder taking the --out value."""
    return {
        "compile": lambda out: ["compile", str(a / "m.pt"), "--out", out, "--calibration-samples", "16"],
        "export": lambda out: ["export", str(a / "m.onnx"), "--format", "onnx", "--out", out],
        "simulate": lambda out: ["simulate", str(a / "m.onnx"), "--input", str(a / "x.npy"), "--out", out],
        "train": lambda out: ["train", "--task", "digits", "--epochs", "1", "--quiet", "--finetune",
                              str(a / "m.pt"), "--out", out],
    }


def _out_value(kind, verb, a, case):
    if kind == "equal-to-input":
        return str({"compile": a / "m.pt", "export": a / "m.onnx", "simulate": a / "x.npy",
                    "train": a / "m.pt"}[verb])
    if kind == "equal-to-model":  # simulate's other input
        return str(a / "m.onnx")
    if kind == "existing-directory":
        (case / "adir").mkdir()
        return str(case / "adir")
    if kind == "empty":
        return ""
    (case / "afile").write_text("a regular file\n")
    return str(case / "afile" / f"out{OUT_SUFFIX[verb]}")


OUT_KINDS = ("equal-to-input", "existing-directory", "empty", "under-a-file")


@pytest.mark.parametrize("verb,kind", grid("out", ("compile", "export", "simulate", "train"), OUT_KINDS)
                         + grid("out", ("simulate",), ("equal-to-model",)))
def test_output_path_bad(art, verb, kind):
    case = _fresh()
    out = _out_value(kind, verb, art, case)
    inputs = [p for p in case.rglob("*") if p.is_file()]
    outcome = _run(_out_cases(art)[verb](out), case, art, inputs)
    mu.assert_refused(outcome)
    assert "--out" in outcome.stderr[0] or (out and out in outcome.stderr[0]), outcome.stderr  # names it
    if kind == "existing-directory":
        assert not any((case / "adir").iterdir())


# ------------------------------------------------------------------ subprocess: real stderr


@pytest.mark.parametrize("argv", grid("subprocess", [
    ("simulate", "{nan_onnx}", "--backend", "float", "--input", "{x}", "--out", "out.npz"),
    ("simulate", "{m}", "--backend", "emulator", "--input", "{nan_npy}", "--out", "out.npz"),
    ("inspect", "{trunc_onnx}"),
], ids=["simulate-float-nan-weight", "simulate-nan-npy", "inspect-truncated"]))
def test_subprocess_one_error_line(art, argv, onnx_bytes):
    """The real stderr of ``python -m toolchain.cli`` (warnings at their default filters): one line."""
    case = _fresh()
    (case / "nan.onnx").write_bytes(mu.set_array_element(onnx_bytes(), "weight", math.nan, 0, 5))
    (case / "trunc.onnx").write_bytes(onnx_bytes()[:5000])
    np.save(case / "nan.npy", np.full((2, 20, 64), np.nan))
    names = dict(nan_onnx=case / "nan.onnx", x=art / "x.npy", m=art / "m.onnx", nan_npy=case / "nan.npy",
                 trunc_onnx=case / "trunc.onnx")
    argv = [a.format(**names) for a in argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONWARNINGS")}
    proc = subprocess.run([sys.executable, "-m", "toolchain.cli", *argv], cwd=case, env=env,
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and mu.ERROR_LINE.match(lines[0]), proc.stderr
    assert not (case / "out.npz").exists()


# ------------------------------------------------------------------ the good side: same paths, valid files


def _controls(a):
    """name -> argv: every path above, with the valid artefact (so no bad case passes vacuously)."""
    verbs = _onnx_verbs(str(a / "x.npy"))
    reset = _onnx_verbs(str(a / "x5.npy"))
    cases = {f"onnx {v}": (lambda o, v=v: verbs[v](str(a / "m.onnx"), o)) for v in ONNX_VERBS}
    cases.update({f"reset-onnx {v}": (lambda o, v=v: reset[v](str(a / "reset.onnx"), o)) for v in RESET_VERBS})
    cases.update({f"nir {v}": (lambda o, v=v: verbs[v](str(a / "m.nir"), o)) for v in NIR_VERBS})
    cases.update({f"checkpoint {v}": (lambda o, v=v: _checkpoint_verbs(o)[v](str(a / "m.pt")))
                  for v in ("compile", "verify", "export", "finetune")})
    cases.update({f"npy {b}": (lambda o, b=b: ["simulate", str(a / "m.onnx"), "--backend", b, "--input",
                                               str(a / "x.npy"), "--out", str(o / "out.npz")])
                  for b in ("emulator", "float")})
    cases["config"] = lambda o: ["train", "--task", "digits", "--quiet", "--config", str(a / "cfg.json"),
                                 "--out", str(o / "out.pt")]
    cases["flags verify"] = lambda o: ["verify", str(a / "m.pt"), "--no-report", "--backends", "float,emulator",
                                       "--samples", "4", "--min-match-1", "0", "--max-accuracy-drop", "1"]
    cases["flags ttfs compile --dt"] = lambda o: ["compile", str(a / "t.pt"), "--out", str(o / "o.onnx"),
                                                  "--dt", "0.0625", "--calibration-samples", "16"]
    cases.update({f"out {v}": (lambda o, v=v: _out_cases(a)[v](str(o / "sub" / f"new{OUT_SUFFIX[v]}")))
                  for v in ("compile", "export", "simulate")})
    return cases


CONTROLS = sorted(_controls(Path(".")))


@pytest.mark.parametrize("name", grid("works", CONTROLS))
def test_well_formed_still_works(art, name):
    case = _fresh()
    mu.assert_works(_run(_controls(art)[name](case), case, art))


@fuzz(6)
@given(b=st.integers(1, 3), t=st.integers(1, 25), dtype=st.sampled_from(["bool", "int8", "int64", "uint8"]),
       seed=st.integers(0, 2 ** 16), two_d=st.booleans())
def test_valid_npy_mutations_work(art, b, t, dtype, seed, two_d):
    """The mirror of the .npy cases: any binary (B, T, 64) or (T, 64) array simulates and writes its .npz."""
    case = _fresh()
    x = (np.random.default_rng(seed).random((b, t, 64)) < 0.3).astype(dtype)
    np.save(case / "in.npy", x[0] if two_d else x)
    outcome = _run(["simulate", str(art / "m.onnx"), "--input", str(case / "in.npy"), "--out", "o.npz"],
                   case, art, [case / "in.npy"])
    mu.assert_works(outcome)
    assert (case / "o.npz").is_file()
