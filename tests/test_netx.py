"""Lava-DL netx ``.net`` files: import runs SLAYER users' networks exactly as netx-on-Lava does,
export writes files netx loads into exactly spikeport's integers, and every netx pitfall
(a weight of 255, a delay of 63, the input layer, gradedSpike) is pinned.

The ``lava`` tests build networks with SLAYER's own ``slayer.block.cuba`` blocks and
``export_hdf5`` (tests/netx_lava.py), load files with ``netx.hdf5.Network`` and run them on
Lava's ``Loihi2SimCfg`` fixed_pt: every layer's s, v, u at every step must equal the emulator's.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import netx_lava as nl
from backends import emulator
from models.errors import SpikeportError
from toolchain import cli, formats
from toolchain import ir as irm
from toolchain.netx import rules
from toolchain.netx.reader import NetxWarning

T = 30
VARS = ("s", "v", "u")


def _load(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ir = formats.load(path)
    return ir, [str(w.message) for w in caught if issubclass(w.category, NetxWarning)]


def _cli(capsys, *argv):
    """Run ``spikeport ARGV`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NetxWarning)
        warnings.filterwarnings("ignore", ".*quantized onto netx's grid")
        code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------- hand-written files
def _write(path, layers: list[dict]) -> Path:
    """A .net file with the given layer groups (nested dicts become groups), as SLAYER writes them."""
    with h5py.File(path, "w") as f:
        root = f.create_group("layer")
        for i, fields in enumerate(layers):
            _fill(root.create_group(str(i)), fields)
    return Path(path)


def _fill(g, fields: dict) -> None:
    for key, value in fields.items():
        if isinstance(value, dict):
            _fill(g.create_group(key), value)
        elif isinstance(value, str):
            g.create_dataset(key, (1,), "S10", [value.encode()])
        else:
            g.create_dataset(key, data=value)


def _neuron(**extra) -> dict:
    return {"type": "CUBA", "iDecay": 1024, "vDecay": 123, "vThMant": 80, "refDelay": 1, "gradedSpike": False,
            **extra}


def _dense(weight, **extra) -> dict:
    weight = np.asarray(weight, np.float32)
    return {"type": "dense", "shape": np.array([weight.shape[0]]), "inFeatures": weight.shape[1],
            "outFeatures": weight.shape[0], "weight": weight, "neuron": _neuron(), **extra}


def _mixed_weights(n_out=6, n_in=12, seed=0, top=None):
    w = np.random.default_rng(seed).integers(-60, 61, (n_out, n_in)) * 2
    if top is not None:
        w[0, 0] = top
    return w


# ------------------------------------------------------------------ export IRs
def _lif(n, bias_mant=0, bias_exp=6):
    fixed = irm.LIFFixed(du=1023, dv=123, vth=60, bias_mant=np.full(n, bias_mant), bias_exp=np.full(n, bias_exp),
                         u=np.zeros(n), v=np.zeros(n))
    return irm.LIF(n, du=0.25, dv=123 / 4096, vth=60.0, bias=np.full(n, bias_mant * 2.0 ** (bias_exp - 6)),
                   fixed=fixed)


def _syn(m, exp=0, cls=irm.Dense, **extra):
    m = np.asarray(m)
    return cls(m * 2.0 ** exp, fixed=irm.SynapseFixed(m, weight_exp=exp, num_weight_bits=8, sign_mode=1), **extra)


def delayed_ir() -> irm.IR:
    """Input(12) -> DelayDense (one delay per output neuron, 0..5) -> LIF(6, bias) -> Dense (weight_exp 1) -> LIF(4)."""
    rng = np.random.default_rng(3)
    ir = irm.IR("delayed")
    ir.add("input", irm.Input(12))
    delay = np.repeat(rng.integers(0, 6, (6, 1)), 12, axis=1)
    ir.add("hidden.dense", _syn(rng.integers(-50, 61, (6, 12)) * 2, cls=irm.DelayDense, delay=delay), ["input"])
    ir.add("hidden", _lif(6, bias_mant=128, bias_exp=0), ["hidden.dense"])  # 128 << 0 = 2 << 6
    ir.add("out.dense", _syn(rng.integers(-30, 45, (4, 6)) * 2, exp=1), ["hidden"])
    ir.add("out", _lif(4), ["out.dense"])
    ir.add("output", irm.Output(4), ["out"])
    return ir


def recurrent_ir() -> irm.IR:
    """Input(10) -> Dense (weight_exp -1, even mantissas) -> LIF(6) with a recurrent Dense from itself."""
    rng = np.random.default_rng(4)
    ir = irm.IR("recurrent")
    ir.add("input", irm.Input(10))
    ir.add("rec.in", _syn(rng.integers(-40, 90, (6, 10)) * 2, exp=-1), ["input"])
    ir.add("rec", _lif(6), ["rec.in"])
    ir.add("rec.self", _syn(rng.integers(-60, 40, (6, 6)) * 2, exp=-1), ["rec"])
    ir.connect("rec.self", "rec")
    ir.add("output", irm.Output(6), ["rec"])
    return ir


def _renamed(emu: dict, ir: irm.IR) -> dict:
    """The emulator's arrays under netx's layer names (neuron populations in chain order)."""
    return {f"layer{i}/{var}": emu[f"{node}/{var}"] for i, node in enumerate(ir.names(irm.Neuron)) for var in VARS}


# ============================================================ import, on Lava
@pytest.mark.lava
@pytest.mark.parametrize("kind", nl.KINDS)
def test_slayer_exported_network_runs_on_the_emulator_exactly_as_netx_on_lava(kind, tmp_path):
    path = nl.slayer_file(tmp_path / f"{kind}.net", kind)
    ir, _ = _load(path)
    x = nl.spikes(T, 12, seed=1)
    emu, lava = emulator.run(ir, x), nl.run_netx(path, x)
    same, total, bad = nl.compare(emu, lava)
    assert (same, bad) == (total, ""), f"{kind}: {same}/{total} identical, first differing {bad}"
    assert total == 3 * len(ir.names(irm.Neuron)) and all(emu[f"{n}/s"].any() for n in ir.names(irm.Neuron))


# ============================================================ export, on Lava
@pytest.mark.lava
@pytest.mark.parametrize("build", [delayed_ir, recurrent_ir], ids=["delayed", "recurrent"])
def test_exported_file_loaded_by_netx_runs_on_lava_exactly_as_the_emulator(build, tmp_path):
    ir = build()
    formats.save(ir, tmp_path / "net.net", "netx")
    x = nl.spikes(T, ir.op("input").n, seed=2)
    emu = _renamed(emulator.run(ir, x), ir)
    same, total, bad = nl.compare(emu, nl.run_netx(tmp_path / "net.net", x))
    assert (same, bad) == (total, ""), f"{same}/{total} identical, first differing {bad}"
    assert all(emu[k].any() for k in emu if k.endswith("/s"))


def test_an_exported_file_reads_back_into_the_same_integers(tmp_path):
    for build in (delayed_ir, recurrent_ir):
        ir = build()
        formats.save(ir, tmp_path / "net.net", "netx")
        back, notes = _load(tmp_path / "net.net")
        x = nl.spikes(T, ir.op("input").n, seed=5)
        assert _renamed(emulator.run(ir, x), ir).keys() == emulator.run(back, x).keys()
        for key, value in emulator.run(back, x).items():
            assert np.array_equal(value, _renamed(emulator.run(ir, x), ir)[key]), key
        assert notes == []


# ============================================================ pitfalls
@pytest.mark.lava
def test_weight_255_beside_negative_weights_is_clipped_to_254_as_netx_does_and_warned(tmp_path):
    """lava-dl issue 170: netx clips a mixed-sign matrix to [-256, 254]."""
    path = _write(tmp_path / "w255.net", [_dense(_mixed_weights(top=255))])
    ir, notes = _load(path)
    assert any("clipped to [-256, 254]" in n and "issue 170" in n for n in notes)
    assert ir.op("layer0.dense").fixed.weights.max() * 2.0 ** ir.op("layer0.dense").fixed.weight_exp == 254
    x = nl.spikes(T, 12, rate=0.5, seed=3)
    same, total, bad = nl.compare(emulator.run(ir, x), nl.run_netx(path, x))
    assert (same, bad) == (total, "")


def test_one_signed_weights_above_255_are_zeroed_as_netx_does_and_warned(tmp_path):
    path = _write(tmp_path / "w300.net", [_dense(np.abs(_mixed_weights(top=300)))])
    ir, notes = _load(path)
    assert any("negative shift" in n and "all zero" in n for n in notes)
    assert not ir.op("layer0.dense").fixed.weights.any()
    assert rules.optimize_weight_bits(np.abs(_mixed_weights(top=300))).weights.any() == 0


def test_export_refuses_a_weight_above_254_beside_negative_ones_naming_the_layer(tmp_path):
    """A mixed-sign current of 255 or more per spike (here 128 << 1) would be clipped by netx (issue 170)."""
    ir = recurrent_ir()
    f = ir.op("rec.in").fixed
    f.weights, f.weight_exp = (f.weights // 4) * 2, 1
    f.weights[0, 0] = 128
    with pytest.raises(SpikeportError, match=r"layer 0 \(rec\): netx would change the weights: .*issue 170"):
        formats.save(ir, tmp_path / "bad.net", "netx")
    assert not (tmp_path / "bad.net").exists()


@pytest.mark.lava
def test_delay_63_is_clamped_to_62_as_netx_does_and_warned(tmp_path):
    """lava-dl issues 214/226: netx clamps delays to 62 (DelayDense max_delay=62)."""
    delay = np.array([63, 0, 1, 2, 70, 5], np.float32)
    path = _write(tmp_path / "d63.net", [_dense(_mixed_weights(), delay=delay)])
    ir, notes = _load(path)
    assert any("clamped to 62" in n for n in notes)
    assert ir.op("layer0.dense").delay.max() == 62 and list(ir.op("layer0.dense").delay[:, 0]) == [62, 0, 1, 2, 62, 5]
    x = nl.spikes(80, 12, rate=0.5, seed=4)
    same, total, bad = nl.compare(emulator.run(ir, x), nl.run_netx(path, x))
    assert (same, bad) == (total, "")


def test_export_refuses_a_delay_of_63(tmp_path):
    ir = delayed_ir()
    ir.op("hidden.dense").delay[2, :] = 63
    with pytest.raises(SpikeportError, match=r"layer 0 \(hidden\): delay 63 exceeds netx's 62"):
        formats.save(ir, tmp_path / "bad.net", "netx")


def test_export_refuses_per_synapse_delays_netx_cannot_express(tmp_path):
    ir = delayed_ir()
    ir.op("hidden.dense").delay[1, 3] += 1
    with pytest.raises(SpikeportError, match="layer 0 .*one delay per output neuron"):
        formats.save(ir, tmp_path / "bad.net", "netx")


def test_input_layer_neuron_is_fed_weight_times_input_in_the_same_step(tmp_path):
    """netx never connects net.inp to an input layer's neuron: spikeport feeds it a_in = weight * x + bias
    at step t itself (a Feed), as netx-on-Lava runs when fed through that neuron (the lava test above)."""
    layers = [{"type": "input", "shape": np.array([12]), "weight": np.float32(96), "bias": np.float32(5),
               "neuron": _neuron()}, _dense(_mixed_weights())]
    ir, notes = _load(_write(tmp_path / "in.net", layers))
    feed = ir.op("layer0.feed")
    assert (feed.fixed.gain, feed.fixed.offset) == (96, 5) and ir.inputs("layer0.feed") == ["input"]
    assert any("netx drops spikes sent to net.inp" in n for n in notes)
    silent = np.zeros((T, 12), np.int64)
    x = silent.copy()
    x[4, 3] = 1  # a spike at step 5
    u, u0 = emulator.run(ir, x)["layer0/u"][0], emulator.run(ir, silent)["layer0/u"][0]
    assert u0[0, 3] == 5 << 6  # the offset reaches every step, from step 1
    assert np.array_equal(u[:4], u0[:4]) and u[4, 3] - u0[4, 3] == 96 << 6  # the spike arrives at step 5, not 6


@pytest.mark.lava
def test_graded_spike_flag_is_read_as_binary_spikes_as_netx_does_and_warned(tmp_path):
    layers = [_dense(_mixed_weights()), _dense(_mixed_weights(4, 6, seed=1))]
    layers[0]["neuron"]["gradedSpike"] = True
    path = _write(tmp_path / "graded.net", layers)
    ir, notes = _load(path)
    assert any("gradedSpike" in n and "binary spikes" in n for n in notes)
    assert ir.op("layer1.dense").num_message_bits == 0
    x = nl.spikes(T, 12, rate=0.5, seed=6)
    same, total, bad = nl.compare(emulator.run(ir, x), nl.run_netx(path, x))
    assert (same, bad) == (total, "")


# ============================================================ import refusals and rules
@pytest.mark.parametrize("kind, reason", [("conv", "convolution"), ("pool", "NotImplementedError"),
                                          ("concat", "NotImplementedError")])
def test_layers_netx_or_spikeport_cannot_run_are_refused_naming_the_layer_index(kind, reason, tmp_path):
    path = _write(tmp_path / "x.net", [_dense(_mixed_weights()), {"type": kind, "shape": np.array([6])}])
    with pytest.raises(SpikeportError, match=rf"layer 1 \({kind}\): .*{reason}"):
        formats.load(path)


def test_a_malformed_file_is_a_one_line_error_naming_the_layer(tmp_path):
    layer = _dense(_mixed_weights())
    del layer["weight"]
    with pytest.raises(SpikeportError, match=r"layer 0 \(dense\): no 'weight' field"):
        formats.load(_write(tmp_path / "noweight.net", [layer]))
    layer = _dense(_mixed_weights(), neuron=np.int64(1))  # a dataset where netx expects a group
    with pytest.raises(SpikeportError, match=r"layer 0: malformed \(AttributeError"):
        formats.load(_write(tmp_path / "neuron.net", [layer]))
    (tmp_path / "text.net").write_text("not hdf5")
    with pytest.raises(SpikeportError, match="not a readable HDF5"):
        formats.load(tmp_path / "text.net")


def test_flatten_is_read_where_it_is_the_identity_and_refused_where_it_reorders(tmp_path):
    layers = [{"type": "input", "shape": np.array([12, 1, 1])}, {"type": "flatten", "shape": np.array([12])},
              _dense(_mixed_weights())]
    ir, _ = _load(_write(tmp_path / "flat.net", layers))
    assert ir.names() == ["input", "layer2.dense", "layer2", "output"] and ir.op("input").n == 12
    layers[0]["shape"] = np.array([3, 2, 2])
    with pytest.raises(SpikeportError, match=r"layer 1 \(flatten\): flattening shape \(2, 2, 3\) .* reorders"):
        formats.load(_write(tmp_path / "reorder.net", layers))


@pytest.mark.parametrize("neuron", ["SDNN", "RF_PHASE"])
def test_non_cuba_neurons_are_refused_naming_the_layer_index(neuron, tmp_path):
    layer = _dense(_mixed_weights())
    layer["neuron"]["type"] = neuron
    with pytest.raises(SpikeportError, match=rf"layer 0 \(dense\): neuron type '{neuron}' is not supported"):
        formats.load(_write(tmp_path / "x.net", [layer]))


def test_neuron_integers_follow_netx_du_is_idecay_minus_one_bias_exp_6(tmp_path):
    layer = _dense(_mixed_weights(), bias=np.arange(6, dtype=np.float32))
    layer["neuron"].update(iDecay=4096, vDecay=0, vThMant=300)
    ir, _ = _load(_write(tmp_path / "x.net", [layer]))
    f = ir.op("layer0").fixed
    assert (f.du, f.dv, f.vth) == (4095, 0, 300)
    assert list(f.bias_mant) == list(range(6)) and set(f.bias_exp) == {6}


def test_a_dense_layer_without_a_neuron_gets_netx_default_neuron_which_loihi_cannot_run(tmp_path):
    layer = _dense(_mixed_weights())
    del layer["neuron"]
    path = _write(tmp_path / "x.net", [layer])
    with pytest.warns(NetxWarning, match="default neuron"):
        ir = formats.read(path)
    assert (ir.op("layer0").fixed.du, ir.op("layer0").fixed.dv, ir.op("layer0").fixed.vth) == (-1, 4096, 131072)
    assert any("default neuron" in n for n in ir.meta["format_notes"])
    with pytest.raises(SpikeportError, match="layer0: dv=4096 is outside"), warnings.catch_warnings():
        warnings.simplefilter("ignore", NetxWarning)
        formats.load(path)


def test_weight_bits_follow_netx_optimize_weight_bits():
    """The cases netx's docs and users report: SLAYER's 8-bit mixed weights, small excitatory weights."""
    opt = rules.optimize_weight_bits(np.array([[-256, 254], [2, 0]]))
    assert (opt.num_weight_bits, opt.weight_exp) == (8, 0)
    opt = rules.optimize_weight_bits(np.array([[24, 176], [8, 0]]))
    assert (opt.num_weight_bits, opt.weight_exp, list(opt.weights[0])) == (5, -0, [24, 176])
    opt = rules.optimize_weight_bits(np.array([[-1, 1]]))  # lava-dl issue 304
    assert (list(opt.weights[0]), opt.num_weight_bits, opt.weight_exp) == ([-128, 128], 2, -7)


# ============================================================ export refusals
@pytest.mark.parametrize("change, message", [
    (lambda ir: setattr(ir.op("hidden").fixed, "bias_mant", np.full(6, 5)), "not a multiple of 64"),
    (lambda ir: setattr(ir.op("out.dense").fixed, "weight_exp", -3), "not an integer; netx sums integer weights"),
    (lambda ir: setattr(ir.op("out.dense"), "num_message_bits", 3), "graded spikes"),
    (lambda ir: setattr(ir.op("out").fixed, "v", np.ones(4)), "nonzero initial u or v"),
])
def test_export_refuses_what_netx_would_run_differently_naming_the_layer(change, message, tmp_path):
    ir = delayed_ir()
    change(ir)
    with pytest.raises(SpikeportError, match=message):
        formats.save(ir, tmp_path / "bad.net", "netx")
    assert not (tmp_path / "bad.net").exists()


def test_export_refuses_a_float_network_and_a_periodic_reset(tmp_path):
    ir = delayed_ir()
    ir.op("out").fixed = None
    with pytest.raises(SpikeportError, match="float parameters"):
        formats.save(ir, tmp_path / "bad.net", "netx")
    ir = delayed_ir()
    old = ir.op("out")
    ir.graph.nodes["out"]["op"] = irm.LIFReset(4, du=old.du, dv=old.dv, vth=old.vth, fixed=old.fixed, reset_interval=5)
    with pytest.raises(SpikeportError, match=r"layer 1 \(out\): LIFReset neurons cannot be written"):
        formats.save(ir, tmp_path / "bad.net", "netx")


# ============================================================ CLI
def test_cli_inspect_shows_what_netx_hands_lava_and_its_warnings(tmp_path, capsys):
    delay = np.array([63, 0, 1, 2, 3, 5], np.float32)
    layer = _dense(_mixed_weights(top=255), delay=delay)
    layer["neuron"]["gradedSpike"] = True
    path = _write(tmp_path / "x.net", [layer])
    code, out, err = _cli(capsys, "inspect", path)
    assert code == 0, err
    assert "num_weight_bits 8 weight_exp 0" in out and "weight [-120, 254]" in out and "delays 0..62 (after netx's clamp)" in out
    for warning in ("clipped to [-256, 254]", "clamped to 62", "gradedSpike is set"):
        assert f"warning: {path}: layer 0 (dense): " in out and warning in out


def test_cli_export_simulate_round_trip_and_a_refusal_is_one_line_exit_2(tmp_path, capsys):
    formats.save(delayed_ir(), tmp_path / "d.onnx")
    code, out, err = _cli(capsys, "export", tmp_path / "d.onnx", "--format", "netx", "--out", tmp_path / "d.net")
    assert code == 0, err
    np.save(tmp_path / "x.npy", nl.spikes(T, 12, seed=7))
    code, out, err = _cli(capsys, "simulate", tmp_path / "d.net", "--input", tmp_path / "x.npy", "--out",
                          tmp_path / "o.npz")
    assert code == 0, err
    with np.load(tmp_path / "o.npz") as out:
        assert list(out) == [f"layer{i}/{v}" for i in range(2) for v in ("s", "u", "v")]
        expected = _renamed(emulator.run(delayed_ir(), nl.spikes(T, 12, seed=7)), delayed_ir())
        assert all(np.array_equal(out[k], expected[k]) for k in expected)
    bad = delayed_ir()
    bad.op("hidden.dense").delay[0, 0] = 40
    formats.save(bad, tmp_path / "bad.onnx")
    code, out, err = _cli(capsys, "export", tmp_path / "bad.onnx", "--format", "netx", "--out", tmp_path / "bad.net")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "layer 0 (hidden): per-synapse delays differ" in err
    assert not (tmp_path / "bad.net").exists()


# ============================================================ the digits network, from its checkpoint
@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    """A digits network trained for one epoch by ``spikeport train`` in this process (bit-exactness,
    not accuracy, is under test); torch's thread count is restored afterwards."""
    import torch

    path, threads = tmp_path_factory.mktemp("digits") / "digits.pt", torch.get_num_threads()
    try:
        assert cli.main(["train", "--task", "digits", "--epochs", "1", "--quiet", "--threads", "1",
                         "--out", str(path)]) == 0
    finally:
        torch.set_num_threads(threads)
    return path


@pytest.mark.lava
@pytest.mark.slow
def test_digits_checkpoint_exported_to_netx_runs_on_lava_exactly_as_the_emulator(digits_checkpoint, tmp_path,
                                                                                 capsys):
    from toolchain.tasks import datasets, encoders

    code, out, err = _cli(capsys, "export", digits_checkpoint, "--format", "netx", "--out", tmp_path / "d.net")
    assert code == 0, err
    ir, _ = _load(tmp_path / "d.net")
    assert [ir.op(s).fixed.weight_exp for s in ir.names(irm.Synapse)] == [0, 0]
    x = np.asarray(encoders.encode(datasets.load_task("digits").x_test[:1], name="regular", T=20, max_rate=0.5))[0]
    emu = emulator.run(ir, x)
    same, total, bad = nl.compare(emu, nl.run_netx(tmp_path / "d.net", x.astype(np.int64)))
    assert (same, total, bad) == (6, 6, "") and emu["layer1/s"].any()


def test_a_compiled_ir_netx_cannot_hold_is_refused_not_requantized(tmp_path):
    ir = delayed_ir()
    ir.op("hidden").fixed.bias_mant = np.full(6, 295)
    ir.op("hidden").fixed.bias_exp = np.zeros(6, np.int64)
    with pytest.raises(SpikeportError, match=r"layer 0 \(hidden\): bias_mant 295 << bias_exp 0 .* not a multiple of 64"):
        formats.save(ir, tmp_path / "bad.net", "netx")
