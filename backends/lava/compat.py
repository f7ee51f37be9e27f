"""Make lava-nc 0.10.0 importable on Python 3.11.

Python 3.11 rejects a dataclass field whose default is an instance of an
unhashable class (an unfrozen dataclass, e.g. ``ByteEncoder`` in
``lava/magma/compiler/var_model.py``). This shim wraps ``dataclasses._get_field``
so that exactly such defaults become ``default_factory`` deep copies, which is
what those Lava fields mean. Every other dataclass is left untouched.

Lava's runtime also calls ``multiprocessing.set_start_method("fork")`` when it
is imported, which raises once anything (a tqdm bar's lock, say) has fixed the
start method, even to ``"fork"`` itself. The shim makes a repeat request for
the method already in force a no-op; asking for a different one still raises.

`import_lava()` applies the shim once and is the only way spikeport imports
Lava; call it before any ``import lava...``.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import multiprocessing

from models.errors import SpikeportError

_PATCHED = False


def _is_unhashable_dataclass_instance(value) -> bool:
    return (dataclasses.is_dataclass(value) and not isinstance(value, type)
            and type(value).__hash__ is None)


def apply_shim() -> None:
    """Patch ``dataclasses`` once (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    original = dataclasses._get_field

    @functools.wraps(original)
    def _get_field(cls, a_name, a_type, *args, **kwargs):
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if _is_unhashable_dataclass_instance(default):
            setattr(cls, a_name, dataclasses.field(
                default_factory=functools.partial(copy.deepcopy, default)))
        return original(cls, a_name, a_type, *args, **kwargs)

    dataclasses._get_field = _get_field
    multiprocessing.set_start_method = _idempotent(multiprocessing.set_start_method)
    _PATCHED = True


def _idempotent(set_start_method):
    @functools.wraps(set_start_method)
    def wrapper(method, force=False):
        if not force and multiprocessing.get_start_method(allow_none=True) == method:
            return None
        return set_start_method(method, force=force)

    return wrapper


def import_lava():
    """Apply the shim and import ``lava``; a missing install is a clear error."""
    apply_shim()
    try:
        import lava  # noqa: F401
        import lava.magma.core.run_configs  # noqa: F401  (first import that needs the shim)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SpikeportError(
            f"lava-nc is not importable ({exc}); install it with "
            "`pip install --no-deps --ignore-requires-python lava-nc==0.10.0` (see `make install`)"
        ) from exc
    return lava


# ------------------------------------------------------------------- lava-dl
SLAYER_OBJECT_DETECTION = "lava.lib.dl.slayer.object_detection"


def import_lava_dl():
    """Apply the Lava shim, then import lava-dl 0.6.0's ``netx`` and ``slayer``; returns (netx, slayer).

    This is the one place the lava-dl install is adapted (it is a test and benchmark
    dependency only; spikeport reads and writes ``.net`` files without it):

    * lava-dl 0.6.0 declares Python < 3.11 and pins torch 2.3, torchvision, OpenCV:
      `make install` takes it with ``--no-deps --ignore-requires-python`` beside
      lava-nc 0.10.0 (its ``netx`` and ``slayer`` need only torch, h5py, matplotlib);
    * ``slayer/__init__.py`` imports its ``object_detection`` subpackage unconditionally,
      which needs torchvision's compiled ops and OpenCV (no usable CPU builds here).
      An empty module stands in for it in ``sys.modules`` before the first import, so
      ``slayer.obd`` is empty and everything else in slayer is untouched.
    """
    import sys
    import types

    import_lava()
    if SLAYER_OBJECT_DETECTION not in sys.modules:
        stub = types.ModuleType(SLAYER_OBJECT_DETECTION, "lava-dl object detection: not available (spikeport shim)")
        sys.modules[SLAYER_OBJECT_DETECTION] = stub
    try:
        from lava.lib.dl import netx, slayer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SpikeportError(
            f"lava-dl is not importable ({exc}); install it with "
            "`pip install --no-deps --ignore-requires-python lava-dl==0.6.0` (see `make install`)"
        ) from exc
    return netx, slayer
