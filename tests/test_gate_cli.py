"""`spikeport train|compile|verify` with ``--method gate``: checkpoints, resume, the report, help, refusals."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

TINY = {"duration": 150.0, "n_rec": 10, "eval_trials": 4, "eval_every": 1, "batch_size": 4,
        "pulse_a": [10.0, 20.0], "pulse_b": [40.0, 50.0], "cue": [80.0, 90.0], "response": [90.0, 140.0],
        "score": [100.0, 140.0]}


def spikeport(*args, cwd):
    return subprocess.run([sys.executable, "-m", "toolchain.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gate_cli")
    (folder / "tiny.json").write_text(json.dumps(TINY))
    done = spikeport("train", "--method", "gate", "--task", "xor", "--iterations", 2, "--config", "tiny.json",
                     "--out", "xor.pt", "--quiet", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


def test_train_writes_a_gate_checkpoint_and_resume_only_lets_iterations_grow(trained):
    done = spikeport("train", "--method", "gate", "--task", "xor", "--iterations", 3, "--resume", "--config",
                     "tiny.json", "--out", "xor.pt", "--quiet", cwd=trained)
    assert done.returncode == 0 and "after 3 iterations" in done.stdout
    (trained / "other.json").write_text(json.dumps(dict(TINY, n_rec=11)))
    done = spikeport("train", "--method", "gate", "--task", "xor", "--iterations", 4, "--resume", "--config",
                     "other.json", "--out", "xor.pt", "--quiet", cwd=trained)
    assert done.returncode == 2 and "n_rec=11" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_verify_scores_fresh_trials_on_every_engine_and_writes_the_report(trained):
    done = spikeport("verify", "xor.pt", "--trials", 8, "--seed", 5, "--lava-trials", 2, "--report", "rep",
                     cwd=trained)
    assert done.returncode in (0, 1), done.stderr  # an untrained network may fail the XOR criteria
    for line in ("float:", "float-emulator:", "emulator:", "lava fixed_pt = emulator: 2/2 trials identical"):
        assert line in done.stdout
    for name in ("report.html", "traces.png", "raster.png", "gate_fixed.onnx"):
        assert (trained / "rep" / name).is_file()


def test_compile_writes_the_fixed_point_gate_network(trained):
    done = spikeport("compile", "xor.pt", "--out", "xor.onnx", cwd=trained)
    assert done.returncode == 0, done.stderr
    assert "payload 2**6 per passage" in done.stdout and (trained / "xor.onnx").is_file()


def test_gate_flags_are_refused_for_other_methods_and_explained_in_help(trained):
    done = spikeport("train", "--method", "surrogate", "--task", "digits", "--iterations", 3, cwd=trained)
    assert done.returncode == 2 and "--iterations applies to --method gate" in done.stderr
    helptext = spikeport("verify", "-h", cwd=trained).stdout
    for flag in ("--trials", "--seed", "--lava-trials"):
        assert flag in helptext
    assert "gate: seed of the fresh test trials (default" in " ".join(helptext.split())
