"""What every op is: a typed record that registers itself, and the four roles an op can play.

An op record is a dataclass holding one node's parameters and nothing else
(no behaviour beyond its own meaning). Defining a subclass of `Op` registers
it under its class name in `OP_TYPES`, the table the file formats, the passes
and the engines look op kinds up in; so a new op type is one module (or one
test module) and edits nothing here.

Roles (a base class each, so ``isinstance`` and ``IR.nodes(role)`` select them):

* `Input`-like sources are `Source` ops: they send spikes or graded values;
* `Synapse` ops turn their one source's output into synaptic input
  (``a_out``); every hop adds one step (a delay d adds ``1 + d``);
* `Neuron` ops are populations of ``n`` neurons with state variables
  (`Neuron.state_vars`) and spikes ``s``; their inputs are synapses, summed;
* `Sink` ops (`Output`) mark a population's spikes as a result.

A `Neuron` op's module is the single definition of that neuron type: float
and fixed-point records, parameter ranges (`Neuron.check_float` for the float
parameters and those both arithmetics share, `Neuron.check_fixed` for the
fixed-point record), state
variables, and the step rule (`Neuron.step`) that the emulator's generic
kernel runs. Engines may register faster kernels per op type; the step rule
stays the reference they are tested against.

Time convention (every engine): steps t = 1..T; state at step t is computed
from the state at t-1 and the synaptic input delivered at step t.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import numpy as np

from models.errors import SpikeportError, out_of_range

OP_TYPES: dict[str, type] = {}  # op kind (class name) -> class, filled as op classes are defined


def ints(a, what: str = "fixed-point value") -> np.ndarray:
    """``a`` as int64; a non-integer (or non-finite) value is refused, never truncated."""
    arr = np.asarray(a)
    if arr.dtype.kind in "fc":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise SpikeportError(f"{what}: value {arr[bad].flat[0]!r} is not an integer "
                                 "(fixed-point parameters must be exact integers)")
    return arr.astype(np.int64)


def floats(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


@dataclass
class Op:
    """Base of every op record. ``source`` names the torch module it came from."""

    source: str = field(default="", kw_only=True)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract", False):
            return
        known = OP_TYPES.get(cls.__name__)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise SpikeportError(f"op type {cls.__name__!r} is defined twice "
                                 f"({known.__module__} and {cls.__module__})")
        OP_TYPES[cls.__name__] = cls

    @property
    def kind(self) -> str:
        return type(self).__name__

    @property
    def size(self) -> int:
        """Number of output channels (neurons, or synapse targets)."""
        raise NotImplementedError

    def check_float(self, name: str) -> None:
        """Refuse parameters that hold in both arithmetics and are out of range (via `report`).

        Default: an op with a size field ``n`` needs n >= 1. Subclasses extend it.
        """
        if isinstance(getattr(self, "n", None), (int, np.integer)):
            check_range(name, "n", self.n, 1, np.inf, " (channels)")


class Source(Op):
    """Role: sends one value per channel and step (spikes, or graded values)."""

    abstract = True


class Sink(Op):
    """Role: marks the spikes of its one predecessor (a neuron population) as a result."""

    abstract = True


class Synapse(Op):
    """Role: synaptic input ``a`` to a population from its one source, one step (1 + d) later.

    Subclasses hold ``weight`` (n_out, n_in) float64 and ``fixed`` (their fixed-point record).
    """

    abstract = True
    weight: np.ndarray
    fixed: Optional[object]

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def delays(self) -> Optional[np.ndarray]:
        """Per-synapse delays d (steps beyond the hop's one), or None for none."""
        return None

    def check_float(self, name: str) -> None:
        """Refuse float parameters a network cannot mean (`SpikeportError`, via `report`):
        every float weight must be finite (NaN and inf are refused)."""
        super().check_float(name)
        check_finite(name, "weight", self.weight)

    def check_fixed(self, name: str) -> None:
        """Refuse fixed-point parameters outside the target's ranges (`SpikeportError`)."""
        raise NotImplementedError


class Neuron(Op):
    """Role: a population of ``n`` neurons with spikes ``s`` and the state variables `state_vars`.

    A subclass says, in its own module:

    * ``state_vars``: its state variables, in the order one step computes them
      (recorded as ``<node>/<var>`` beside ``<node>/s``);
    * ``fixed``: its fixed-point record (None until quantized), and `check_fixed`,
      the target's parameter ranges; `check_float`, the ranges of its float
      parameters (by default: every float field finite);
    * `initial_state` and `step`, the step rule in both arithmetics: ``mode="fixed"``
      holds the integers Lava's ``fixed_pt`` model holds (float64 arrays of exact
      integers), ``mode="float"`` the float parameters' units.
    """

    abstract = True
    state_vars: ClassVar[tuple[str, ...]] = ()
    n: int
    fixed: Optional[object]

    @property
    def size(self) -> int:
        return self.n

    def check_float(self, name: str) -> None:
        """Refuse float parameters a network cannot mean (`SpikeportError`, via `report`).

        Default: every float field (scalar or array) must be finite. An op type with
        narrower meanings (LIF: decays in [0, 1]) overrides this.
        """
        super().check_float(name)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) or (isinstance(value, np.ndarray) and value.dtype.kind == "f"):
                check_finite(name, f.name, value)

    def check_fixed(self, name: str) -> None:
        """Refuse fixed-point parameters outside the target's ranges (`SpikeportError`)."""
        raise NotImplementedError

    def initial_state(self, mode: str) -> dict:
        """``{var: (n,) float64}`` at step 0, in ``mode``'s units."""
        raise NotImplementedError

    def step(self, state: dict, a_in, t: int, mode: str) -> tuple[np.ndarray, dict]:
        """One step t (1-based): (spikes ``s`` (B, n) bool, new state ``{var: (B, n)}``).

        ``state`` holds (B, n) arrays (or (n,) at step 1), ``a_in`` the summed synaptic
        input delivered at step t, (B, n) or 0. Recorded state is the state after the
        step (after any reset). Must not modify ``state`` in place.
        """
        raise NotImplementedError


def plain(x):
    """A numpy scalar as a plain int (when integral) or float, for messages."""
    x = np.asarray(x).item()
    return int(x) if float(x).is_integer() else x


# ------------------------------------------------------------------ violations
_collector: contextvars.ContextVar = contextvars.ContextVar("spikeport_violations", default=None)


def report(error: SpikeportError) -> None:
    """Raise ``error``, or, inside `collecting`, add its message to the list and go on.

    Every range check goes through here, so one pass can name every violation
    (``spikeport inspect``) while every other caller stops at the first.
    """
    found = _collector.get()
    if found is None:
        raise error
    found.append(str(error))


@contextlib.contextmanager
def collecting(found: list):
    """Within the block, `report` appends violation messages to ``found`` instead of raising."""
    token = _collector.set(found)
    try:
        yield found
    finally:
        _collector.reset(token)


def _bound(x) -> str:
    return {math.inf: "inf", -math.inf: "-inf"}.get(x, str(x))


def check_range(node: str, param: str, values, lo, hi, note: str = "") -> None:
    """Report `out_of_range` naming node, parameter, value and limit if any value is outside [lo, hi].

    NaN is outside every range. Raises (`report`) unless violations are being collected.
    Two passes (min and max, in the array's own dtype: a weight matrix is not copied).
    """
    low, high = _extremes(values)
    if low is None:
        return
    limit = f"[{_bound(lo)}, {_bound(hi)}]{note}"
    if np.isnan(low) or np.isnan(high):  # min and max propagate NaN
        report(out_of_range(node, param, float("nan"), limit))
    elif low < lo or high > hi:
        report(out_of_range(node, param, plain(low if low < lo else high), limit))


def _extremes(values) -> tuple:
    """(min, max) of ``values`` as float64 scalars, or (None, None) when empty."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        arr = arr.astype(np.float64)
    if not arr.size:
        return None, None
    return np.float64(arr.min()), np.float64(arr.max())


def check_finite(node: str, param: str, values, note: str = " (float parameters must be finite)") -> None:
    """Report `out_of_range` if any value is NaN or infinite: "node: param=nan is outside (-inf, inf) (...)"."""
    low, high = _extremes(values)
    if low is None or (np.isfinite(low) and np.isfinite(high)):  # any NaN or inf shows in min or max
        return
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    bad = arr[~np.isfinite(arr)]
    report(out_of_range(node, param, plain(bad[0]), f"(-inf, inf){note}"))


