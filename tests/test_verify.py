"""`spikeport verify`: passes on a faithful deployment, fails (naming where) on a broken one."""
import json

import numpy as np
import pytest
import torch

from models import fixed_point as fx
from toolchain import formats
from toolchain.formats import onnx as onnx_io
from toolchain.cli import main
from toolchain.lower import lower
from toolchain.methods.superspike import checkpoint
from toolchain.methods.superspike.compile import compile_checkpoint
from toolchain.methods.superspike.train import train
from toolchain.verify import held_out_inputs, verify

TINY = dict(epochs=4, hidden=[16], lr=2e-2, weight_decay=0.05,  # the decay it was built with, not the digits default
            encoding=dict(name="regular", T=12, max_rate=0.5))
SAMPLES = 40


def train_tiny():
    """A 64-16-10 digits network trained for a fraction of a second (~70% test accuracy).

    One torch thread (restored afterwards): far faster on a busy 2-core machine.
    """
    threads = torch.get_num_threads()
    try:
        return train("digits", seed=0, progress=False, threads=1, **TINY)
    finally:
        torch.set_num_threads(threads)


def make_tiny_checkpoint(folder):
    result = train_tiny()
    path = folder / "tiny.pt"
    checkpoint.save(path, result.model, result.meta)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("verify"))


@pytest.fixture(scope="module")
def compiled(tiny):
    path = tiny.with_suffix(".onnx")
    onnx_io.save(compile_checkpoint(tiny), path)
    return path


def run_cli(capsys, *args):
    code = main(["verify", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_passes_on_a_small_trained_network_and_torch_fixed_equals_the_emulator(tiny, capsys):
    code, out, err = run_cli(capsys, tiny, "--backends", "float,emulator", "--samples", SAMPLES, "--no-report")
    assert code == 0, out + err
    assert "torch-fixed = emulator" in out and f"{SAMPLES}/{SAMPLES} samples identical" in out
    assert "verify: PASS" in out


def test_verify_measures_accuracy_agreement_timing_and_exactness_of_every_engine(tiny):
    result = verify(tiny, samples=SAMPLES, backends=("float", "emulator"))
    assert list(result.engines) == ["float", "torch-fixed", "emulator"]
    assert all(0 <= e["accuracy"] <= 1 and e["samples"] == SAMPLES for e in result.engines.values())
    assert result.agreement["torch-fixed vs emulator"] == 1.0
    [identity] = result.bit_identity
    assert identity.identical and identity.first_divergence is None
    assert identity.identical_by_node == {"layers.0": SAMPLES, "layers.1": SAMPLES}
    assert identity.arrays == identity.identical_arrays == SAMPLES * 2 * 3  # samples x nodes x (s, v, u)
    assert identity.values == identity.equal_values > identity.arrays
    assert result.timing_pair == "float vs emulator" and set(result.timing[result.timing_pair]) == {"layers.0", "layers.1"}
    assert result.float_engine == "torch model, float64" and result.output_node == "layers.1"
    json.dumps(result.to_dict(), allow_nan=False)


def test_verify_of_a_compiled_onnx_uses_the_float_emulator_as_reference(compiled):
    result = verify(compiled, samples=SAMPLES, backends=("float", "emulator"))
    assert result.float_engine.startswith("emulator") and "torch-fixed" not in result.engines
    assert result.bit_identity == [] and result.passed


def perturbed(ir, x):
    """The IR with one layers.0 weight moved far, from the input channel that spikes first.

    Returns the IR and where the first divergence must be: (sample, neuron, step),
    step 1-based. The input at index k reaches layers.0 at index k + 1, i.e. step k + 2.
    """
    bad = ir.copy()
    syn = bad.op("layers.0.dense").fixed
    assert fx.SignMode(syn.sign_mode) == fx.SignMode.MIXED and syn.weight_exp >= -7
    first = np.where(x.any(axis=1), x.argmax(axis=1), x.shape[1]).min(axis=0)  # per channel
    channel = int(first.argmin())
    sample = int(np.flatnonzero(x[:, first[channel], channel])[0])
    neuron = 3
    syn.weights[neuron, channel] = -256 if syn.weights[neuron, channel] >= 0 else 254
    return bad, (sample, neuron, int(first[channel]) + 2)


def test_a_perturbed_weight_in_the_onnx_fails_and_names_the_first_divergent_node_neuron_and_step(
        tiny, compiled, tmp_path, capsys):
    ir = onnx_io.load(compiled)
    x, _ = held_out_inputs(ir.meta["task"], ir.meta["encoding"], SAMPLES, 0)
    bad, (sample, neuron, step) = perturbed(ir, x)
    onnx_io.save(bad, tmp_path / "bad.onnx")
    code, out, _ = run_cli(capsys, tiny, "--ir", tmp_path / "bad.onnx", "--backends", "float,emulator",
                           "--samples", SAMPLES, "--no-report")
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAILED: bit-identical torch-fixed = emulator")]
    assert failed and f"first divergence at node layers.0, neuron {neuron}, step {step}, sample {sample}: u" in failed[0]


def test_a_perturbed_ir_in_memory_gives_the_divergence_record(tiny, compiled):
    ir = onnx_io.load(compiled)
    x, _ = held_out_inputs(ir.meta["task"], ir.meta["encoding"], SAMPLES, 0)
    bad, (sample, neuron, step) = perturbed(ir, x)
    result = verify(tiny, ir=bad, samples=SAMPLES, backends=("float", "emulator"))
    assert result.exit_status == 1
    d = result.bit_identity[0].first_divergence
    assert (d.engines, d.node, d.var, d.sample, d.neuron, d.step) == (
        ("torch-fixed", "emulator"), "layers.0", "u", sample, neuron, step)
    assert d.values[0] != d.values[1]
    c = result.bit_identity[0]
    assert c.identical_arrays < c.arrays and c.equal_values < c.values
    assert c.arrays - c.identical_arrays >= c.samples - c.identical_samples > 0


def test_a_timing_criterion_that_cannot_hold_fails_with_exit_1(tiny, capsys):
    code, out, _ = run_cli(capsys, tiny, "--backends", "float,emulator", "--samples", 10, "--min-match-1", 1.0,
                           "--no-report")
    assert code == 1 and "FAILED: layers.1 spikes matched within +-1 step" in out


@pytest.mark.parametrize("args, message", [
    (["missing.pt"], "missing.pt: no such file"),
    (["{tiny}", "--task", "nosuch"], "unknown task 'nosuch'"),
    (["{tiny}", "--backends", "float,quantum"], "unknown engine 'quantum'"),
    (["{tiny}", "--split", "test"], "--split applies to spike-transform checkpoints only; "),
    (["{tiny}", "--dt", "0.1"], "--dt applies to TTFS checkpoints only; "),
    (["{tiny}", "--samples", "0"], "samples=0 is outside"),
    (["{txt}"], "expected a .pt checkpoint or a compiled .onnx"),
])
def test_bad_input_exits_2_with_one_line(tiny, tmp_path, capsys, args, message):
    (tmp_path / "model.txt").write_text("not a model")
    args = [a.format(tiny=tiny, txt=tmp_path / "model.txt") for a in args]
    code, out, err = run_cli(capsys, *args, "--no-report")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("spikeport: error: ") and message in err


@pytest.mark.parametrize("argv, message", [
    (["verify", "m.pt", "--split", "held-out"], "spikeport verify: error: argument --split: invalid choice"),
    (["export", "m.pt"], "spikeport export: error: the following arguments are required: --out"),
    (["frobnicate"], "spikeport: error: argument command: invalid choice: 'frobnicate'"),
])
def test_command_line_mistakes_are_one_line_with_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(message) and "-h)" in err, err


def test_a_float_only_ir_is_compiled_in_memory_on_its_recorded_task(tiny, tmp_path, capsys):
    model, meta = checkpoint.load(tiny)
    ir = lower(model)
    ir.meta.update(task="digits", encoding=meta["encoding"])
    onnx_io.save(ir, tmp_path / "float.onnx")
    code, out, err = run_cli(capsys, tmp_path / "float.onnx", "--backends", "float,emulator", "--samples", 6,
                             "--no-report")
    assert code == 0, out + err
    assert "post-training (256 calibration samples)" in out and "emulator, IR float parameters" not in err


@pytest.fixture(scope="module")
def nir_export(tiny):
    """The tiny checkpoint written by ``spikeport export tiny.pt --format nir`` (float parameters)."""
    path = tiny.with_suffix(".nir")
    assert main(["export", str(tiny), "--format", "nir", "--out", str(path)]) == 0
    return path


def test_simulate_runs_a_nir_export_on_the_float_engine(nir_export, tmp_path, capsys):
    from toolchain import engines, formats

    x = (np.random.RandomState(0).rand(2, 12, 64) < 0.3).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["simulate", str(nir_export), "--backend", "float", "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "y.npz")]) == 0
    assert "wrote" in capsys.readouterr().out
    want = engines.run("float-emulator", formats.load(nir_export), x)
    with np.load(tmp_path / "y.npz") as saved:
        assert sorted(saved.files) == sorted(want) and {"layers.0/s", "layers.1/s"} <= set(want)
        assert all(np.array_equal(saved[k], want[k]) for k in want)


def test_verify_of_a_nir_export_compiles_it_in_memory_and_checks_the_engines(nir_export, capsys):
    code, out, err = run_cli(capsys, nir_export, "--backends", "float,emulator", "--samples", 6, "--no-report")
    assert code == 0, out + err
    assert "verify: PASS" in out and "float-emulator" not in err


def test_compile_and_inspect_read_a_nir_export(nir_export, tmp_path, capsys):
    assert main(["compile", str(nir_export), "--out", str(tmp_path / "from_nir.onnx")]) == 0
    ir = formats.load(tmp_path / "from_nir.onnx")
    assert ir.is_fixed and ir.meta["task"] == "digits"
    capsys.readouterr()
    assert main(["inspect", str(nir_export)]) == 0
    assert "float parameters" in capsys.readouterr().out


def test_compiling_a_nir_file_that_records_no_task_asks_for_one(nir_export, tmp_path, capsys):
    ir = formats.load(nir_export)
    ir.meta.clear()
    formats.save(ir, tmp_path / "foreign.nir")
    assert main(["compile", str(tmp_path / "foreign.nir"), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no task recorded in the model; pass --task" in err
    assert not (tmp_path / "x.onnx").exists()
    assert main(["compile", str(tmp_path / "foreign.nir"), "--task", "digits", "--out", str(tmp_path / "x.onnx")]) == 0


@pytest.mark.lava
def test_lava_is_bit_identical_to_the_emulator_and_the_report_shows_it(tiny, tmp_path, capsys):
    code, out, err = run_cli(capsys, tiny, "--samples", 6, "--lava-samples", 3, "--report", tmp_path / "report")
    assert code == 0, out + err
    assert "emulator = lava" in out and "3/3 samples identical" in out
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data["engines"]["lava"]["samples"] == 3 and data["passed"]
    assert [c["engines"] for c in data["bit_identity"]] == [["torch-fixed", "emulator"], ["emulator", "lava"]]


@pytest.mark.lava
def test_demo_trains_compiles_verifies_and_reports(tmp_path, monkeypatch, capsys):
    from toolchain import demo

    monkeypatch.setattr(demo, "train", lambda task, seed, progress: train_tiny())
    monkeypatch.setattr(demo, "SAMPLES", 8)
    monkeypatch.setattr(demo, "LAVA_SAMPLES", 2)
    assert demo.run_demo(tmp_path / "demo") == 0
    out = capsys.readouterr().out
    assert "emulator = lava" in out and "2/2 samples identical" in out and "demo passed" in out
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert names == {"model.pt", "model.onnx", "report"}
    assert (tmp_path / "demo" / "report" / "report.html").is_file()


def test_a_report_folder_that_is_not_a_report_is_refused_before_anything_runs(tiny, tmp_path, capsys,
                                                                               monkeypatch):
    import toolchain.verify.summary as summary

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    monkeypatch.setattr(summary, "verify", lambda *a, **k: pytest.fail("verify ran"))
    code, out, err = run_cli(capsys, tiny, "--report", tmp_path / "mine")
    assert code == 2 and "exists and is not a spikeport report folder" in err and err.count("\n") == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
