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

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from models.errors import SpikeportError
from toolchain import engines, formats
from toolchain import ir as irm
from toolchain.engines import SIMULATE_BACKENDS
from toolchain.files import atomic_path, save_npz


def simulate(ir: irm.IR, x, backend: str = "emulator", record: Optional[Sequence[str]] = None) -> dict:
    """Run ``ir`` on ``x`` (B, T, N) with ``backend`` (a `SIMULATE_BACKENDS` name):
    ``{"<node>/<var>": (B, T, n)}``. ``record``: neuron or Output node names (None: every neuron node).
    """
    if backend not in SIMULATE_BACKENDS:
        raise SpikeportError(f"simulate: backend={backend!r} is not one of {', '.join(SIMULATE_BACKENDS)}")
    return engines.run(SIMULATE_BACKENDS[backend], ir, x, record)


def load_input(path) -> np.ndarray:
    """A ``.npy`` input file as an array ``(B, T, N)`` or ``(T, N)`` of numbers."""
    path = Path(path)
    if path.suffix != ".npy":
        raise SpikeportError(f"{path}: input must be a .npy file (numpy.save), not {path.suffix or 'no suffix'!r}")
    if not path.is_file():
        raise SpikeportError(f"{path}: no such input file")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SpikeportError(f"{path}: not a readable .npy file ({' '.join(str(exc).split())})") from None
    if x.dtype.kind not in "biuf":
        raise SpikeportError(f"{path}: dtype {x.dtype} is not numeric (bool, int or float spikes)")
    if x.ndim not in (2, 3):
        raise SpikeportError(f"{path}: shape {x.shape} has {x.ndim} dimensions; expected (B, T, N) or (T, N)")
    return x


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
    save_npz(args.out, out)
    shape = next(iter(out.values())).shape if out else x.shape
    print(f"wrote {args.out}: {len(out)} arrays from backend {args.backend} (B={shape[0]}, T={shape[1]})")
    return 0


def _emit_hardware_script(model, script, backend: str) -> int:
    if backend != "lava":
        raise SpikeportError(f"simulate: --emit-hw needs --backend lava, got --backend {backend}")
    path = write_hardware_script(model, script)
    print(f"wrote {path}: runs {model} with Loihi2HwCfg (needs Intel's lava-loihi extension)")
    return 0


def write_hardware_script(ir_path, out_path, ir_name: str = "network") -> Path:
    """Write `backends.lava.hardware.hardware_script` to ``out_path`` atomically (made
    executable); returns the path."""
    from backends.lava.hardware import hardware_script  # lazy: pulls scipy (~250 ms) into the CLI parser

    out = Path(out_path)
    with atomic_path(out) as tmp:
        tmp.write_text(hardware_script(ir_path, ir_name, out.name))
        tmp.chmod(0o755)
    return out
