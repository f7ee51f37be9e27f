"""The Lava runner's process hygiene and the path to hardware, run for real.

Every Lava job runs in a child process group that is killed on success, error, timeout
or Ctrl-C: no Lava process and no shared-memory segment outlives `run_lava`. The
process graph for Loihi 2 is built without running, and the emitted hardware script
runs on the CPU simulator with ``--sim``. Steps are numbered 1..T.
"""
import os
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from backends.lava import run_lava, runner
from fresh_interpreter import run_isolated
from lava_networks import assert_no_survivors, chain_ir, dense, impulses, lava_processes, lif, zoo_inputs, zoo_ir
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.simulate import write_hardware_script


# --------------------------------------------------------- process hygiene
@pytest.mark.lava
def test_no_lava_process_or_file_survives_a_run_or_a_forced_timeout(monkeypatch, tmp_path):
    import tempfile

    marker = f"SPIKEPORT_TEST_MARK={uuid.uuid4().hex}"
    monkeypatch.setenv(*marker.split("="))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # job folders (and Monitor files) go here
    run_lava(chain_ir(), impulses(3, 1, 1), record=["out/s"])
    assert_no_survivors(marker)
    # a non-integer vth makes Lava's LIF process raise and the run hang silently
    ir = chain_ir()
    ir.op("l1").fixed.vth = 2.5
    monkeypatch.setattr(runner, "check_lava_params", lambda *a, **k: None)
    started = time.monotonic()
    with pytest.raises(SpikeportError, match=r"lava: no result within 4 s"):
        run_lava(ir, impulses(3, 1, 1), timeout=4)
    assert time.monotonic() - started < 10
    assert_no_survivors(marker)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.lava
def test_an_exception_inside_lava_becomes_a_one_line_error_and_leaves_nothing_behind(monkeypatch):
    marker = f"SPIKEPORT_TEST_MARK={uuid.uuid4().hex}"
    monkeypatch.setenv(*marker.split("="))
    monkeypatch.setattr(runner, "check_lava_params", lambda *a, **k: None)  # let Lava see the bad delay
    ir = irm.IR("bad-delay")
    ir.add("in", irm.Input(1))
    ir.add("dd", dense([[100]], delays=[[-1]]), ["in"])
    ir.add("l", lif(1), ["dd"])
    with pytest.raises(SpikeportError) as err:
        run_lava(ir, impulses(3, 1, 1), timeout=60, check=False)  # the escape hatch: validation refuses it too
    assert str(err.value).startswith("lava: ValueError: DelayDense Process 'delays' expects only positive")
    assert "\n" not in str(err.value)
    assert_no_survivors(marker)


@pytest.mark.lava
def test_keyboard_interrupt_kills_every_lava_process(monkeypatch):
    import threading

    marker = f"SPIKEPORT_TEST_MARK={uuid.uuid4().hex}"
    monkeypatch.setenv(*marker.split("="))
    # Ctrl-C as a terminal delivers it: a suite started in the background (`make test &` from a
    # script) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupt = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
    interrupt.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_lava(chain_ir(), impulses(100_000, 1, 1), record=["out/s"])  # minutes of work
    finally:
        interrupt.cancel()
        signal.signal(signal.SIGINT, saved)
    assert_no_survivors(marker)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.lava
def test_ctrl_c_on_spikeport_simulate_exits_130_and_leaves_no_lava_process_or_output(tmp_path):
    from toolchain.formats import onnx as onnx_io

    marker = f"SPIKEPORT_TEST_MARK={uuid.uuid4().hex}"
    onnx_io.save(chain_ir(), tmp_path / "chain.onnx")
    np.save(tmp_path / "x.npy", impulses(100_000, 1, 1))  # minutes of Lava work
    out = tmp_path / "y.npz"
    cmd = [sys.executable, "-m", "toolchain.cli", "simulate", str(tmp_path / "chain.onnx"), "--backend", "lava",
           "--input", str(tmp_path / "x.npy"), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(runner.REPO_ROOT), **dict([marker.split("=")]))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)  # as from a terminal, even if this suite ignores it
    try:
        deadline = time.monotonic() + 60  # wait until Lava itself runs (a child of the runner)
        while len(lava_processes(marker)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        running = len(lava_processes(marker))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert running >= 3, "Lava never started: the interrupt tested nothing"  # CLI, runner child, Lava's
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert_no_survivors(marker)
    assert not out.exists() and list(tmp_path.glob("y*")) == []


# ------------------------------------------------------------ path to hardware
PROCESS_GRAPH = """
import json, pickle, sys
from backends.lava import build_process_graph

(single_ir, single_x), (tiled_ir, tiled_x) = pickle.load(open(sys.argv[1], "rb"))
single = build_process_graph(single_ir, single_x, record=["out/s"])
tiled = build_process_graph(tiled_ir, tiled_x)
print(json.dumps(dict(
    single={n: type(p).__name__ for n, p in single.processes.items()},
    tiled={n: type(p).__name__ for n, p in tiled.processes.items()},
    l1_shape=list(tiled.processes["l1"].v.shape), steps=single.num_steps,
    monitors={n: sorted(m) for n, m in single.monitors.items()},
    runtime=any(p.runtime is not None for p in tiled.processes.values()))))
"""


@pytest.mark.lava
def test_process_graph_is_built_without_running_dense_alone_sparse_when_tiled(tmp_path):
    import json
    import pickle

    with open(tmp_path / "job.pkl", "wb") as f:
        pickle.dump([(chain_ir(), impulses(4, 1, 1)), (zoo_ir(), zoo_inputs())], f)
    code, out, err = run_isolated([sys.executable, "-c", PROCESS_GRAPH, str(tmp_path / "job.pkl")])
    assert code == 0, err
    got = json.loads(out.strip().splitlines()[-1])
    assert got["single"] == {"in": "RingBuffer", "d1": "Dense", "l1": "LIF", "d2": "Dense", "l2": "LIF"}
    assert got["tiled"] == {"in": "RingBuffer", "d1": "Sparse", "l1": "LIF", "rec": "Sparse", "dd": "DelaySparse",
                            "skip": "Sparse", "l2": "LIFReset"}
    assert got["l1_shape"] == [3 * 5]  # 3 samples side by side
    assert got["steps"] == 4 and got["monitors"] == {"l2": ["s"]}
    assert got["runtime"] is False  # built, not compiled or started


@pytest.mark.lava
def test_emitted_hardware_script_rebuilds_the_graph_from_the_ir_file_and_runs_it(tmp_path):
    from toolchain.formats.onnx import save

    save(chain_ir(), tmp_path / "chain.onnx")
    script = write_hardware_script(tmp_path / "chain.onnx", tmp_path / "run_on_loihi2.py", "chain")
    np.save(tmp_path / "x.npy", impulses(5, 1, 2))
    cmd = [sys.executable, str(script), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npz")]
    hw_code, _, hw_err = run_isolated(cmd)
    assert hw_code != 0 and "lava-loihi extension is not installed" in hw_err
    sim_code, _, sim_err = run_isolated([*cmd, "--sim"])
    assert sim_code == 0, sim_err
    y = np.load(tmp_path / "y.npz")
    np.testing.assert_array_equal(y["l2/s"][0, :, 0], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(y["l1/u"][0, :, 0], [0, 0, 12800, 0, 0])
