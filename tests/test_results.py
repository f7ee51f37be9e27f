"""`spikeport results CONFIG`: task x method x seeds trained and verified (float, deployed, Lava identity),
one dated table (Markdown, CSV, JSON, plot) beside the published figures; resumable; bad configs one line."""
import csv
import json

import pytest

from test_verify import TINY
from toolchain import results
from toolchain.cli import main

TTFS_TINY = dict(epochs=1, hidden=[16], max_train=300)  # barely trained: the table is under test here
CONFIG = dict(seeds=[0, 1], verify=dict(samples=40, lava_samples=None, backends="float,emulator"),
              entries=[dict(task="digits", method="surrogate", config=TINY,
                            verify=dict(lava_samples=4, backends="float,emulator,lava")),
                       dict(task="digits", method="ttfs", config=TTFS_TINY)])


def write_config(folder, **changes):
    path = folder / "results.json"
    path.write_text(json.dumps({**CONFIG, **changes}))
    return path


@pytest.mark.lava
def test_results_trains_and_verifies_every_entry_and_seed_writes_a_dated_table_and_resumes(tmp_path, capsys,
                                                                                         monkeypatch):
    config, out = write_config(tmp_path), tmp_path / "out"
    assert main(["results", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 to run" in printed and "results: 4/4 runs passed verify" in printed
    md = (out / "results.md").read_text()
    assert md.startswith(f"Results of `spikeport results {config} --out {out}`, written 20") and " UTC." in md
    assert md in printed
    rows = json.loads((out / "results.json").read_text())["entries"]
    assert [(r["task"], r["method"], r["seeds"]) for r in rows] == [("digits", "surrogate", 2), ("digits", "ttfs", 2)]
    surrogate, ttfs = rows
    for r in rows:
        assert r["metric"] == "accuracy" and r["passed"] == 2
        assert r["float_min"] <= r["float_mean"] <= r["float_max"] and r["deployed_min"] <= r["deployed_max"]
    assert surrogate["float_mean"] > 0.3 and surrogate["deployed_mean"] > 0.3  # trained (10 classes), not chance
    assert surrogate["lava_identical_samples"] == surrogate["lava_samples"] == 8  # 4 Lava samples x 2 seeds
    assert ttfs["lava_samples"] is None  # this entry ran no Lava: "-", never a made-up count
    assert "| digits | surrogate | 2 | accuracy | " in md and " | 8/8 | 2/2 | - |" in md
    with open(out / "results.csv") as f:
        assert [r["entry"] for r in csv.DictReader(f)] == ["digits-surrogate", "digits-ttfs"]
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    monkeypatch.setattr("toolchain.sweep.run_one", lambda *a: pytest.fail("a finished run was redone"))
    assert main(["results", str(config), "--out", str(out)]) == 0
    assert "4 already finished, 0 to run" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["entries"] == rows


def _row(task, method, metric="accuracy", **values):
    return dict(metric=metric, float_accuracy=values.get("f"), emulator_accuracy=values.get("d"),
                lava_accuracy=None, lava_identical_samples=values.get("li"), lava_samples=values.get("ls"),
                passed=values.get("passed", True), train_seconds=1.0)


def test_the_table_puts_the_published_figures_beside_their_task_and_method_and_aggregates_over_seeds():
    runs = [results.Run(f"{t}-{m}-seed{s}", f"{t}-{m}", s, t, m, {}, {}) for t, m in
            (("mnist", "ttfs"), ("yinyang", "ttfs"), ("mnist", "smooth")) for s in (0, 1)]
    table = [_row("mnist", "ttfs", f=0.97, d=0.96, li=20, ls=20), _row("mnist", "ttfs", f=0.95, d=0.94, li=19, ls=20),
             _row("yinyang", "ttfs", f=0.9, d=0.9), _row("yinyang", "ttfs", f=0.8, d=0.7, passed=False),
             _row("mnist", "smooth", f=0.5, d=0.5), _row("mnist", "smooth", f=0.5, d=0.5)]
    rows = results.aggregate(runs, table)
    mnist = rows[0]
    assert mnist["float_mean"] == pytest.approx(0.96) and (mnist["deployed_min"], mnist["deployed_max"]) == (0.94, 0.96)
    assert (mnist["lava_identical_samples"], mnist["lava_samples"]) == (39, 40)
    assert rows[1]["passed"] == 1 and rows[1]["lava_samples"] is None
    md = results.markdown(rows, "spikeport results x.json --out r", "2026-12-01 23:00 UTC")
    assert "| mnist | ttfs | 2 | accuracy | 96.0% (95.0%-97.0%) | 95.0% (94.0%-96.0%) | - | 39/40 | 2/2 | " \
           "Mostafa 2018, TTFS, software: 97.14% |" in md
    assert "Göltz et al. 2021, TTFS, software: 95.9%; Göltz et al. 2021, TTFS, BrainScaleS-2: 95.0%" in md
    assert "Klos & Memmesheimer 2025, smooth exact gradients: 97.6%" in md and "| 1/2 |" in md


def test_an_nmse_entry_is_shown_as_a_plain_ratio_and_plotted_in_its_own_panel_not_as_a_percentage():
    runs = [results.Run(f"{t}-{m}-seed0", f"{t}-{m}", 0, t, m, {}, {}) for t, m in
            (("digits", "surrogate"), ("predictive", "gate"))]
    table = [_row("digits", "surrogate", f=0.97, d=0.96), _row("predictive", "gate", "nmse", f=0.0869, d=0.0878)]
    rows = results.aggregate(runs, table)
    md = results.markdown(rows, "spikeport results x.json --out r", "2026-12-02 13:00 UTC")
    assert "| predictive | gate | 1 | nmse | 0.0869 (0.0869-0.0869) | 0.0878 (0.0878-0.0878) |" in md
    assert "| digits | surrogate | 1 | accuracy | 97.0% (97.0%-97.0%) |" in md
    fig = results.figure(rows)
    percent, ratio = fig.axes[:2]
    assert percent.get_ylabel().startswith("metric (%)") and ratio.get_ylabel().startswith("NMSE")
    assert ratio.lines[0].get_ydata()[0] == pytest.approx(0.0869)  # the float point, unscaled


@pytest.mark.parametrize("changes, message", [
    (dict(entries=[]), "entries=[] is outside the allowed values"),
    (dict(entries=[dict(task="digits")]), "entries[0]: method=None is outside the allowed values (a string)"),
    (dict(entries=[dict(task="digits", method="ttfs", colour=1)]), "entries[0]: unknown key 'colour'"),
    (dict(entries=[dict(task="xor", method="ttfs")]), "entries[0]: train: --method ttfs applies to --task"),
    (dict(entries=[dict(task="digits", method="ttfs")] * 2), "entries[1]: name 'digits-ttfs' repeats"),
    (dict(entries=[dict(task="digits", method="ttfs", verify=dict(samples=0))]),
     "entries[0]: verify: samples=0 is outside [1, inf)"),
    (dict(seeds=[1, 1]), "seeds=[1, 1] repeats a seed"),
    (dict(plot=True), "unknown key 'plot'"),
])
def test_a_bad_results_config_is_one_line_naming_the_entry_and_key_with_exit_2_and_no_output(tmp_path, capsys,
                                                                                           changes, message):
    config = write_config(tmp_path, **changes)
    assert main(["results", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()
