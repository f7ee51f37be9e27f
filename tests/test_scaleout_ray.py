"""Scale-out on Ray (`toolchain.scaleout.cluster`): against ``ray.init(address="local")`` (one
per module, 2 CPUs) and against a head this test starts on 127.0.0.1 and stops by its own pid
(never ``ray stop``, which would stop every Ray process of the machine)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from faulty_calls import raise_spikeport_error
from lava_networks import lava_processes, zoo_inputs, zoo_ir
from models.errors import SpikeportError
from scaleout_probes import descendants, group_members, kill_a_worker_mid_lava, wait_gone
from test_scaleout import VERIFY, assert_same_outputs, comparable
from toolchain import engines, formats, scaleout
from toolchain.scaleout.calls import Call
from toolchain.verify import verify

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.lava


@pytest.fixture(scope="module")
def cluster():
    """A private local Ray instance for this module, and a `RayPool` on it."""
    temp = tempfile.mkdtemp(prefix="sp-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"), path]))  # workers inherit it
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error",
                 _temp_dir=temp)
        with scaleout.open_pool(cluster="local") as pool:
            yield pool
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = path


def test_verify_on_a_ray_cluster_gives_the_1_process_s_v_u_and_metrics(cluster, tiny_checkpoint, tiny_verified_alone):
    alone = tiny_verified_alone  # verify(tiny_checkpoint, **VERIFY) in this process (conftest.py)
    with scaleout.using(cluster):
        sharded = verify(tiny_checkpoint, **VERIFY)
    assert cluster.size == 2
    assert_same_outputs(alone, sharded)
    assert comparable(alone) == comparable(sharded)


def test_a_task_error_comes_back_as_one_line_naming_the_shard(cluster):
    with pytest.raises(SpikeportError, match=r"^shard 2/2: bad value 4$"):
        cluster.map([Call("shard 1/2", int, ("1",)), Call("shard 2/2", raise_spikeport_error, (4,))])


def test_a_ray_worker_killed_mid_lava_run_is_retried_and_leaves_nothing_behind(cluster):
    """The Ray worker running one shard's Lava job is SIGKILLed: Ray reruns the task, the result
    equals the emulator's (each shard once), and the killed run's processes (pid and process
    group), job folder and shared-memory segments are gone."""
    ir, x = zoo_ir(), np.concatenate([zoo_inputs()] * 2)
    reference = engines.run("emulator", ir, x)
    out = {}
    runner = threading.Thread(target=lambda: out.update(
        scaleout.run("lava", ir, x, pool=cluster, batching="per-sample")))
    runner.start()
    seen = kill_a_worker_mid_lava(os.getpid())  # the local raylet, its workers and their Lava runs descend from us
    runner.join(300)
    assert not runner.is_alive()
    assert all(np.array_equal(out[k], reference[k]) for k in reference) and out.keys() == reference.keys()
    assert wait_gone(seen) == dict(worker=[], members=[], group=[], folder=[], segments=[])


# ------------------------------------------------------------ a head of our own
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head():
    """``ray start --head --block`` on 127.0.0.1 in its own session; stopped by its pid (SIGTERM,
    then SIGKILL of its process group), checked gone."""
    port, temp = _free_port(), tempfile.mkdtemp(prefix="sp-head-", dir="/tmp")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               RAY_AUTH_MODE="token")
    proc = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                             "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not _accepts(port) and time.monotonic() < deadline:
            assert proc.poll() is None, "ray start --head exited"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(proc.pid)
        shutil.rmtree(temp, ignore_errors=True)
        assert group_members(proc.pid) == [] and descendants(proc.pid) == set()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _kill_group(pgid: int) -> None:
    deadline = time.monotonic() + 10
    while group_members(pgid) and time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            break
        time.sleep(0.2)


def _spikeport(*args, **env) -> subprocess.CompletedProcess:
    full = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                RAY_NUM_REDIS_GET_RETRIES="3", **env)
    return subprocess.run([sys.executable, "-m", "toolchain.cli", *map(str, args)], env=full,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("head")
    formats.save(zoo_ir(), folder / "zoo.onnx")
    np.save(folder / "x.npy", np.concatenate([zoo_inputs()] * 2))
    return folder


def test_simulate_on_a_head_at_host_port_writes_the_arrays_of_one_process(head, zoo_files):
    got = _spikeport("simulate", zoo_files / "zoo.onnx", "--input", zoo_files / "x.npy", "--backend", "lava",
                     "--out", zoo_files / "ray.npz", "--cluster", head, RAY_AUTH_MODE="token")
    assert got.returncode == 0, got.stderr
    expected = engines.run("lava", zoo_ir(), np.load(zoo_files / "x.npy"))
    written = np.load(zoo_files / "ray.npz")
    assert sorted(written.files) == sorted(expected)
    assert all(np.array_equal(written[k], expected[k]) and written[k].dtype == expected[k].dtype for k in expected)


def test_a_head_refusing_our_token_is_one_line_with_exit_code_2(head, zoo_files):
    got = _spikeport("simulate", zoo_files / "zoo.onnx", "--input", zoo_files / "x.npy", "--out",
                     zoo_files / "no.npz", "--cluster", head, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 32)
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1 and f"--cluster {head}: cannot connect to Ray" in got.stderr
    assert "token authentication" in got.stderr and not (zoo_files / "no.npz").exists()


def test_an_address_nobody_listens_on_is_one_line_with_exit_code_2(zoo_files):
    port = _free_port()
    got = _spikeport("simulate", zoo_files / "zoo.onnx", "--input", zoo_files / "x.npy", "--out",
                     zoo_files / "no.npz", "--cluster", f"127.0.0.1:{port}")
    assert got.returncode == 2 and got.stderr.count("\n") == 1
    assert f"--cluster 127.0.0.1:{port}: cannot connect" in got.stderr


def test_cluster_local_from_the_cli_stops_its_ray_and_removes_its_session_folder(zoo_files):
    """A fresh process (no Ray of ours in it): ``--cluster local`` starts Ray, runs, and leaves
    no process (none carries the marker in its environment) and no spikeport-ray-* folder."""
    before, marker = set(Path("/tmp").glob("spikeport-ray-*")), f"SPIKEPORT_TEST_{os.getpid()}_{time.time_ns()}"
    got = _spikeport("simulate", zoo_files / "zoo.onnx", "--input", zoo_files / "x.npy", "--out",
                     zoo_files / "local.npz", "--cluster", "local", "--workers", "2", **{marker: "1"})
    assert got.returncode == 0, got.stderr
    deadline = time.monotonic() + 10
    while lava_processes(marker) and time.monotonic() < deadline:  # Ray's processes carry the marker
        time.sleep(0.2)
    assert lava_processes(marker) == []
    written, expected = np.load(zoo_files / "local.npz"), engines.run("emulator", zoo_ir(), np.load(zoo_files / "x.npy"))
    assert all(np.array_equal(written[k], expected[k]) for k in expected)
    assert set(Path("/tmp").glob("spikeport-ray-*")) - before == set()
