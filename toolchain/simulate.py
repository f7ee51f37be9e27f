"""`spikeport simulate`: run a network on one engine and save what it recorded.

``--backend`` names an engine of `toolchain.engines` (`SIMULATE_BACKENDS`):

============  ==============  ==================
--backend     engine          arithmetic
============  ==============  ==================
emulator      emulator        Lava ``fixed_pt``
float         float-emulator  Lava ``floating_pt``
lava          lava            ``fixed_pt`` (lava-nc)
lava-float    lava-float      ``floating_pt`` (lava-nc)
============  ==============  ==================

The network is any file `toolchain.formats` reads (``.onnx``, ``.nir``); a
float-only network (e.g. a NIR export) runs on the float engines.

Files: the input is a ``.npy`` array ``(B, T, N)`` or ``(T, N)`` (bool/int
for binary spikes, int for graded values; axis 1 is time, index t-1 is step
t). The output is a ``.npz`` with what the engine recorded, ``<node>/<var>``
each ``(B, T, n)`` (LIF: ``s``, ``v`` post-reset, ``u``), written atomically
(a failure leaves no file).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from models.errors import SpikeportError
from toolchain import formats, scaleout
from toolchain import ir as irm
from toolchain.ir import passes
from toolchain.engines import SIMULATE_BACKENDS
from toolchain.files import atomic_path, save_npz


def simulate(ir: irm.IR, x, backend: str = "emulator", record: Optional[Sequence[str]] = None) -> dict:
    """Run ``ir`` on ``x`` (B, T, N) with ``backend`` (a `SIMULATE_BACKENDS` name):
    ``{"<node>/<var>": (B, T, n)}``. ``record``: neuron or Output node names (None: every neuron node).
    Sharded over the active scale-out pool, if any (`toolchain.scaleout.run`; same values).
    """
    if backend not in SIMULATE_BACKENDS:
        raise SpikeportError(f"simulate: backend={backend!r} is not one of {', '.join(SIMULATE_BACKENDS)}")
    return scaleout.run(SIMULATE_BACKENDS[backend], ir, x, record)


def load_input(path) -> np.ndarray:
    """A ``.npy`` input file as an array ``(B, T, N)`` or ``(T, N)`` of numbers."""
    path = Path(path)
    if path.suffix != ".npy":
        raise SpikeportError(f"{path}: input must be a .npy file (numpy.save), not {path.suffix or 'no suffix'!r}")
    if not path.is_file():
        raise SpikeportError(f"{path}: no such input file")
    try:
        _check_fits_in_memory(path, *_npy_header(path))
        x = np.load(path, allow_pickle=False)
    except MemoryError:
        raise SpikeportError(f"{path}: the array does not fit in memory") from None
    except (ValueError, OSError, EOFError) as exc:
        raise SpikeportError(f"{path}: not a readable .npy file ({' '.join(str(exc).split())})") from None
    if x.dtype.kind not in "biuf":
        raise SpikeportError(f"{path}: dtype {x.dtype} is not numeric (bool, int or float spikes)")
    if x.ndim not in (2, 3):
        raise SpikeportError(f"{path}: shape {x.shape} has {x.ndim} dimensions; expected (B, T, N) or (T, N)")
    return x


def _npy_header(path: Path) -> tuple:
    """(shape, dtype) a ``.npy`` header claims, read without loading the data (ValueError if bad)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, _, dtype = read[version](f)
    return shape, dtype


def available_memory() -> int:
    """Physical memory of this machine, bytes (a large fallback where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _check_fits_in_memory(path: Path, shape: tuple, dtype) -> None:
    """A one-line error when the array a header claims (shape x itemsize, bytes) exceeds physical memory."""
    need = math.prod(shape) * dtype.itemsize
    have = available_memory()
    if need > have:
        raise SpikeportError(f"{path}: header claims shape {tuple(shape)} of {dtype} = {need / 1e9:.3g} GB, "
                             f"outside the {have / 1e9:.3g} GB of memory of this machine")


def cmd_simulate(args) -> int:
    """The CLI command: ``args.model, args.backend, args.input, args.out, args.record``.

    With ``--emit-hw SCRIPT`` (``--backend lava`` only) it writes the Loihi 2
    hardware script for the model instead of running anything.
    """
    emit_hw = getattr(args, "emit_hw", None)
    if emit_hw:
        return _emit_hardware_script(args.model, emit_hw, args.backend)
    ir = formats.load(args.model)
    x = load_input(args.input)
    out = simulate(ir, x, args.backend, args.record or None)
    save_npz(args.out, out, inputs=(args.model, args.input))
    shape = next(iter(out.values())).shape if out else x.shape
    print(f"wrote {args.out}: {len(out)} arrays from backend {args.backend} (B={shape[0]}, T={shape[1]})")
    return 0


def _emit_hardware_script(model, script, backend: str) -> int:
    if backend != "lava":
        raise SpikeportError(f"simulate: --emit-hw needs --backend lava, got --backend {backend}")
    ir = formats.load(model)  # the script runs this file: refuse what no engine would run
    passes.validate(ir, require_fixed=True)
    path = write_hardware_script(model, script)
    print(f"wrote {path}: runs {model} with Loihi2HwCfg (needs Intel's lava-loihi extension)")
    return 0


def write_hardware_script(ir_path, out_path, ir_name: str = "network") -> Path:
    """Write `backends.lava.hardware.hardware_script` to ``out_path`` atomically (made
    executable); returns the path."""
    from backends.lava.hardware import hardware_script  # lazy: pulls scipy (~250 ms) into the CLI parser

    out = Path(out_path)
    with atomic_path(out, inputs=(ir_path,)) as tmp:
        tmp.write_text(hardware_script(ir_path, ir_name, out.name))
        tmp.chmod(0o755)
    return out
