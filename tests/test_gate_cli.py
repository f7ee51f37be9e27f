"""`spikeport train|compile|verify` with ``--method gate``: checkpoints, resume, the report, help, refusals."""
from __future__ import annotations

import json

import pytest

from toolchain.cli import build_parser, main

TINY = {"duration": 150.0, "n_rec": 10, "eval_trials": 4, "eval_every": 1, "batch_size": 4,
        "pulse_a": [10.0, 20.0], "pulse_b": [40.0, 50.0], "cue": [80.0, 90.0], "response": [90.0, 140.0],
        "score": [100.0, 140.0]}


def _train(folder, *extra):
    return main(["train", "--method", "gate", "--task", "xor", "--config", str(folder / "tiny.json"),
                 "--out", str(folder / "xor.pt"), "--quiet", *map(str, extra)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gate_cli")
    (folder / "tiny.json").write_text(json.dumps(TINY))
    assert _train(folder, "--iterations", 2) == 0
    return folder


def test_train_writes_a_gate_checkpoint_and_resume_only_lets_iterations_grow(trained, capsys):
    assert _train(trained, "--iterations", 3, "--resume") == 0
    assert "after 3 iterations" in capsys.readouterr().out
    (trained / "tiny.json").write_text(json.dumps(dict(TINY, n_rec=11)))
    try:
        assert _train(trained, "--iterations", 4, "--resume") == 2
    finally:
        (trained / "tiny.json").write_text(json.dumps(TINY))
    err = capsys.readouterr().err
    assert "n_rec=11" in err and len(err.strip().splitlines()) == 1


def test_verify_scores_samples_fresh_trials_on_every_engine_in_the_shared_verdict_frame(trained, capsys):
    rc = main(["verify", str(trained / "xor.pt"), "--samples", "8", "--seed", "5", "--lava-samples", "2",
               "--report", str(trained / "rep")])
    out = capsys.readouterr().out
    assert "gate (xor): 8 fresh test trials (seed 5)" in out
    for line in ("float:", "float-emulator:", "emulator:", "lava fixed_pt = emulator: 2/2 trials identical",
                 "PASS  bit-identical lava = emulator: 2/2 samples identical", "XOR correct (float): ",
                 "XOR correct (emulator): "):
        assert line in out
    assert "confident" not in out.split("criteria:")[1]  # information only, not a criterion
    data = json.loads((trained / "rep" / "report.json").read_text())
    assert rc == data["exit_status"] == (0 if data["passed"] else 1)  # 3 iterations may fail the XOR criteria
    assert out.strip().splitlines()[-1].startswith("report:") and f"verify: {'PASS' if rc == 0 else 'FAIL'}" in out
    assert data["format"] == "spikeport-verify-report" and data["headline"]["metric"] == "correct"
    assert data["headline"]["lava_identical_samples"] == data["headline"]["lava_samples"] == 2
    assert [c["name"] for c in data["criteria"]] == ["XOR correct (float)", "XOR correct (emulator)",
                                                     "bit-identical lava = emulator"]
    html = (trained / "rep" / "report.html").read_text()
    assert "<h1>spikeport verify:" in html and "Criteria" in html and "Versions and seeds" in html
    for name in ("report.html", "traces.png", "raster.png", "gate_fixed.onnx"):
        assert (trained / "rep" / name).is_file()


def test_verify_refuses_more_lava_samples_than_samples_in_one_line(trained, capsys):
    assert main(["verify", str(trained / "xor.pt"), "--samples", "2", "--lava-samples", "3", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "lava_samples=3 is outside [1, 2]" in err and len(err.strip().splitlines()) == 1


def test_compile_writes_the_fixed_point_gate_network(trained, capsys):
    assert main(["compile", str(trained / "xor.pt"), "--out", str(trained / "xor.onnx")]) == 0
    assert "payload 2**6 per passage" in capsys.readouterr().out and (trained / "xor.onnx").is_file()


def test_gate_flags_are_refused_elsewhere_epochs_is_refused_for_gate_and_help_explains_them(trained, capsys):
    assert main(["train", "--method", "surrogate", "--task", "digits", "--iterations", "3",
                 "--out", str(trained / "s.pt")]) == 2
    assert "--iterations applies to --method gate" in capsys.readouterr().err
    assert main(["train", "--method", "surrogate", "--task", "digits", "--resume", "--out", str(trained / "s.pt")]) == 2
    err = capsys.readouterr().err  # a flag two methods share names both
    assert "--resume applies to --method gate on --task xor | predictive-coding; --method smooth" in err
    assert _train(trained, "--epochs", 3) == 2
    assert "use --iterations" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["verify", "-h"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert "--samples N, --trials N" in helptext and "--lava-samples N, --lava-trials N" in helptext
    args = build_parser().parse_args(["verify", "m.pt", "--trials", "7", "--lava-trials", "3"])
    assert (args.samples, args.lava_samples) == (7, 3)  # the protocol's word is the same flag, not a second one
    assert "gate: fresh test trials, default 1000" in helptext and "gate: 50, compared bit for bit" in helptext
    assert "gate: seed of the fresh test trials (default 1000003" in helptext
    assert "superspike: seed of a stochastic input encoder (default: 0)" in helptext
