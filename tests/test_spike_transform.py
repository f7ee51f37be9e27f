"""Spike-train-to-spike-train learning (Banerjee 2016): the error functional, exact spike-time
gradients through two layers, the teacher-student task, convergence, deployment and the CLI.

Time in ms; 1 ms = 1 deployed step. Fast: small networks, short windows.
"""
import json
import math

import numpy as np
import pytest
import torch

from models.errors import SpikeportError
from models.exact_spikes import ExactNetwork, membrane
from models.spike_train import (difference_of_exponentials, drive, error_functional, error_gradient,
                                exponential_kernel, pad_times, raster_to_times, times_to_raster)
from toolchain.methods.spike_train.checkpoint import load, load_checkpoint
from toolchain.methods.spike_train.deploy import deploy, spike_time_errors
from toolchain.methods.spike_train.exact import unmatched_spikes
from toolchain.methods.spike_train.surrogate import discretize
from toolchain.methods.spike_train.train import train_spike_transform
from toolchain.tasks.spike_transform import make_task, match_trains, student_network

INF = math.inf
TINY = dict(n_in=10, hidden=4, n_out=1, T=40, patterns=2, test_patterns=1)


def _central_difference(f, x: torch.Tensor, h: float) -> torch.Tensor:
    """d f / d x (every finite entry of x) by central differences."""
    grad = torch.zeros_like(x)
    for idx in zip(*torch.nonzero(torch.isfinite(x), as_tuple=True)):
        up, down = x.clone(), x.clone()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (f(up) - f(down)) / (2 * h)
    return grad


# ---------------------------------------------------------------- error functional
EMITTED = pad_times([[[3.0, 11.2, 30.5], [7.7]], [[], [2.0, 2.9, 40.0]]])
DESIRED = pad_times([[[4.1, 12.0], [7.0, 25.0]], [[18.0], [3.3]]])


@pytest.mark.parametrize("kernel", [difference_of_exponentials(10.0, 2.5), exponential_kernel(5.0)])
def test_error_is_half_the_integrated_squared_drive_difference(kernel):
    grid = torch.arange(0.0, 200.0, 0.001, dtype=torch.float64)
    diff = drive(EMITTED, grid, kernel) - drive(DESIRED, grid, kernel)
    numeric = 0.5 * (diff ** 2).sum(-1) * 0.001
    torch.testing.assert_close(error_functional(EMITTED, DESIRED, kernel), numeric, rtol=2e-3, atol=1e-4)


def test_error_is_zero_only_for_the_desired_train_and_ignores_order_and_padding():
    kernel = difference_of_exponentials()
    assert error_functional(DESIRED, DESIRED, kernel).abs().max() < 1e-12
    shuffled = torch.cat([DESIRED.flip(-1), torch.full(DESIRED.shape[:-1] + (2,), INF, dtype=torch.float64)], -1)
    torch.testing.assert_close(error_functional(EMITTED, shuffled, kernel), error_functional(EMITTED, DESIRED, kernel))
    assert (error_functional(EMITTED, DESIRED, kernel) > 0).all()


@pytest.mark.parametrize("kernel", [difference_of_exponentials(10.0, 2.5), exponential_kernel(5.0)])
def test_error_gradient_in_every_emitted_spike_time_matches_finite_differences(kernel):
    t = EMITTED.clone().requires_grad_(True)
    error_functional(t, DESIRED, kernel).sum().backward()
    numeric = _central_difference(lambda x: error_functional(x, DESIRED, kernel).sum(), EMITTED, 1e-6)
    finite = torch.isfinite(EMITTED)
    torch.testing.assert_close(t.grad[finite], numeric[finite], rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(error_gradient(EMITTED, DESIRED, kernel), t.grad, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------- exact spike times
def _two_layer_case():
    """A calibrated 8 -> 5 -> 2 teacher with multi-spike neurons and its inputs (ms).

    In this case no spike grazes the threshold (V' >= 0.028/ms at every crossing) and none is
    near the window's end, so central differences with h = 1e-7 keep the spike set and are
    accurate; near a grazing crossing a spike time is strongly curved in the parameters and
    finite differences need far smaller steps (the gradient stays exact)."""
    task = make_task(6, n_in=8, hidden=5, n_out=2, T=50, patterns=2, test_patterns=0)
    return task.teacher, task.x_times


def test_event_simulation_crosses_threshold_exactly_and_never_misses_a_crossing():
    net, x = _two_layer_case()
    layers = net.simulate(x)
    assert all(np.isfinite(t).sum(-1).max() >= 2 for t in layers)  # multi-spike neurons in both layers
    grid = torch.arange(0.0, net.t_end, 0.01, dtype=torch.float64)
    for v_at_spike, v_grid, own in zip(_membranes_at_spikes(net, x, layers), net.membranes(x, grid, layers),
                                       layers):
        np.testing.assert_allclose(v_at_spike[np.isfinite(own)], net.neuron.vth, atol=1e-9)
        assert v_grid.max() <= net.neuron.vth + 1e-9


def _membranes_at_spikes(net, x, layers):
    arrivals = torch.as_tensor(x)
    for layer, (w, own) in enumerate(zip(net.weights, layers)):
        own = torch.as_tensor(own)
        yield membrane(own, arrivals + net.delay(layer), w, own, net.neuron).detach().numpy()
        arrivals = own


def test_spike_time_gradients_through_two_layers_match_finite_differences():
    net, x = _two_layer_case()
    kernel = difference_of_exponentials()
    hidden_star, out_star = (torch.from_numpy(t) for t in net.simulate(x))
    coef = torch.randn(hidden_star.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    desired = out_star + 1.0

    def loss(hidden, out):  # a hidden-layer term plus Banerjee's error of the output
        hidden_term = torch.where(torch.isfinite(hidden), coef * hidden, torch.zeros_like(hidden)).sum()
        return hidden_term + error_functional(out, desired, kernel).sum()

    def resimulated_loss(w0, w1, x_times):
        with torch.no_grad():
            net.weights[0].copy_(w0)
            net.weights[1].copy_(w1)
            hidden, out = (torch.from_numpy(t) for t in net.simulate(x_times))
        assert torch.equal(torch.isfinite(hidden), torch.isfinite(hidden_star))  # the spike set is unchanged
        assert torch.equal(torch.isfinite(out), torch.isfinite(out_star))
        return loss(hidden, out)

    w0, w1 = (w.detach().clone() for w in net.weights)
    x_var = x.clone().requires_grad_(True)
    loss(*net(x_var)).backward()
    exact = [net.weights[0].grad.clone(), net.weights[1].grad.clone(), x_var.grad]
    numeric = [_central_difference(lambda w: resimulated_loss(w, w1, x), w0, 1e-7),
               _central_difference(lambda w: resimulated_loss(w0, w, x), w1, 1e-7),
               _central_difference(lambda t: resimulated_loss(w0, w1, t), x, 1e-7)]
    inputs = torch.isfinite(x)
    exact[2], numeric[2] = exact[2][inputs], numeric[2][inputs]
    for name, grad, fd in zip(["W hidden", "W out", "input times"], exact, numeric):
        assert fd.abs().max() > 1e-2, name  # not a trivially zero case
        torch.testing.assert_close(grad, fd, rtol=1e-4, atol=1e-4, msg=name)


def test_discretisation_samples_the_continuous_membrane_at_integer_ms():
    from backends.emulator import run
    from toolchain import ir as irm
    from toolchain.lower import lower

    net = ExactNetwork([5, 3], t_end=30.0)
    with torch.no_grad():
        net.weights[0].copy_(torch.rand(3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.01)
    x = (np.random.RandomState(0).rand(2, 30, 5) < 0.2).astype(np.float32)
    ir = lower(discretize(net))
    v_steps = run(ir, x, mode="float")[f"{ir.names(irm.Neuron)[0]}/v"]  # step n = index n-1
    no_spikes = torch.full((2, 3, 1), INF, dtype=torch.float64)
    v_cont = membrane(torch.arange(1.0, 31.0, dtype=torch.float64), raster_to_times(x), net.weights[0],
                      no_spikes, net.neuron)
    assert np.abs(v_steps).max() > 0.1  # sub-threshold, but not nothing
    np.testing.assert_allclose(v_steps, v_cont.detach().numpy().transpose(0, 2, 1), atol=1e-6)


# ------------------------------------------------------------------ task, match
def test_teacher_task_is_deterministic_per_seed_and_every_desired_train_is_deployable():
    a, b, c = make_task(5, **TINY), make_task(5, **TINY), make_task(6, **TINY)
    for key in ("x_times", "target_times", "x_test_times", "target_test_times"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key))
    assert not torch.equal(a.target_times, c.target_times)
    assert (torch.isfinite(a.target_times).sum(-1) >= 1).all()  # nobody is silent
    gaps = a.target_times[..., 1:] - a.target_times[..., :-1]
    assert gaps[torch.isfinite(gaps)].min() >= a.config["min_target_gap"]
    assert a.x_times.shape[:2] == (2, 10) and a.target_times.shape[:2] == (2, 1)


def test_task_refuses_an_unknown_option_by_name():
    with pytest.raises(SpikeportError, match="hiden"):
        make_task(0, hiden=3)


def test_match_trains_needs_every_count_right_and_every_spike_within_tolerance():
    target = pad_times([[[10.0, 20.0], [5.0]]])
    assert match_trains(pad_times([[[10.9, 19.2], [4.5]]]), target)["converged"]
    late = match_trains(pad_times([[[10.0, 21.5], [5.0]]]), target)
    assert not late["converged"] and late["count_ok"] == 1.0 and late["max_abs"] == pytest.approx(1.5)
    extra = match_trains(pad_times([[[10.0, 20.0, 30.0], [5.0]]]), target)
    assert not extra["converged"] and extra["count_ok"] == 0.5 and extra["max_abs"] == 0.0


def test_unmatched_spikes_come_from_a_one_to_one_assignment_and_reach_breaks_far_pairs():
    target = pad_times([[[11.0, 30.0]]])
    extra, missing = unmatched_spikes(pad_times([[[10.0, 12.0, 60.0]]]), target)
    assert extra.tolist() == [[[False, False, True]]] and not missing.any()
    far = pad_times([[[10.0, 60.0]]])  # right count, but 60 is 30 ms from its partner
    extra, missing = unmatched_spikes(far, target)
    assert not extra.any() and not missing.any()
    extra, missing = unmatched_spikes(far, target, reach=10.0)
    assert extra.tolist() == [[[False, True]]] and missing.tolist() == [[[False, True]]]


def test_spike_time_errors_score_steps_against_the_ceiling_of_the_desired_time():
    target = pad_times([[[9.3, 20.0, 31.5]]])
    raster = np.zeros((1, 40, 1), np.uint8)
    raster[0, [9, 20, 37], 0] = 1  # steps 10 (exact), 21 (one late), 38 (no partner within 5)
    score = spike_time_errors(raster, target)
    assert score["matched"] == 2 and score["missing"] == 1 and score["extra"] == 1
    np.testing.assert_array_equal(np.sort(score["errors"]), [0.0, 1.0])
    assert score["mean_abs"] == 0.5 and score["exact"] == 0.5


def test_raster_and_times_round_trip_on_the_step_grid():
    raster = (np.random.RandomState(2).rand(3, 20, 4) < 0.3).astype(np.uint8)
    np.testing.assert_array_equal(times_to_raster(raster_to_times(raster), 20), raster)


# -------------------------------------------------------------------- training
@pytest.mark.parametrize("method, iterations", [("exact", 25), ("surrogate", 60)])
def test_training_at_least_halves_the_error_on_a_tiny_task_and_keeps_the_best_state(method, iterations):
    result = train_spike_transform(method, 0, TINY, dict(iterations=iterations, lr=1e-2))
    errors = [row["error"] for row in result.history]
    assert result.final["error"] == min(errors) < 0.5 * errors[0]
    assert result.history[result.final["best_iteration"]]["error"] == result.final["error"]


# ------------------------------------------------------------------- deployment
def test_the_teacher_deployed_emits_its_desired_trains_within_a_step_on_average():
    task = make_task(0, **TINY)
    scores = deploy(task.teacher, task, lava=False)["scores"]
    for engine in ("float", "fixed"):
        s = scores[engine]["vs_target"]
        assert s["matched"] >= 0.75 * s["target_spikes"] and s["mean_abs"] <= 1.0, (engine, s)


@pytest.mark.lava
def test_lava_is_identical_to_the_emulator_on_a_deployed_student():
    task = make_task(0, **TINY)
    result = deploy(student_network(task, 0), task, lava=True)
    same = result["lava_vs_emulator"]
    assert same["all_identical"] and same["total"] > 0, same
    assert any(r.endswith("/s") and np.asarray(result["runs"]["lava"][r]).any() for r in result["runs"]["lava"])


# ------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("method", ["exact", "surrogate"])
def test_train_command_writes_a_checkpoint_that_rebuilds_the_student(method, tmp_path, capsys):
    from toolchain import cli

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"task": TINY}))
    out = tmp_path / "st.pt"
    assert cli.main(["train", "--task", "spike-transform", "--method", method, "--epochs", "3", "--config",
                     str(config), "--out", str(out), "--quiet"]) == 0
    assert f"spike-transform ({method}, seed 0): error" in capsys.readouterr().out
    model, payload = load_checkpoint(out)
    assert payload["method"] == method and payload["final"]["iterations"] <= 3
    task = make_task(payload["task"]["seed"], **{k: payload["task"][k] for k in TINY})
    if method == "exact":
        assert isinstance(model, ExactNetwork)
        model.simulate(task.x_times)
    else:
        assert model(task.raster(task.x_times))[-1].s.shape == (2, 40, 1)


def test_train_command_refuses_a_bad_option_in_one_line(tmp_path, capsys):
    from toolchain import cli

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"method": {"learning_rate": 1}}))
    code = cli.main(["train", "--task", "spike-transform", "--config", str(config), "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "learning_rate" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


# ------------------------------------------------------- verify / compile CLI
# The tiny surrogate checkpoint matches ~88% of the target spikes within a step after quantization (float:
# 100%); tests of other behaviour accept that, the criteria tests below pin the defaults.
LENIENT = ["--min-match", "0.5", "--max-accuracy-drop", "0.5"]


@pytest.fixture(scope="module")
def surrogate_checkpoint(tmp_path_factory):
    from toolchain import cli

    d = tmp_path_factory.mktemp("spike_transform")
    (d / "c.json").write_text(json.dumps({"task": TINY}))
    path = d / "sg.pt"
    assert cli.main(["train", "--task", "spike-transform", "--method", "surrogate", "--epochs", "150",
                     "--config", str(d / "c.json"), "--out", str(path), "--quiet"]) == 0
    return path


def test_compile_recognises_a_spike_transform_checkpoint_and_writes_a_fixed_point_ir(surrogate_checkpoint,
                                                                                     tmp_path):
    from toolchain import cli
    from toolchain.formats import onnx as onnx_io

    out = tmp_path / "st.onnx"
    assert cli.main(["compile", str(surrogate_checkpoint), "--out", str(out)]) == 0
    ir = onnx_io.load(out)
    assert ir.is_fixed and ir.meta["method"] == "surrogate" and ir.meta["task"] == "spike-transform"


def test_verify_scores_the_deployed_output_against_the_target_and_writes_a_report_folder(surrogate_checkpoint,
                                                                                         tmp_path, capsys):
    import html

    from toolchain import cli

    rep_dir = tmp_path / "rep"
    rc = cli.main(["verify", str(surrogate_checkpoint), "--backends", "float,emulator", "--report", str(rep_dir),
                   *LENIENT])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "emulator fixed" in out and "mean |error|" in out and "lava: not run" in out
    assert "\ncriteria:\n  PASS  target spikes matched within +-1 step (emulator fixed): " in out
    assert out.splitlines()[-1] == f"report: {rep_dir / 'report.html'}"
    assert sorted(p.name for p in rep_dir.iterdir()) == ["rasters.png", "report.html", "report.json"]
    rep = json.loads((rep_dir / "report.json").read_text())
    fixed = rep["engines"]["fixed"]["vs_target"]
    assert set(rep["engines"]) == {"float", "fixed"} and "lava_vs_emulator" not in rep
    assert fixed["target_spikes"] == sum(len(t) for p in rep["trains"]["target"] for t in p) > 0
    assert fixed["matched"] + fixed["missing"] == fixed["target_spikes"]
    assert set(fixed["within_steps"]) >= {"0", "1"}
    assert (rep_dir / "rasters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (rep_dir / "report.html").read_text()
    summary = "\n".join(out.splitlines()[:-1])
    assert f"<h2>Summary</h2><pre>{html.escape(summary)}</pre>" in page
    assert "<h2>Output trains</h2>" in page and page.count("src='data:image/png;base64,") == 1
    # the shared verify frame: verdict, criteria, ..., versions and seeds; the shared report.json keys
    assert page.index("<h1>spikeport verify: <span class='pass'>PASS</span></h1>") < page.index("<h2>Criteria</h2>") \
        < page.index("<h2>Summary</h2>") < page.index("<h2>Versions and seeds</h2>")
    assert rep["passed"] and rep["exit_status"] == 0 and rep["format"] == "spikeport-verify-report"
    assert rep["headline"]["deployed"] == fixed["within_steps"]["1"] and rep["headline"]["lava"] is None


def test_verify_never_replaces_a_folder_that_is_not_a_report_and_refuses_before_running(surrogate_checkpoint,
                                                                                        tmp_path, monkeypatch,
                                                                                        capsys):
    import toolchain.methods.spike_train.report as report
    from toolchain import cli

    monkeypatch.setattr(report, "verify_report", lambda *a, **k: pytest.fail("ran before refusing"))
    (tmp_path / "model.pt").write_bytes(b"precious")
    assert cli.main(["verify", str(surrogate_checkpoint), "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "exists and is not a spikeport report folder" in err and len(err.splitlines()) == 1, err
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"] and (tmp_path / "model.pt").read_bytes() == b"precious"


def test_verify_split_test_scores_the_held_out_patterns_against_their_own_targets(surrogate_checkpoint,
                                                                                   tmp_path, capsys):
    from toolchain import cli
    from toolchain.methods.spike_train.report import train_lists

    rc = cli.main(["verify", str(surrogate_checkpoint), "--backends", "emulator", "--split", "test",
                   "--report", str(tmp_path / "rep"), "--min-match", "0"])
    out = capsys.readouterr().out
    assert rc == 0 and " held-out test patterns" in out, out
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    _, _, task = load(surrogate_checkpoint)
    assert rep["split"] == "test" and rep["patterns"] == len(task.target_test_times)
    assert rep["trains"]["target"] == train_lists(task.target_test_times) != train_lists(task.target_times)
    assert rep["engines"]["fixed"]["vs_target"]["target_spikes"] == sum(len(t) for p in rep["trains"]["target"]
                                                                        for t in p)


def test_verify_exits_1_when_lava_differs_from_the_emulator(surrogate_checkpoint, tmp_path, monkeypatch, capsys):
    import backends.lava.runner as runner
    from backends.emulator import run
    from toolchain import cli

    def lava_with_one_flipped_spike(ir, x, record=None, *, mode="fixed", **kw):
        out = {k: np.array(v, copy=True) for k, v in run(ir, x, record, mode=mode).items()}
        key = next(k for k in out if k.endswith("/s"))
        out[key][0, 0, 0] = 1 - out[key][0, 0, 0]
        return out

    monkeypatch.setattr(runner, "run_lava", lava_with_one_flipped_spike)
    rc = cli.main(["verify", str(surrogate_checkpoint), "--no-report", *LENIENT])
    out = capsys.readouterr().out
    assert rc == 1 and "FAILED: bit-identical lava = emulator fixed: " in out, out


@pytest.mark.lava
def test_verify_of_a_spike_transform_checkpoint_finds_lava_identical_to_the_emulator(surrogate_checkpoint,
                                                                                     tmp_path, capsys):
    from toolchain import cli

    rc = cli.main(["verify", str(surrogate_checkpoint), "--report", str(tmp_path / "rep"), *LENIENT])
    out = capsys.readouterr().out
    assert rc == 0, out
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["lava_vs_emulator"]["all_identical"] and rep["lava_vs_emulator"]["total"] > 0
    assert rep["engines"]["lava"]["vs_target"] == rep["engines"]["fixed"]["vs_target"]


def test_verify_of_an_exact_checkpoint_with_a_silent_output_writes_strict_json(tmp_path, capsys):
    from toolchain import cli

    (tmp_path / "c.json").write_text(json.dumps({"task": TINY}))
    path = tmp_path / "ex.pt"
    assert cli.main(["train", "--task", "spike-transform", "--method", "exact", "--epochs", "2",
                     "--config", str(tmp_path / "c.json"), "--out", str(path), "--quiet"]) == 0
    # two iterations leave the output silent: no target spike is matched, which fails the default criterion
    assert cli.main(["verify", str(path), "--backends", "emulator", "--report", str(tmp_path / "rep")]) == 1
    out = capsys.readouterr().out
    assert "FAILED: target spikes matched within +-1 step (emulator fixed): 0.0% of 8 target spikes " \
           "(minimum 90.0%)" in out and out.splitlines()[-2] == "verify: FAIL" or "verify: FAIL" in out, out
    rep = json.loads((tmp_path / "rep" / "report.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert rep["method"] == "exact" and rep["engines"]["fixed"]["vs_target"]["target_spikes"] > 0
    assert not rep["passed"] and rep["exit_status"] == 1


@pytest.mark.parametrize("argv, message", [
    (["--backends", "emulator,loihi"], "unknown engine 'loihi' for a spike-transform"),
    (["--dt", "0.5"], "--dt applies to TTFS checkpoints only; "),
])
def test_verify_of_a_spike_transform_checkpoint_refuses_bad_options_in_one_line(surrogate_checkpoint, argv,
                                                                                message, tmp_path, capsys):
    from toolchain import cli

    rc = cli.main(["verify", str(surrogate_checkpoint), "--report", str(tmp_path / "rep"), *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "rep").exists()


def test_verify_finetune_qat_reports_post_training_and_fine_tuned_deployments(surrogate_checkpoint, tmp_path,
                                                                              capsys):
    from toolchain import cli

    rc = cli.main(["verify", str(surrogate_checkpoint), "--backends", "float,emulator", "--finetune-qat", "20",
                   "--report", str(tmp_path / "rep"), *LENIENT])
    out = capsys.readouterr().out
    assert rc == 0 and "quantization-aware fine-tuning: 20 iterations" in out and "emulator PTQ" in out, out
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert set(rep["engines"]) == {"float", "fixed_ptq", "fixed"}
    q = rep["qat"]
    assert q["iterations"] == 20 and q["error"] <= q["ptq_error"] and 0 <= q["best_iteration"] <= 20
    # the kept state is the PTQ start or better on the training loss; on this checkpoint it is strictly better
    assert rep["engines"]["fixed"]["vs_target"]["mean_abs"] < rep["engines"]["fixed_ptq"]["vs_target"]["mean_abs"]


def test_verify_fails_with_exit_1_when_the_deployed_output_matches_fewer_target_spikes_than_min_match(
        surrogate_checkpoint, tmp_path, capsys):
    from toolchain import cli

    assert cli.main(["verify", str(surrogate_checkpoint), "--backends", "emulator", "--report", str(tmp_path / "a"),
                     "--min-match", "0", "--max-accuracy-drop", "1"]) == 0
    measured = json.loads((tmp_path / "a" / "report.json").read_text())["headline"]["deployed"]
    assert 0 < measured < 1
    capsys.readouterr()
    rc = cli.main(["verify", str(surrogate_checkpoint), "--backends", "emulator", "--no-report",
                   "--min-match", str(measured + 0.01), "--max-accuracy-drop", "1"])
    out = capsys.readouterr().out
    assert rc == 1 and f"FAIL  target spikes matched within +-1 step (emulator fixed): {measured:.1%}" in out, out
    assert out.rstrip().splitlines()[-2:] == ["verify: FAIL", out.rstrip().splitlines()[-1]]
    assert out.rstrip().splitlines()[-1].startswith("FAILED: target spikes matched")


def test_verify_fails_when_the_matched_share_falls_from_float_to_fixed_more_than_max_accuracy_drop(
        surrogate_checkpoint, capsys):
    from toolchain import cli

    rc = cli.main(["verify", str(surrogate_checkpoint), "--backends", "emulator", "--no-report", "--min-match", "0",
                   "--max-accuracy-drop", "0"])
    out = capsys.readouterr().out
    # on this checkpoint quantization moves a spike by two steps: the share falls from 100% to 87.5%
    assert rc == 1 and "FAIL  target spikes matched within +-1 step change emulator float -> emulator fixed: -" in out


@pytest.mark.parametrize("flag", ["--samples", "--lava-samples"])
def test_verify_refuses_more_samples_than_the_split_has_patterns_in_one_line(surrogate_checkpoint, flag, tmp_path,
                                                                            capsys):
    from toolchain import cli

    rc = cli.main(["verify", str(surrogate_checkpoint), flag, "3", "--report", str(tmp_path / "rep")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and f"verify {flag}: " in err and "is outside [1, 2]" in err, err
    assert not (tmp_path / "rep").exists()


@pytest.mark.lava
def test_verify_samples_and_lava_samples_choose_the_first_patterns_scored_and_run_on_lava(surrogate_checkpoint,
                                                                                        tmp_path, capsys):
    from toolchain import cli

    rc = cli.main(["verify", str(surrogate_checkpoint), "--samples", "2", "--lava-samples", "1", "--report",
                   str(tmp_path / "rep"), *LENIENT])
    out = capsys.readouterr().out
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rc == 0, out
    assert rep["patterns"] == 2 and rep["lava_vs_emulator"]["samples"] == 1
    assert "PASS  bit-identical lava = emulator fixed: 1/1 samples identical" in out
    assert rep["engines"]["lava"]["vs_target"]["target_spikes"] < rep["engines"]["fixed"]["vs_target"]["target_spikes"]
