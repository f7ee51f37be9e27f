"""`spikeport train|compile|verify` with `--method ttfs`: a TTFS checkpoint goes through the
same commands as a SuperSpike one, recognised by its format tag."""
import json

import pytest

from toolchain.formats import onnx as onnx_io
from toolchain.cli import main

# what every method's report.json carries (`toolchain.verify.verdict`)
VERDICT_KEYS = {"format", "passed", "exit_status", "criteria", "headline", "versions", "platform"}


@pytest.fixture(scope="module")
def ttfs_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ttfs") / "digits_ttfs.pt"
    assert main(["train", "--task", "digits", "--method", "ttfs", "--epochs", "2", "--out", str(path),
                 "--quiet"]) == 0
    return path


def test_train_method_ttfs_writes_a_tagged_checkpoint_and_reports_accuracy(ttfs_checkpoint, capsys):
    from toolchain.methods.ttfs.train import load_checkpoint

    model, meta = load_checkpoint(ttfs_checkpoint)
    assert meta["method"] == "ttfs" and meta["task"] == "digits"
    assert meta["accuracy"]["test"] > 0.5
    assert model.config["sizes"][-1] == 10


def test_compile_recognises_a_ttfs_checkpoint_and_writes_a_fixed_point_ir_at_dt(ttfs_checkpoint, tmp_path):
    out = tmp_path / "ttfs.onnx"
    assert main(["compile", str(ttfs_checkpoint), "--out", str(out), "--dt", "0.125",
                 "--calibration-samples", "64"]) == 0
    ir = onnx_io.load(out)
    assert ir.is_fixed
    assert ir.meta["ttfs"]["dt"] == 0.125 and ir.meta["method"] == "ttfs"


@pytest.mark.lava
def test_verify_of_a_ttfs_checkpoint_checks_lava_against_the_emulator_and_the_accuracy(ttfs_checkpoint, tmp_path,
                                                                                       capsys):
    rc = main(["verify", str(ttfs_checkpoint), "--samples", "60", "--lava-samples", "3",
               "--max-accuracy-drop", "0.1", "--report", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "3/3 samples identical" in out
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["lava"]["identical_samples"] == 3 and rep["samples"] == 60
    assert "lava fixed vs emulator fixed" in (tmp_path / "rep" / "report.html").read_text()


def test_verify_of_a_ttfs_checkpoint_writes_a_report_folder_with_both_irs(ttfs_checkpoint, tmp_path, capsys):
    import html

    rep_dir = tmp_path / "rep"
    assert main(["verify", str(ttfs_checkpoint), "--samples", "30", "--backends", "float,emulator",
                 "--max-accuracy-drop", "1", "--dt", "0.125", "--report", str(rep_dir)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"report: {rep_dir / 'report.html'}"
    assert sorted(p.name for p in rep_dir.iterdir()) == ["report.html", "report.json", "timing_errors.png",
                                                         "ttfs_fixed.onnx", "ttfs_float.onnx"]
    rep = json.loads((rep_dir / "report.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert {"task", "dt", "clock", "refire", "stats", "samples", "continuous", "engines", "quantization",
            "wall_s"} | VERDICT_KEYS == set(rep)
    assert rep["passed"] and rep["headline"]["deployed"] == rep["engines"]["emulator/fixed"]["accuracy"]
    assert set(rep["engines"]) == {"emulator/float", "emulator/fixed"} and rep["samples"] == 30
    fixed, floating = onnx_io.load(rep_dir / "ttfs_fixed.onnx"), onnx_io.load(rep_dir / "ttfs_float.onnx")
    assert fixed.is_fixed and not floating.is_fixed and fixed.meta["ttfs"]["dt"] == 0.125
    page = (rep_dir / "report.html").read_text()
    assert f"<h2>Summary</h2><pre>{html.escape(chr(10).join(out.splitlines()[:-1]))}</pre>" in page
    assert "<h2>Engines</h2>" in page and "<h2>First-spike timing" in page and "emulator/fixed" in page
    assert page.count("src='data:image/png;base64,") == 1


def test_verify_of_a_ttfs_checkpoint_refuses_a_folder_that_is_not_a_report_before_running(ttfs_checkpoint,
                                                                                          tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("precious")
    assert main(["verify", str(ttfs_checkpoint), "--backends", "emulator", "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "exists and is not a spikeport report folder" in err and len(err.splitlines()) == 1, err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_impossible_accuracy_tolerance_fails_verify_with_exit_1(ttfs_checkpoint, capsys):
    rc = main(["verify", str(ttfs_checkpoint), "--samples", "40", "--backends", "emulator",
               "--max-accuracy-drop", "-1", "--no-report"])
    assert rc == 1
    assert "FAILED: accuracy change continuous -> emulator fixed" in capsys.readouterr().out


@pytest.mark.parametrize("option", [["--finetune-qat", "5"], ["--split", "test"]])
def test_a_spike_transform_option_on_a_ttfs_checkpoint_is_refused(ttfs_checkpoint, option, tmp_path, capsys):
    assert main(["verify", str(ttfs_checkpoint), *option, "--report", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert f"{option[0]} applies to spike-transform checkpoints only; {ttfs_checkpoint} is a TTFS checkpoint" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "rep").exists()


def test_an_unknown_backend_for_a_ttfs_checkpoint_is_a_one_line_error(ttfs_checkpoint, tmp_path, capsys):
    assert main(["verify", str(ttfs_checkpoint), "--backends", "emulator,loihi",
                 "--report", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "unknown engine 'loihi' for a TTFS model; choose from float, emulator, lava" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "rep").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "digits", "--method", "exact"], "--method exact applies to --task spike-transform"),
    (["train", "--task", "nope", "--method", "ttfs"], "unknown task 'nope'"),
])
def test_bad_method_or_task_is_a_one_line_error_with_exit_2(argv, message, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_dt_on_a_superspike_checkpoint_is_refused(tmp_path, capsys):
    from toolchain.methods.superspike import checkpoint
    from models.network import Network

    path = tmp_path / "ss.pt"
    checkpoint.save(path, Network(dict(n_in=4, layers=[dict(n=3)])), dict(task="digits"))
    assert main(["compile", str(path), "--dt", "0.1", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "--dt applies to TTFS checkpoints only" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_a_superspike_checkpoint_is_not_read_as_a_ttfs_one(tmp_path):
    from models.errors import SpikeportError
    from models.network import Network
    from toolchain.methods.superspike import checkpoint
    from toolchain.methods.ttfs.train import load_checkpoint

    path = tmp_path / "ss.pt"
    checkpoint.save(path, Network(dict(n_in=4, layers=[dict(n=3)])), dict(task="digits"))
    with pytest.raises(SpikeportError, match="not a spikeport checkpoint of kind 'spikeport-ttfs-checkpoint'"):
        load_checkpoint(path)


def test_a_ttfs_accuracy_drop_of_exactly_the_maximum_passes_and_one_sample_more_fails():
    from toolchain.methods.ttfs.deploy import ttfs_criteria

    def passed(fixed):  # 1,000 samples: continuous 980 right, fixed `fixed` right
        rep = {"continuous": {"accuracy": 980 / 1000}, "engines": {"emulator/fixed": {"accuracy": fixed / 1000}}}
        return [c.passed for c in ttfs_criteria(rep, 0.005)]
    assert passed(975) == [True]  # 0.98 - 0.975 is 0.0050000000000000044 in floats
    assert passed(974) == [False]
