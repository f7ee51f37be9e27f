"""`spikeport sweep CONFIG`: every (setting, seed) trained and verified, one table (JSON, CSV,
plot), resumable; the same numbers on local workers as in one process; bad configs one line."""
import csv
import json

import pytest

from test_verify import TINY
from toolchain.cli import main

SWEEP = dict(task="digits", seeds=[0, 1], settings={"h16": {k: v for k, v in TINY.items()}},
             verify=dict(samples=20, backends="float,emulator"))
NUMBERS = ("float_accuracy", "emulator_accuracy", "lava_accuracy", "lava_identical_samples", "lava_samples", "passed")


def write_config(folder, **changes):
    path = folder / "sweep.json"
    path.write_text(json.dumps({**SWEEP, **changes}))
    return path


def numbers(row: dict) -> dict:
    return {k: row[k] for k in NUMBERS}


@pytest.mark.slow
def test_sweep_trains_and_verifies_each_seed_writes_one_table_and_resumes_without_redoing_runs(tmp_path, capsys):
    config, out = write_config(tmp_path), tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out), "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "2 to run on 2 local workers" in printed and "2/2 runs passed verify" in printed
    table = json.loads((out / "sweep.json").read_text())["runs"]
    assert [r["run"] for r in table] == ["h16-seed0", "h16-seed1"]
    assert all(r["float_accuracy"] > 0.3 and r["emulator_accuracy"] is not None and r["passed"] for r in table)
    assert table[0]["float_accuracy"] != table[1]["float_accuracy"] or table[0]["spec"]["seed"] != table[1]["spec"]["seed"]
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["h16-seed0", "h16-seed1"] and rows[0]["seed"] == "0"
    assert (out / "sweep.png").stat().st_size > 1000
    for run in ("h16-seed0", "h16-seed1"):
        assert {"model.pt", "config.json", "result.json", "report"} <= {p.name for p in (out / "runs" / run).iterdir()}

    finished = (out / "runs" / "h16-seed0" / "result.json").stat().st_mtime_ns
    (out / "runs" / "h16-seed1" / "result.json").unlink()
    assert main(["sweep", str(config), "--out", str(out)]) == 0  # one process this time
    assert "1 already finished, 1 to run" in capsys.readouterr().out
    assert (out / "runs" / "h16-seed0" / "result.json").stat().st_mtime_ns == finished
    again = json.loads((out / "sweep.json").read_text())["runs"]
    assert [numbers(r) for r in again] == [numbers(r) for r in table]  # 1 process = 2 workers


@pytest.mark.parametrize("changes, message", [
    (dict(seeds=[]), "seeds=[] is outside the allowed values"),
    (dict(seeds=[0, -1]), "seeds: -1 is outside [0, inf)"),
    (dict(settings={"a b": {}}), "settings: name 'a b' is outside"),
    (dict(verify={"samples": 0}), "verify: samples=0 is outside [1, inf)"),
    (dict(verify={"lava": 1}), "verify: unknown key 'lava'"),
    (dict(colour="red"), "unknown key 'colour'"),
    (dict(task=3), "task=3 is outside the allowed values (a string)"),
    (dict(task="nosuch"), "unknown task 'nosuch'"),
])
def test_a_bad_sweep_config_is_one_line_naming_the_key_with_exit_code_2_and_no_output(tmp_path, capsys, changes, message):
    config = write_config(tmp_path, **changes)
    assert main(["sweep", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_a_run_whose_training_fails_is_one_line_naming_the_run_and_its_command(tmp_path, capsys):
    config = write_config(tmp_path, seeds=[3], settings={"bad": {"colour": "red"}})
    assert main(["sweep", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("spikeport: error: run bad-seed3: train exited with code 2: config: unknown key 'colour'")
    assert not (tmp_path / "out" / "runs" / "bad-seed3" / "result.json").exists()
