"""The smooth method end to end: training from silence, resume, QIF deployment, Lava identity, refusals."""
from __future__ import annotations

import contextlib
import io
import json
import types

import numpy as np
import pytest
import torch

from backends import emulator
from toolchain import formats
from toolchain.cli import main
from toolchain.ir import passes
from toolchain import scaleout
from toolchain.methods.smooth import deploy, fixed, qat
from toolchain.methods.smooth.lower import calibrate_thresholds
from toolchain.methods.smooth.train import load_checkpoint, train_smooth
from toolchain.tasks import datasets
from toolchain.verify.compare import compare_bit_identity

SMALL = dict(hidden=[40], max_train=600, batch_size=25, threads=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Digits, one hidden layer of 40, 4 epochs on 600 samples (about 10 s)."""
    path = tmp_path_factory.mktemp("smooth") / "digits.pt"
    meta = train_smooth("digits", epochs=4, out=path, progress=False, log=None, **SMALL)
    return path, meta


def cli(*args):
    """``spikeport ARGS`` in this process (`toolchain.cli.main`, what the entry point exits with):
    (returncode, stdout, stderr); argparse's own errors exit 2 as in a shell."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def test_training_starts_silent_and_learns_from_pseudospikes(trained):
    path, meta = trained
    from toolchain.methods.smooth.train import history

    start, end = history(path)[0], history(path)[-1]
    assert start["silent_fraction"] == 1.0 and start["spikes_per_neuron"] == 0.0
    assert end["silent_fraction"] < 0.5 and end["spikes_per_neuron"] > 0.05
    assert end["accuracy"] > 0.5 > start["accuracy"]


def test_an_interrupted_run_resumed_equals_the_uninterrupted_one(tmp_path):
    whole, split = tmp_path / "whole.pt", tmp_path / "split.pt"
    kw = dict(progress=False, log=None, **{**SMALL, "max_train": 100})
    train_smooth("digits", epochs=2, out=whole, **kw)
    train_smooth("digits", epochs=1, out=split, **kw)
    train_smooth("digits", epochs=2, out=split, resume=True, **kw)
    a, b = torch.load(whole, weights_only=True), torch.load(split, weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert [h["accuracy"] for h in a["history"]] == [h["accuracy"] for h in b["history"]]


def test_resume_refuses_a_changed_setting_in_one_line(trained, tmp_path):
    path, _ = trained
    config = tmp_path / "c.json"
    config.write_text(json.dumps({**SMALL, "gamma": 0.5}))
    proc = cli("train", "--task", "digits", "--method", "smooth", "--out", path, "--resume", "--config", config,
               "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"spikeport: error: {path}: --resume with gamma=0.5, but the checkpoint was trained with gamma=0.01 "
        "(only epochs may change)"]


def test_thresholds_are_calibrated_per_step_so_free_neurons_fire_on_time_on_average():
    previous = 0.0
    for k in (6, 7, 8, 9):
        x_th, x_reset = calibrate_thresholds(k, 6 / np.pi, 1.0, 2.0)
        assert x_th > previous and x_reset < 0  # a finer step tolerates a higher cut
        previous = x_th


@pytest.fixture(scope="module")
def compiled(trained):
    net, ir, _ = deploy.compile_smooth(trained[0], 8)
    return net, ir


def test_the_compiled_network_is_a_validated_fixed_point_qif_network_that_round_trips_onnx(compiled, tmp_path):
    _, ir = compiled
    passes.validate(ir, require_fixed=True)
    assert [op.kind for _, op in ir.nodes()].count("QIF") == 2
    formats.save(ir, tmp_path / "smooth.onnx")
    assert formats.load(tmp_path / "smooth.onnx") == ir


def test_deployed_first_spikes_follow_the_continuous_ones_within_a_few_steps(compiled, trained):
    net, ir = compiled
    x, y = deploy.load_split("digits", 120)
    cont = deploy.continuous(net, x, ir.meta["run_config"])
    for engine in ("float-emulator", "emulator"):
        dep = deploy.run_deployed(engine, ir, cont.t_in)
        for row in deploy.timing(cont, dep, ir.meta["smooth"]["dt"]):
            if row["pairs"]:
                assert row["median_abs"] < 1.5 and row["max_abs"] < 10, (engine, row)
            assert row["count_agreement"] > 0.99, (engine, row)
        assert abs(deploy.accuracy(dep.pred, y) - deploy.accuracy(cont.pred, y)) < 0.1


@pytest.mark.parametrize("weight_exp, message", [
    (3, r"layers.0: x=-\d+ at step 2 is outside \[-8388608, 8388607\] \(24-bit state"),
    (4, r"layers.0: u=-\d+ at step 2 is outside \[-8388607, 8388608\] \(24-bit current"),
])
def test_a_state_beyond_its_24_bit_register_is_refused_never_wrapped_or_saturated(compiled, weight_exp, message):
    import copy

    ir = copy.deepcopy(compiled[1])
    ir.op("l1").fixed.x = np.full(ir.op("l1").n, -8_000_000)
    synapse = ir.op("l1.dense").fixed
    synapse.weights[:], synapse.weight_exp = -254, weight_exp  # every input strongly inhibitory
    with pytest.raises(Exception, match=message):
        emulator.run(ir, np.ones((1, 5, ir.op("input").n), bool))


def test_verify_without_lava_passes_and_writes_the_report(trained, tmp_path):
    proc = cli("verify", trained[0], "--samples", "60", "--backends", "float,emulator", "--sweep", "7,8",
               "--report", tmp_path / "rep")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "sweep k=7" in proc.stdout
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["engines"]["emulator"]["timing"][0]["pairs"] > 0
    assert {p.name for p in (tmp_path / "rep").iterdir()} >= {"report.html", "step_sweep.png",
                                                              "accuracy_epochs.png", "smooth_fixed.onnx"}
    # the shared verify frame and headline (`toolchain.verify.verdict`)
    assert "\ncriteria:\n  PASS  bit-identical torch fixed mode (QAT's) = emulator: " in proc.stdout
    assert "\n  PASS  accuracy change continuous (ordinary spikes) -> emulator: " in proc.stdout
    assert report["passed"] and report["headline"]["deployed"] == report["engines"]["emulator"]["accuracy"]
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.index("<h2>Criteria</h2>") < page.index("<h2>Summary</h2>") < page.index("<h2>Versions and seeds")


@pytest.mark.parametrize("args, message", [
    (["--step-exponent", "0"], "--step-exponent=0 is outside [1, 16] (h = 2**-K)"),
    (["--sweep", "7,x"], "--sweep='7,x' is outside the allowed values (comma-separated integers, or 'none')"),
    (["--sweep", "30"], "--sweep: step exponent 30 is outside [1, 16]"),
])
def test_bad_verify_options_are_one_line_and_exit_2(trained, args, message):
    proc = cli("verify", trained[0], "--no-report", *args)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"spikeport: error: {message}"]


@pytest.mark.lava
def test_lava_runs_the_deployed_network_bit_identically_to_the_emulator(compiled):
    net, ir = compiled
    x, _ = deploy.load_split("digits", 6)
    cont = deploy.continuous(net, x, ir.meta["run_config"])
    identity = deploy.bit_identity(ir, cont.t_in)
    assert identity.identical_samples == identity.samples == 6
    assert identity.arrays == 6 * 2 * 3  # u, x, s of two layers


@pytest.mark.lava
def test_the_torch_fixed_mode_is_bit_identical_to_lava_itself(compiled):
    net, ir = compiled
    x, _ = deploy.load_split("digits", 4)
    encoded = deploy.encode(deploy.continuous(net, x, ir.meta["run_config"]).t_in, ir.meta["smooth"])
    identity = compare_bit_identity("torch-fixed", fixed.run(ir, encoded), "lava", scaleout.run("lava", ir, encoded))
    assert identity.identical_samples == identity.samples == 4 and identity.arrays == 4 * 2 * 3


def test_the_torch_fixed_mode_computes_the_emulators_integers_at_every_step(compiled):
    net, ir = compiled
    x, _ = deploy.load_split("digits", 30)
    cont = deploy.continuous(net, x, ir.meta["run_config"])
    identity = deploy.torch_identity(ir, cont.t_in)
    assert identity.identical_samples == identity.samples == 30
    assert identity.arrays == 30 * 2 * 3 and identity.first_divergence is None


def test_straight_through_times_give_the_deployed_value_and_the_continuous_gradient():
    t_cont = torch.tensor([[0.5, 1.0, 3.0]], requires_grad=True)
    t_dep = torch.tensor([[0.6, float("inf"), 1.2]])
    t = qat.straight_through_times(t_cont, t_dep)
    assert t[0].tolist() == pytest.approx([0.6, 1.0, 1.2])  # a silent deployed neuron keeps its pseudospike
    (t * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert t_cont.grad.tolist() == [[1.0, 2.0, 3.0]]


def test_qat_measures_the_deployed_accuracy_the_emulator_measures(trained, compiled):
    net, ir = compiled
    path, meta = trained
    net, meta = load_checkpoint(path)
    data = datasets.load_task("digits")
    measured = qat.evaluate(net, qat.Deployment(net, 8), data, meta["run_config"], samples=60)
    x, y = deploy.load_split("digits", 60)
    cont = deploy.continuous(net.double(), x, meta["run_config"])
    emulated = deploy.run_deployed("emulator", ir, cont.t_in)
    assert measured["accuracy_deployed"] == deploy.accuracy(emulated.pred, y)


def test_qat_fine_tuning_from_the_cli_writes_a_checkpoint_verify_takes(trained, tmp_path):
    out = tmp_path / "qat.pt"
    run = cli("train", "--method", "smooth", "--task", "digits", "--qat-from", trained[0], "--qat-epochs", "1",
              "--step-exponent", "6", "--out", out, "--quiet", "--threads", "1")
    assert run.returncode == 0, run.stderr
    assert "deployed accuracy" in run.stdout and out.is_file()
    check = cli("verify", out, "--samples", "40", "--backends", "float,emulator", "--sweep", "none", "--no-report")
    assert "torch fixed mode (QAT's) = emulator: 20/20 samples identical" in check.stdout, check.stdout + check.stderr


def test_qat_flags_without_qat_from_are_refused_in_one_line(tmp_path):
    run = cli("train", "--method", "smooth", "--task", "digits", "--qat-epochs", "2", "--out", tmp_path / "x.pt")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].endswith("--qat-epochs applies only with --qat-from CHECKPOINT")
