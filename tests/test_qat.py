"""Quantization-aware training: what is trained is, integer for integer, what is deployed.

* a QAT checkpoint (from scratch or fine-tuned from a float one) compiles, through
  the .pt and .onnx files, to exactly the integers its fixed-mode forward used;
* its torch fixed-point forward equals the emulator (and Lava) on s, v and u.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models import fixed_point as fx
from toolchain.formats import onnx as onnx_io
from toolchain.methods.superspike import checkpoint
from toolchain.methods.superspike.compile import compile_checkpoint
from toolchain.methods.superspike.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # raster_task: the example's task

SMALL = dict(hidden=[24], epochs=2, batch_size=128, threads=1)


def _fixed_integers(model):
    """Per layer: the integers the fixed-mode forward computes with (weights, exps, decays, bias)."""
    out = []
    for layer in model.layers:
        p = layer.fixed_parameters()
        out.append(dict(weight=p["weight"].detach().numpy(), weight_exp=int(p["weight_exp"]),
                        sign_mode=int(p["sign_mode"]), du=int(p["du"]), dv=int(p["dv"]), vth=int(p["vth"]),
                        bias=p["bias"].detach().numpy()))
    return out


def _ir_integers(ir, n_layers):
    out = []
    for i in range(n_layers):
        syn, lif = ir.op(f"layers.{i}.dense").fixed, ir.op(f"layers.{i}").fixed
        out.append(dict(weight=syn.weights.astype(np.float64), weight_exp=int(syn.weight_exp),
                        sign_mode=int(syn.sign_mode), du=int(lif.du), dv=int(lif.dv), vth=int(lif.vth),
                        bias=fx.effective_bias(lif.bias_mant.astype(np.float64), lif.bias_exp)))
    return out


def _assert_same(got, want):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        for key in w:
            assert np.array_equal(np.asarray(g[key]), np.asarray(w[key])), f"layers.{i}: {key} differs"


@pytest.fixture(scope="module")
def float_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("qat") / "float.pt"
    result = train("digits", progress=False, **SMALL)
    checkpoint.save(path, result.model, result.meta)
    return path


@pytest.mark.parametrize("start", ["scratch", "finetune"])
def test_qat_checkpoint_compiles_to_the_integers_it_trained_with(start, float_checkpoint, tmp_path):
    finetune = float_checkpoint if start == "finetune" else None
    result = train("digits", mode="fixed", progress=False, finetune=finetune,
                   **(dict(epochs=2, threads=1) if finetune else SMALL))
    trained = _fixed_integers(result.model)
    assert any(np.abs(layer["weight"]).max() > 64 for layer in trained)  # a real 8-bit net, not all zeros
    path = tmp_path / "qat.pt"
    checkpoint.save(path, result.model, result.meta)
    ir = compile_checkpoint(path)
    assert ir.meta["quantization_mode"] == "quantization-aware (integers from training)"  # nothing clipped
    _assert_same(_ir_integers(ir, len(trained)), trained)
    onnx_io.save(ir, tmp_path / "qat.onnx")
    _assert_same(_ir_integers(onnx_io.load(tmp_path / "qat.onnx"), len(trained)), trained)
    # the reported test accuracy is the fixed forward's, i.e. the deployed network's
    from backends.emulator import run
    from toolchain.verify import held_out_inputs

    x, y = held_out_inputs("digits", result.meta["encoding"], 120, seed=0)
    out = run(ir, x, mode="fixed")
    with torch.no_grad():
        traces = result.model(torch.as_tensor(x, dtype=torch.float64), mode="fixed")
    for i, tr in enumerate(traces):
        assert np.array_equal(out[f"layers.{i}/s"], tr.s.numpy())
        assert np.array_equal(out[f"layers.{i}/v"], tr.v_post.numpy())
        assert np.array_equal(out[f"layers.{i}/u"], tr.u.numpy())


def test_finetune_starts_from_the_post_training_scales(float_checkpoint):
    """--finetune --qat: the scales are the quantizer's for the float model and stay put."""
    from toolchain.methods.superspike.compile import compile_checkpoint as compile_ptq

    ptq = compile_ptq(float_checkpoint)
    result = train("digits", mode="fixed", progress=False, finetune=float_checkpoint, epochs=1, threads=1)
    for i, layer in enumerate(result.model.layers):
        q = ptq.meta["quantization"][f"layers.{i}"]
        assert float(layer.fixed_scale[0]) == q["lam"]
        assert int(layer.fixed_scale[1]) == q["synapses"][0]["weight_exp"]


def test_compile_says_when_training_clipped_weights(float_checkpoint, tmp_path):
    model, meta = checkpoint.load(float_checkpoint)
    from toolchain.methods.superspike.train import init_fixed_scales

    init_fixed_scales(model, meta)
    with torch.no_grad():
        model.layers[0].weight[0, :3] = 1e3  # far beyond the 8-bit range at this scale
    checkpoint.save(tmp_path / "clipped.pt", model, meta)
    mode = compile_checkpoint(tmp_path / "clipped.pt").meta["quantization_mode"]
    assert "clipped to 8 bits" in mode and "layers.0.dense 3/" in mode


# ------------------------------------------------------------ spike timing (raster task)
def _small_raster():
    from raster_task import fit_raster, make_raster_task, raster_network
    from toolchain.lower import lower
    from toolchain.lower import apply_scales
    from toolchain.quantize import calibration_stats, quantize

    torch.manual_seed(0)
    task = make_raster_task(n_in=20, n_out=8, T=40, seed=3, input_rate=0.1)
    net = raster_network(task, hidden=30, seed=3)
    fit_raster(net, task, 15, 3e-3)
    ir = lower(net)
    ptq, _ = quantize(ir, calibration_stats(ir, task.x.numpy().astype(np.float64)))
    apply_scales(net, ptq)
    return task, net


def _traces(traces):
    return {f"layers.{i}/{k}": getattr(tr, k if k != "v" else "v_post").detach().numpy()
            for i, tr in enumerate(traces) for k in ("s", "v", "u")}


@pytest.fixture(scope="module")
def raster_qat():
    """A small raster network fine-tuned a few steps in fixed point from its PTQ scales."""
    from raster_task import fit_raster

    task, net = _small_raster()
    before = [layer.fixed_parameters()["weight"].detach().clone() for layer in net.layers]
    losses = fit_raster(net, task, 6, 3e-3, mode="fixed")
    after = [layer.fixed_parameters()["weight"].detach() for layer in net.layers]
    assert any(not torch.equal(a, b) for a, b in zip(after, before)), "QAT steps changed no integer weight"
    assert all(np.isfinite(losses))
    x = np.concatenate([task.x.numpy(), np.roll(task.x.numpy(), 3, axis=1)]).astype(np.int32)
    return net, x


def test_training_forward_computes_the_inference_integers(raster_qat):
    """The forward QAT differentiates (straight-through rounding, grad enabled) holds exactly
    the integers of the no-grad forward that deployment is compared with."""
    net, x = raster_qat
    xt = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        plain = _traces(net(xt, mode="fixed"))
    grad_traces = net(xt, mode="fixed")
    grad_traces[-1].s.sum().backward()  # it is a training forward: gradients reach the weights
    assert all(layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0 for layer in net.layers)
    for key, arr in _traces(grad_traces).items():
        assert np.array_equal(arr, plain[key]), key
    net.zero_grad(set_to_none=True)


def test_qat_raster_network_deploys_bit_exact_on_the_emulator(raster_qat):
    from backends.emulator import run
    from toolchain.ir import passes
    from toolchain.lower import lower

    net, x = raster_qat
    ir = lower(net)
    passes.validate(ir, require_fixed=True)
    with torch.no_grad():
        want = _traces(net(torch.as_tensor(x, dtype=torch.float64), mode="fixed"))
    got = run(ir, x, mode="fixed")
    assert want["layers.1/s"].sum() > 0
    for key, arr in want.items():
        assert np.array_equal(got[key], arr), f"{key}: emulator differs from the torch fixed forward"


@pytest.mark.lava
def test_qat_raster_network_deploys_bit_exact_on_lava(raster_qat):
    from backends.lava.runner import run_lava
    from toolchain.lower import lower

    net, x = raster_qat
    with torch.no_grad():
        want = _traces(net(torch.as_tensor(x, dtype=torch.float64), mode="fixed"))
    got = run_lava(lower(net), x, mode="fixed")
    for key, arr in want.items():
        assert np.array_equal(got[key], arr), f"{key}: Lava differs from the torch fixed forward"


def test_raster_task_with_a_short_window_terminates_or_says_why():
    from models.errors import SpikeportError
    from raster_task import make_raster_task

    for seed in range(10):  # T=40: rejection sampling used to dead-end (loop forever) on some seeds
        target = make_raster_task(n_in=5, n_out=20, T=40, seed=seed).target[0].numpy()
        for j in range(target.shape[1]):
            times = np.nonzero(target[:, j])[0]
            assert 2 <= len(times) <= 4 and np.all(np.diff(times) >= 8) and times.min() >= 10 and times.max() <= 34
    with pytest.raises(SpikeportError, match="4 spikes 8 steps apart do not fit"):
        make_raster_task(T=30)


def test_a_float_run_with_qat_epochs_is_the_qat_finetune_of_its_float_checkpoint(float_checkpoint):
    """qat_epochs (Yin-Yang's default): float epochs, then `--qat --finetune` of that network,
    weight for weight; the run reports the fixed-point network's accuracy."""
    both = train("digits", progress=False, qat_epochs=1, **SMALL)
    tuned = train("digits", mode="fixed", progress=False, finetune=float_checkpoint, epochs=1,
                  lr=both.meta["train_config"]["qat_lr"], batch_size=SMALL["batch_size"], threads=1)
    assert both.model.has_fixed_scale
    for got, want in zip(both.model.state_dict().items(), tuned.model.state_dict().items(), strict=True):
        assert got[0] == want[0] and torch.equal(got[1], want[1]), f"{got[0]} differs"
    assert [h["epoch"] for h in both.history] == [1, 2, 3] and both.history[-1]["mode"] == "fixed"
    assert both.meta["accuracy"] == tuned.meta["accuracy"]


def test_the_accuracy_a_qat_epochs_run_reports_is_the_deployed_one():
    from toolchain.tasks.datasets import DIGITS_TEST_SIZE
    from toolchain.verify import verify

    result = train("digits", progress=False, qat_epochs=1, **SMALL)
    check = verify(result.model, meta=result.meta, samples=DIGITS_TEST_SIZE, backends=("float", "emulator"))
    assert check.compile_mode == "quantization-aware (integers from training)"
    assert check.engines["emulator"]["accuracy"] == result.meta["accuracy"]["test"]
