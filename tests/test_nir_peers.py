"""NIR with the files snnTorch 1.0.0 and Norse 1.1.0 really write and read (their own exporters,
importers and neuron modules; installed by ``make install``), through `examples/nir_peers.py`.

Spikeport's output layer, k hops from the input, must spike in step t + k exactly where the peer
spikes in step t (and never in its first k steps); what a file cannot say is a warning, what a
peer cannot run is a one-line refusal.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolchain import ir as irm

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nir_peers_example", ROOT / "examples" / "nir_peers.py")
peers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = peers  # dataclasses look their module up
_spec.loader.exec_module(peers)


def spikeport_net(bias: bool) -> irm.IR:
    """Input(6) -> Dense -> LIF -> Dense -> LIF, spikeport's own network (biases act from step 1)."""
    rng = np.random.default_rng(5)
    ir = irm.IR("native")
    ir.add("in", irm.Input(peers.N_IN))
    ir.add("fc1", irm.Dense(rng.normal(size=(8, peers.N_IN)) * 1.5), ["in"])
    ir.add("l1", irm.LIF(8, du=0.25, dv=0.1, vth=1.0, bias=rng.normal(size=8) * 0.1 if bias else None), ["fc1"])
    ir.add("fc2", irm.Dense(rng.normal(size=(3, 8)) * 2.0), ["l1"])
    ir.add("l2", irm.LIF(3, du=0.3, dv=0.2, vth=0.7), ["fc2"])
    ir.add("out", irm.Output(3), ["l2"])
    return ir


def _identical(outcome):
    assert outcome.kind == "identical", str(outcome)


# ------------------------------------------------------------ peer -> spikeport
@pytest.mark.parametrize("kind,bias,hops", [("synaptic", False, 2), ("leaky", False, 1), ("synaptic", True, 2)])
def test_snntorch_zero_reset_network_imports_with_identical_spikes_and_a_reset_warning(tmp_path, kind, bias, hops):
    net = peers.scaled(peers.snntorch_net(kind, bias), 3.0)
    outcome = peers.peer_to_spikeport("snntorch", net, hops, tmp_path)
    assert outcome.kind == "warning" and "does not say the reset mechanism" in outcome.detail
    assert outcome.differ == 0, str(outcome)


def test_snntorch_defaults_subtract_reset_are_warned_about_not_silently_different(tmp_path):
    net = peers.scaled(peers.snntorch_net("synaptic", True, "subtract", True), 3.0)
    outcome = peers.peer_to_spikeport("snntorch", net, 2, tmp_path)
    assert outcome.kind == "warning" and "reset mechanism" in outcome.detail and outcome.differ > 0


@pytest.mark.parametrize("cell", ["LIFCell", "LIFBoxCell"])
@pytest.mark.parametrize("bias", [False, True])
def test_norse_network_imports_with_identical_spikes(tmp_path, cell, bias):
    _identical(peers.peer_to_spikeport("norse", peers.norse_net(cell, bias), 2, tmp_path))


@pytest.mark.parametrize("cell", ["LIFCell", "LIFBoxCell"])
def test_norse_v_leak_and_its_initial_voltage_import_with_identical_spikes(tmp_path, cell):
    """Norse drives v by v_leak and starts it at v_leak: a constant drive and a first-step pulse."""
    _identical(peers.peer_to_spikeport("norse", peers.norse_net(cell, False, v_leak=0.5), 2, tmp_path))


# ------------------------------------------------------------ spikeport -> peer
@pytest.mark.parametrize("peer", ["snntorch", "norse"])
@pytest.mark.parametrize("source", ["snntorch", "norse"])
def test_imported_biased_network_exports_to_each_peer_with_identical_spikes(tmp_path, peer, source):
    net = peers.scaled(peers.snntorch_net("synaptic", True), 3.0) if source == "snntorch" else \
        peers.norse_net("LIFCell", True)
    _identical(peers.spikeport_to_peer(peer, peers.imported(source, net, tmp_path), 2, tmp_path))


@pytest.mark.parametrize("peer", ["snntorch", "norse"])
def test_spikeport_network_without_bias_exports_to_each_peer_with_identical_spikes(tmp_path, peer):
    _identical(peers.spikeport_to_peer(peer, spikeport_net(bias=False), 2, tmp_path))


@pytest.mark.parametrize("peer", ["snntorch", "norse"])
def test_spikeport_bias_from_step_one_is_refused_for_each_peer_naming_the_population(tmp_path, peer):
    outcome = peers.spikeport_to_peer(peer, spikeport_net(bias=True), 2, tmp_path)
    assert outcome.kind == "refused" and outcome.detail.startswith(f"--nir-for {peer}: l1: its bias acts from step 1")
    assert not (tmp_path / f"for-{peer}.nir").exists()


# ------------------------------------------------------------ the CLI
def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "toolchain.cli", *map(str, argv)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_simulates_an_snntorch_file_with_nir_from_and_refuses_nir_dt_on_onnx(tmp_path, capsys):
    """Real processes where the exit code and stderr of a whole run are pinned (the refusal, the
    warning a successful run prints last); export and inspect run the CLI's ``main`` in-process."""
    from snntorch.export_nir import export_to_nir
    from toolchain.cli import main
    import nir
    import torch

    nir.write(tmp_path / "s.nir", export_to_nir(peers.snntorch_net("synaptic", True), torch.zeros(1, peers.N_IN),
                                                ignore_dims=[0]))
    np.save(tmp_path / "x.npy", peers.input_spikes()[:, :10])
    plain = _cli("simulate", tmp_path / "s.nir", "--input", tmp_path / "x.npy", "--out", tmp_path / "o.npz")
    assert plain.returncode == 2 and "du = dt/tau_syn = 1/0.0005 = 2000" in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.npz").exists()
    ok = _cli("simulate", tmp_path / "s.nir", "--nir-from", "snntorch", "--backend", "float",
              "--input", tmp_path / "x.npy", "--out", tmp_path / "o.npz")
    assert ok.returncode == 0 and "reset mechanism" in ok.stderr and (tmp_path / "o.npz").exists()
    with pytest.warns(UserWarning, match="reset mechanism"):
        assert main(["export", str(tmp_path / "s.nir"), "--nir-from", "snntorch", "--out", str(tmp_path / "s.onnx")]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "s.onnx"), "--nir-dt", "1e-4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.strip().endswith(f"reads or writes none ({tmp_path / 's.onnx'})")
