"""Scale-out on local workers (`toolchain.scaleout`, no Ray): ordered shards through the one
engine dispatch give the 1-process result bit for bit; errors come back as one line naming the
shard, unretried; a killed worker's shard is rerun and its Lava run leaves nothing behind."""
import os
import threading

import numpy as np
import pytest

from faulty_calls import die, raise_spikeport_error
from lava_networks import zoo_inputs, zoo_ir
from models.errors import SpikeportError
from scaleout_probes import kill_a_worker_mid_lava, wait_gone
from toolchain import engines, scaleout
from toolchain.cli import main
from toolchain.scaleout.calls import Call
from toolchain.scaleout.local import RETRIES, LocalPool
from toolchain.scaleout.shards import bounds
from toolchain.verify import verify

VERIFY = dict(samples=24, lava_samples=6, backends="float,emulator,lava")


@pytest.fixture(scope="module")
def pool():
    with LocalPool(2) as p:
        yield p


def comparable(result) -> dict:
    """A verify result's numbers without its wall-clock seconds."""
    data = result.to_dict()
    for engine in data["engines"].values():
        engine.pop("seconds")
    return data


def assert_same_outputs(a, b) -> None:
    assert a.outputs.keys() == b.outputs.keys()
    for engine in a.outputs:
        assert a.outputs[engine].keys() == b.outputs[engine].keys()
        for key, arr in a.outputs[engine].items():
            other = b.outputs[engine][key]
            assert arr.dtype == other.dtype and np.array_equal(arr, other), f"{engine} {key}"


def test_shards_are_ordered_contiguous_and_cover_every_sample_once():
    for batch, shards in [(10, 3), (7, 7), (3, 8), (1, 2), (100, 4)]:
        parts = bounds(batch, shards)
        assert parts[0][0] == 0 and parts[-1][1] == batch
        assert all(hi == lo for (_, hi), (lo, _) in zip(parts, parts[1:]))
        sizes = [hi - lo for lo, hi in parts]
        assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and len(parts) == min(batch, shards)


def test_verify_on_two_local_workers_gives_the_1_process_s_v_u_and_metrics(tiny_checkpoint, tiny_verified_alone,
                                                                           pool):
    alone = tiny_verified_alone  # verify(tiny_checkpoint, **VERIFY) in this process (conftest.py)
    with scaleout.session() as none:
        assert none is None
    with scaleout.using(pool):
        sharded = verify(tiny_checkpoint, **VERIFY)
    assert {"float", "torch-fixed", "emulator", "lava"} <= set(alone.outputs)
    assert all({"layers.0/s", "layers.0/v", "layers.0/u"} <= set(out) for out in alone.outputs.values())
    assert_same_outputs(alone, sharded)
    assert comparable(alone) == comparable(sharded)
    assert alone.passed


def test_simulate_with_workers_writes_the_arrays_of_one_process(tmp_path, capsys):
    from toolchain import formats

    net, x = tmp_path / "zoo.onnx", tmp_path / "x.npy"
    formats.save(zoo_ir(), net)
    np.save(x, np.concatenate([zoo_inputs()] * 2))
    assert main(["simulate", str(net), "--input", str(x), "--out", str(tmp_path / "one.npz")]) == 0
    assert main(["simulate", str(net), "--input", str(x), "--out", str(tmp_path / "two.npz"), "--workers", "2"]) == 0
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(one.files) == sorted(two.files) and len(one.files) == 6  # l1, l2: s, u, v
    assert all(np.array_equal(one[k], two[k]) and one[k].dtype == two[k].dtype for k in one.files)


def test_a_shard_error_comes_back_as_one_line_naming_the_shard_and_is_not_retried(pool):
    calls = [Call("shard 1/2 (samples 0..4)", int, ("7",)), Call("shard 2/2 (samples 5..9)", raise_spikeport_error, (3,))]
    with pytest.raises(SpikeportError, match=r"^shard 2/2 \(samples 5\.\.9\): bad value 3$"):
        pool.map(calls)
    assert pool.attempts["shard 2/2 (samples 5..9)"] == 1
    assert pool.map([Call("again", int, ("5",))]) == [5]  # the pool still works


def test_a_shard_whose_worker_always_dies_fails_after_the_retries_in_one_line(pool):
    with pytest.raises(SpikeportError, match=rf"^lost: its worker was lost {RETRIES + 1} times \(exit code 9\)"):
        pool.map([Call("lost", die, (9,))])
    assert pool.attempts["lost"] == RETRIES + 1


def test_a_bad_engine_input_is_one_line_naming_the_shard(pool):
    x = np.zeros((4, 5, 3))  # zoo takes 6 channels; both shards fail, the first to report is named
    with pytest.raises(SpikeportError, match=r"^emulator shard (1/2 \(samples 0\.\.1\)|2/2 \(samples 2\.\.3\)): "
                                             r"input: .*expects N=6 channels, got N=3"):
        scaleout.run("emulator", zoo_ir(), x, pool=pool)


def test_workers_0_is_refused_in_one_line_with_exit_code_2(tiny_checkpoint, capsys):
    assert main(["verify", str(tiny_checkpoint), "--workers", "0", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--workers: workers=0 is outside" in err


@pytest.mark.lava
def test_a_worker_killed_mid_lava_run_is_retried_the_result_is_complete_and_nothing_is_left(pool):
    """Per-sample Lava on 2 workers; the worker of one running Lava job is SIGKILLed. The
    shard reruns on a new worker, every shard counts once (the result equals the emulator's),
    and no process of the killed run (by pid and process group), job folder or /dev/shm segment
    it mapped is left."""
    ir, x = zoo_ir(), np.concatenate([zoo_inputs()] * 2)  # 6 samples: 2 shards of 3 networks
    reference = engines.run("emulator", ir, x)
    out = {}
    runner = threading.Thread(target=lambda: out.update(scaleout.run("lava", ir, x, pool=pool, batching="per-sample")))
    runner.start()
    seen = kill_a_worker_mid_lava(os.getpid())
    runner.join(300)
    assert not runner.is_alive()
    assert out.keys() == reference.keys()
    for key in reference:
        assert out[key].shape == reference[key].shape and np.array_equal(out[key], reference[key]), key
    assert sorted(pool.attempts.values()) == [1, 2]
    assert wait_gone(seen) == dict(worker=[], members=[], group=[], folder=[], segments=[])
