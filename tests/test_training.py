"""SuperSpike training: losses, feedback modes, determinism, and the `train` command's errors."""
import json

import numpy as np
import pytest
import torch

from models import losses
from toolchain import cli
from toolchain.methods.superspike.train import train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("feedback", ["random", "uniform"])
def test_random_and_uniform_feedback_learn_digits_well_above_chance(feedback):
    result = train("digits", epochs=10, feedback=feedback, progress=False, hidden=[64])
    assert result.meta["accuracy"]["test"] > 0.25  # chance is 0.1; measured 0.46 (random), 0.34 (uniform)


def test_the_same_seed_gives_the_same_accuracy_twice():
    a = train("digits", epochs=2, seed=5, progress=False, hidden=[32])
    b = train("digits", epochs=2, seed=5, progress=False, hidden=[32])
    assert a.meta["accuracy"] == b.meta["accuracy"]
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("loss", ["max-membrane", "first-spike"])
def test_other_classification_losses_train(loss):
    result = train("digits", epochs=10, loss=loss, progress=False, hidden=[64])
    assert result.meta["accuracy"]["test"] > 0.3


def test_van_rossum_distance_is_zero_for_identical_trains_and_grows_with_shift():
    s = torch.zeros(1, 50, 1)
    s[0, 10, 0] = 1
    shifted = torch.roll(s, 3, dims=1)
    further = torch.roll(s, 8, dims=1)
    assert float(losses.van_rossum(s, s)) == 0.0
    assert 0 < float(losses.van_rossum(s, shifted)) < float(losses.van_rossum(s, further))


def test_soft_first_spike_time_is_the_first_spike_step_or_T():
    s = torch.zeros(2, 6, 2)
    s[0, 2, 0] = s[0, 4, 0] = 1
    assert losses.soft_first_spike_time(s).tolist() == [[2.0, 6.0], [6.0, 6.0]]


def test_prediction_prefers_more_spikes_then_the_earlier_first_spike():
    s = np.zeros((1, 5, 3))
    s[0, [1, 3], 0] = 1
    s[0, [0, 2], 1] = 1  # same count as neuron 0, earlier
    s[0, 4, 2] = 1
    assert losses.predict(s).tolist() == [1]


def test_train_command_reports_unknown_task_in_one_line(capsys, tmp_path):
    assert cli.main(["train", "--task", "imagenet", "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "spikeport: error: unknown task 'imagenet'; choose one of digits, yinyang, mnist"
    assert not (tmp_path / "m.pt").exists()


def test_train_command_refuses_a_delay_of_64_from_a_config_file(capsys, tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"hidden": [8], "epochs": 1, "max_delay": 64}))
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "m.pt"), "--quiet"]) == 2
    assert "layers.0: max_delay=64 is outside [0, 63]" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_compile_refuses_a_truncated_checkpoint(capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    assert cli.main(["compile", str(bad), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable spikeport checkpoint" in err
    assert not (tmp_path / "m.onnx").exists()
