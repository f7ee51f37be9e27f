"""Everything a user hands spikeport is checked: flags, config files, checkpoints, output paths, inputs.

The contract of every refusal, through `toolchain.cli.main`: exit status 2,
exactly one stderr line naming the flag or key, the value and the allowed
range, nothing on stdout, no new file, and every input byte-unchanged.
"""
import json
import os

import numpy as np
import pytest
import torch

from toolchain.cli import main
from toolchain.formats import onnx as onnx_io
from toolchain.methods.spike_train.config import KIND as SPIKE_TRANSFORM_KIND
from toolchain.methods.superspike import checkpoint
from toolchain.methods.superspike.compile import compile_checkpoint
from toolchain.methods.superspike.train import train

TINY = dict(epochs=1, hidden=[8], lr=2e-2, encoding=dict(name="regular", T=8, max_rate=0.5))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with a tiny digits checkpoint (model.pt), its compiled IR (model.onnx) and an
    input of the IR's shape (x.npy, B=2, T=8, N=64)."""
    folder = tmp_path_factory.mktemp("user_input")
    threads = torch.get_num_threads()
    try:
        result = train("digits", seed=0, progress=False, threads=1, **TINY)
    finally:
        torch.set_num_threads(threads)
    checkpoint.save(folder / "model.pt", result.model, result.meta)
    onnx_io.save(compile_checkpoint(folder / "model.pt"), folder / "model.onnx")
    np.save(folder / "x.npy", np.random.default_rng(0).random((2, 8, 64)) < 0.3)
    return folder


def snapshot(folder) -> dict:
    """{relative path: bytes} of every file under ``folder`` (folders as None)."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def refused(capsys, folder, argv, *needles) -> str:
    """Run ``argv`` in ``folder``: assert the contract (exit 2, one stderr line holding every needle,
    no stdout, the folder byte-identical afterwards); the error line."""
    before = snapshot(folder)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:
        code = stop.code
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith("spikeport"), err
    for needle in needles:
        assert needle in err, (needle, err)
    assert snapshot(folder) == before, "a file was created, changed or removed"
    return err


# ------------------------------------------------------------------ 1. flags

@pytest.mark.parametrize("argv, needles", [
    (["train", "--epochs", "-1"], ["--epochs", "epochs=-1", "[1, inf)"]),
    (["train", "--epochs", "0"], ["--epochs", "epochs=0", "[1, inf)"]),
    (["train", "--seed", "-3"], ["--seed", "seed=-3", "[0, inf)"]),
    (["train", "--threads", "0"], ["--threads", "threads=0", "[1, inf)"]),
    (["compile", "model.pt", "--calibration-samples", "0"], ["--calibration-samples", "=0", "[1, inf)"]),
    (["compile", "model.pt", "--calibration-samples", "-5"], ["--calibration-samples", "=-5", "[1, inf)"]),
    (["verify", "model.pt", "--samples", "0"], ["--samples", "samples=0", "[1, inf)"]),
    (["verify", "model.pt", "--lava-samples", "0"], ["--lava-samples", "lava_samples=0", "[1, inf)"]),
    (["verify", "model.pt", "--lava-samples", "9", "--samples", "4"], ["--lava-samples", "=9", "[1, 4]"]),
    (["verify", "model.pt", "--min-match-1", "nan"], ["--min-match-1", "min_match_1=nan", "[0, 1]"]),
    (["verify", "model.pt", "--max-accuracy-drop", "2"], ["--max-accuracy-drop", "=2.0", "[-1, 1]"]),
    (["verify", "model.pt", "--max-timing-error", "-1"], ["--max-timing-error", "=-1.0", "[0, inf)"]),
    (["verify", "model.pt", "--max-timing-error", "inf"], ["--max-timing-error", "=inf", "[0, inf)"]),
    (["verify", "model.pt", "--dt", "0"], ["--dt", "dt=0.0", "(0, inf)"]),
    (["compile", "model.pt", "--dt=-inf"], ["--dt", "dt=-inf", "(0, inf)"]),
    (["verify", "model.pt", "--finetune-qat", "-2"], ["--finetune-qat", "finetune_qat=-2", "[0, inf)"]),
    (["verify", "model.pt", "--qat-lr", "0"], ["--qat-lr", "qat_lr=0.0", "(0, inf)"]),
    (["verify", "model.pt", "--seed", "-1"], ["--seed", "seed=-1", "[0, inf)"]),
    (["train", "--epochs", "two"], ["--epochs", "'two'", "[1, inf)"]),
])
def test_a_numeric_flag_outside_its_range_is_refused_naming_flag_value_and_range(files, capsys, argv, needles):
    refused(capsys, files, argv, *needles)


# ------------------------------------------------------------------ 2. config files

@pytest.mark.parametrize("method", [[], ["--method", "ttfs"], ["--task", "spike-transform", "--method", "exact"]])
@pytest.mark.parametrize("content, needle", [([1, 2], "a JSON list"), ("fast", "a JSON str")])
def test_a_config_file_that_is_not_an_object_is_refused(files, capsys, tmp_path, method, content, needle):
    (tmp_path / "c.json").write_text(json.dumps(content))
    refused(capsys, tmp_path, ["train", *method, "--config", "c.json", "--out", "m.pt"], "c.json", needle,
            "object")


@pytest.mark.parametrize("method, content, needles", [
    ([], {"epochs": 0}, ["c.json", "epochs=0", "[1, inf)"]),
    ([], {"epochs": 2.5}, ["c.json", "epochs=2.5", "[1, inf)", "an integer"]),
    ([], {"lr": -1}, ["c.json", "lr=-1", "(0, inf)"]),
    ([], {"lr": float("nan")}, ["c.json", "lr=nan", "(0, inf)"]),
    ([], {"batch_size": 0}, ["c.json", "batch_size=0", "[1, inf)"]),
    ([], {"loss": 3}, ["c.json", "loss=3", "a string"]),
    ([], {"hidden": 16}, ["c.json", "hidden=16", "a list"]),
    ([], {"recurrent": "yes"}, ["c.json", "recurrent='yes'", "true or false"]),
    ([], {"du": 1.5}, ["c.json", "du=1.5", "[0, 1]"]),
    (["--method", "ttfs"], {"epochs": -4}, ["c.json", "epochs=-4", "[1, inf)"]),
    (["--method", "ttfs"], {"bucket": 0}, ["c.json", "bucket=0", "[1, inf)"]),
    (["--task", "spike-transform", "--method", "exact"], {"method": {"iterations": 0}}, ["c.json", "iterations=0", "[1, inf)"]),
    (["--task", "spike-transform", "--method", "surrogate"], {"method": {"lr": 0}}, ["c.json", "lr=0", "(0, inf)"]),
    (["--task", "spike-transform", "--method", "exact"], {"task": {"patterns": 0.5}}, ["c.json", "patterns=0.5"]),
    (["--task", "spike-transform", "--method", "exact"], {"method": [1]}, ["c.json", "method=[1]", "an object"]),
])
def test_a_config_value_of_the_wrong_type_or_range_is_refused_naming_the_key(files, capsys, tmp_path, method,
                                                                            content, needles):
    (tmp_path / "c.json").write_text(json.dumps(content))
    refused(capsys, tmp_path, ["train", *method, "--config", "c.json", "--out", "m.pt"], *needles)


# ------------------------------------------------------------------ 3. checkpoints

def altered_checkpoint(files, tmp_path, change) -> str:
    """model.pt of ``files`` copied into ``tmp_path`` as bad.pt after ``change(payload)``."""
    payload = torch.load(files / "model.pt", weights_only=True)
    change(payload)
    torch.save(payload, tmp_path / "bad.pt")
    return "bad.pt"


def nan_weight(payload):
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name].view(-1)[3] = float("nan")


@pytest.mark.parametrize("change, needles", [
    (lambda p: p.update(version="1"), ["version='1'", "[1, 1]"]),
    (lambda p: p.pop("config"), ["no 'config' entry"]),
    (lambda p: p.pop("state_dict"), ["no 'state_dict' entry"]),
    (lambda p: p.update(config=[1, 2]), ["stored config does not describe a network"]),
    (nan_weight, ["weight", "nan", "(-inf, inf)"]),
])
@pytest.mark.parametrize("verb", [["compile", "--out", "out.onnx"], ["export", "--out", "out.onnx"],
                                  ["verify", "--backends", "float,emulator", "--report", "rep"]])
def test_a_damaged_checkpoint_is_refused_at_load_by_every_verb(files, capsys, tmp_path, change, needles, verb):
    bad = altered_checkpoint(files, tmp_path, change)
    refused(capsys, tmp_path, [verb[0], bad, *verb[1:]], "bad.pt", *needles)


def test_a_nan_checkpoint_is_not_fine_tuned(files, capsys, tmp_path):
    bad = altered_checkpoint(files, tmp_path, nan_weight)
    refused(capsys, tmp_path, ["train", "--finetune", bad, "--epochs", "1", "--out", "m.pt"], "bad.pt", "nan")


def test_a_wrong_spike_transform_method_tag_is_refused(files, capsys, tmp_path):
    torch.save({"format": SPIKE_TRANSFORM_KIND, "version": 1, "method": "annealing", "config": {},
                "state_dict": {}, "task": {}}, tmp_path / "st.pt")
    refused(capsys, tmp_path, ["compile", "st.pt", "--out", "o.onnx"], "method='annealing'", "exact, surrogate")


class Foreign:
    """An object a spikeport checkpoint never holds."""


def test_a_foreign_pickle_gives_only_the_one_error_line(capsys, tmp_path):
    import collections
    import pickle

    (tmp_path / "foreign.pt").write_bytes(pickle.dumps(collections.OrderedDict(a=Foreign())))
    refused(capsys, tmp_path, ["compile", "foreign.pt", "--out", "o.onnx"], "foreign.pt", "not a spikeport checkpoint")


# ------------------------------------------------------------------ 4. output paths

@pytest.mark.parametrize("argv, needles", [
    (["simulate", "model.onnx", "--input", "x.npy", "--out", "x.npy"], ["--out x.npy", "is the input x.npy"]),
    (["simulate", "model.onnx", "--input", "x.npy", "--out", "./sub/../model.onnx"], ["is the input model.onnx"]),
    (["compile", "model.pt", "--out", "model.pt"], ["--out model.pt", "is the input model.pt"]),
    (["export", "model.pt", "--out", "model.pt"], ["--out model.pt", "is the input model.pt"]),
    (["compile", "model.pt", "--out", "link.pt"], ["--out link.pt", "is the input model.pt"]),
    (["compile", "model.pt", "--out", "folder"], ["--out folder", "existing folder"]),
    (["compile", "model.pt", "--out", ""], ["--out ''", "empty"]),
    (["export", "model.pt", "--out", "x.npy/m.onnx"], ["x.npy is a file, not a folder"]),
    (["train", "--epochs", "1", "--config", "c.json", "--out", "c.json"], ["--out c.json", "is the input c.json"]),
    (["verify", "folder/m.pt", "--report", "folder"], ["--report folder", "the input folder/m.pt"]),
    (["verify", "model.pt", "--report", "x.npy/rep"], ["x.npy is a file, not a folder"]),
])
def test_an_output_path_that_is_an_input_a_folder_or_under_a_file_is_refused(files, capsys, tmp_path, argv, needles):
    for name in ("model.pt", "model.onnx", "x.npy"):
        (tmp_path / name).write_bytes((files / name).read_bytes())
    (tmp_path / "link.pt").symlink_to(tmp_path / "model.pt")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "m.pt").write_bytes((files / "model.pt").read_bytes())
    (tmp_path / "c.json").write_text("{}")
    refused(capsys, tmp_path, argv, *needles)


# ------------------------------------------------------------------ 5. input memory guard

def test_an_npy_header_claiming_more_than_the_memory_is_refused_before_allocation(files, capsys, tmp_path):
    (tmp_path / "model.onnx").write_bytes((files / "model.onnx").read_bytes())
    with open(tmp_path / "huge.npy", "wb") as f:  # 640 GB claimed, 128 bytes on disk
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (1000, 1000, 160000)})
    refused(capsys, tmp_path, ["simulate", "model.onnx", "--input", "huge.npy", "--out", "o.npz"],
            "huge.npy", "640 GB", "(1000, 1000, 160000)", "memory")


# ------------------------------------------------------------------ well-formed commands still work

def test_well_formed_train_compile_simulate_and_verify_still_work(files, capsys, tmp_path):
    config = dict(hidden=[8], encoding=dict(name="regular", T=8, max_rate=0.5), batch_size=64, lr=0.02)
    (tmp_path / "c.json").write_text(json.dumps(config))
    assert main(["train", "--epochs", "1", "--threads", "1", "--seed", "0", "--quiet", "--config",
                 str(tmp_path / "c.json"), "--out", str(tmp_path / "m.pt")]) == 0
    assert main(["compile", str(tmp_path / "m.pt"), "--calibration-samples", "16",
                 "--out", str(tmp_path / "m.onnx")]) == 0
    assert main(["simulate", str(tmp_path / "m.onnx"), "--input", str(files / "x.npy"),
                 "--out", str(tmp_path / "s.npz")]) == 0
    code = main(["verify", str(tmp_path / "m.pt"), "--backends", "float,emulator", "--samples", "4",
                 "--lava-samples", "4", "--min-match-1", "0", "--max-accuracy-drop", "1", "--no-report"])
    assert code == 0, capsys.readouterr()
    assert {p.name for p in tmp_path.iterdir()} == {"c.json", "m.pt", "m.onnx", "s.npz"}


def test_a_tolerance_outside_its_range_is_refused_by_the_library_too():
    from models.errors import SpikeportError
    from toolchain.verify.criteria import Tolerances

    with pytest.raises(SpikeportError, match=r"verify: min_match_1=nan is outside \[0, 1\]"):
        Tolerances(min_match_1=float("nan"))
    assert Tolerances(max_accuracy_drop=-0.5, max_timing_error=0).max_timing_error == 0
