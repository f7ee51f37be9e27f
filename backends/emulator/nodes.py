"""Runtime state of the IR's input sources and synapses.

Arrays are time-major blocks ``(k, B, n)``: k consecutive steps of a batch of
B samples. Step numbers are 1-based (Lava's ``time_step``); block row i is
step ``t0 + i``.

* `Source` (Input): step t sends ``x[:, t-1]``: 1 for each nonzero value
  (binary Input) or the values themselves (graded Input).
* `Synapse` (Dense, Sparse, DelayDense): a source value at step t reaches the
  target at step ``t + 1 + d``; the synapse keeps the source's last 1 + d_max
  steps and computes a whole block of outputs with one product per delay
  (dense, or through a csr matrix when the spikes are sparse enough to pay;
  in fixed mode, binary spikes are added as weight rows where the block's
  spike count says that is cheaper: `event_driven`, `kernels.event_sums`,
  or handed to the target population as an `EventBlock`).
  Its weights, split by delay, are a `SynapseSpec`, built once per prepared
  program and shared by its runs.
* `FeedNode` (Feed): a source value at step t reaches the target at step t
  itself, ``gain * x + offset`` (no history).
* neuron populations live in `backends.emulator.populations` (one
  implementation per neuron op type, registered there).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import scipy.sparse

from backends.emulator import arith as ar
from backends.emulator import memory, paths
from models import fixed_point as fx
from models.errors import SpikeportError
from toolchain import ir as irm


class Source:
    """An Input node's channels ``x[..., lo:lo+n]``, one block of steps at a time.

    A binary Input (``num_message_bits == 0``) sends 1 for any nonzero value
    (as Lava counts it); a graded one sends the value itself, which in fixed
    mode must be an integer within int32 (Lava's RingBuffer stores int32).
    ``max_abs`` bounds |value sent| over the whole run.
    """

    def __init__(self, name: str, op: irm.Input, x: np.ndarray, lo: int, integer: bool):
        self.x, self.lo, self.hi = x, lo, lo + op.n
        self.graded = op.num_message_bits > 0
        self.values = self.spikes = None
        part = x[..., self.lo:self.hi]
        self.max_abs = ar.absmax(part.astype(np.float64)) if self.graded and part.size else 1.0
        if self.graded and integer and part.size:
            _check_integers(name, part)

    def load(self, t0: int, k: int) -> None:
        """Make steps ``t0 .. t0+k-1`` current: ``spikes`` (bool) and ``values`` sent, ``(k, B, n)``."""
        part = self.x[:, t0 - 1:t0 - 1 + k, self.lo:self.hi].transpose(1, 0, 2)
        if self.graded:
            block = np.ascontiguousarray(part)
            self.spikes, self.values = block != 0, block.astype(np.float64)
        elif part.dtype == np.bool_:  # bool spikes are the spikes: laid out, not compared (5x faster)
            self.spikes = self.values = np.ascontiguousarray(part)
        else:  # compared where it lies, then laid out: a bool per value moves instead of the input's dtype
            self.spikes = self.values = np.ascontiguousarray(part != 0)


class SynapseSpec:
    """What a synapse node's runs share: Lava's weights split by delay, and bounds.

    Built once per prepared program (`backends.emulator.engine.prepare`).
    """

    def __init__(self, name: str, op: irm.Dense, arithmetic):
        self.name = name
        self.graded = op.num_message_bits > 0
        self.delay_dense = isinstance(op, irm.DelayDense)
        w = arithmetic.weights(op)
        self.n_in, self.n_out = w.shape[1], w.shape[0]
        self.max_w = fx.max_abs(w)
        # Lava's graded Dense/Sparse accumulate W.dot(s) in int32; DelayDense sums int32 products in int64
        self.int32_accumulator = self.graded and not self.delay_dense
        self.weight_exp = arithmetic.weight_exp(op)
        if op.delays is None:  # one group, no delay (a large layer: no sort of a zero delay matrix)
            self.groups = [(0, w.T)]  # made contiguous where cast (`groups_in`, `event_groups`)
        else:
            delay = _check_delays(name, op)
            self.groups = [(int(d), np.ascontiguousarray(np.where(delay == d, w, 0.0).T))
                           for d in np.unique(delay[w != 0])] or [(0, np.zeros((self.n_in, self.n_out)))]
        self.span = 1 + max(d for d, _ in self.groups)  # source steps an output step can reach back
        self._cast = {}
        self._events = None

    def groups_in(self, dtype) -> list:
        """The delay groups ``(d, W_d.T)`` with the weights in ``dtype`` (cast once per dtype)."""
        if dtype not in self._cast:
            self._cast[dtype] = [(d, np.ascontiguousarray(wt, dtype)) for d, wt in self.groups]
        return self._cast[dtype]

    def event_groups(self) -> list:
        """The delay groups ``W_d.T`` as small integers, for the event-driven path
        (`backends.emulator.kernels.event_sums`; fixed mode, binary synapses)."""
        if self._events is None:
            from backends.emulator.kernels import integer_weights

            self._events = [integer_weights(wt) for _, wt in self.groups]
        return self._events


class Synapse:
    """One synapse node in a run: the source's recent history, exact products, the variant's output rule.

    Output at step t is ``sum_g out_g(src[t - 1 - d_g])`` over the delay groups
    g (entries of W with delay d_g; Lava's DelayDense shifts each group's sum
    by weight_exp on its own). `extend` appends source steps, `emit` computes
    output steps from the history: one product per group for a whole block.
    """

    def __init__(self, spec: SynapseSpec, arithmetic, source_max: float, batch: int, block: int):
        self.arith = arithmetic
        self.graded, self.n_in, self.n_out = spec.graded, spec.n_in, spec.n_out
        max_x = source_max if self.graded else 1.0
        if self.graded and spec.delay_dense and arithmetic.integer_inputs and spec.max_w * max_x > fx.INT32_MAX:
            raise SpikeportError(f"{spec.name}: graded value {max_x:g} times weight {spec.max_w:g} exceeds int32; "
                                 "Lava's DelayDense wraps each such product, which is not emulated")
        self.int32_accumulator, self.weight_exp = spec.int32_accumulator, spec.weight_exp
        self.may_wrap = _may_wrap(spec.max_w * self.n_in * max_x, self.weight_exp, self.int32_accumulator)
        dtype = arithmetic.matmul_dtype(spec.max_w, self.n_in, max_x)
        self.spec, self.dtype, self.span = spec, dtype, spec.span
        # source steps h0 .. h0+len-1: spikes (bool) or graded values
        self.hist = np.zeros((self.span, batch, self.n_in), np.float64 if self.graded else bool)
        self.h0 = 1 - self.span
        # one block's working arrays, reused from block to block, made on first use: a block
        # taken event-driven by its population (`event_block`) needs none of them
        self._arrays = {"x": ((block * batch, self.n_in), dtype), "acc": ((block * batch, self.n_out), dtype),
                        "out": ((block, batch, self.n_out), np.float64),
                        "part": ((block, batch, self.n_out), np.float64)}
        self.emitted = (0, 0, None)  # the last emit: a synapse may feed several populations
        # event-driven products: spikes of a fixed-mode synapse (exact integer weights)
        self.events = (spec.event_groups() if arithmetic.name == "fixed" and not self.graded
                       and paths.fast("synapse") else None)
        self.max_w, self.accumulators = spec.max_w, {}

    groups = property(lambda self: self.spec.groups_in(self.dtype))  # cast on first use: events need none
    x = property(lambda self: self._array("x"))
    acc = property(lambda self: self._array("acc"))
    out = property(lambda self: self._array("out"))
    part = property(lambda self: self._array("part"))

    def _array(self, name: str) -> np.ndarray:
        if name not in self.__dict__:
            self.__dict__[name] = memory.empty(*self._arrays[name])
        return self.__dict__[name]

    def extend(self, src: np.ndarray) -> None:
        """Append source steps (``(k, B, n_in)``, spikes or graded values) to the history."""
        self.hist = np.concatenate([self.hist, src])

    def emit(self, t0: int, k: int):
        """Outputs for steps ``t0 .. t0+k-1``, ``(k, B, n_out)``; None when no source value reaches them.

        Needs source steps up to ``t0+k-2`` in the history; afterwards keeps
        only what steps from ``t0+k`` on can reach. The array is valid until
        the next block's emit.
        """
        if self.emitted[:2] == (t0, k):
            return self.emitted[2]
        total = None
        for g, (d, wt) in enumerate(self.groups):
            lo = t0 - 1 - d - self.h0
            src = self.hist[lo:lo + k].reshape(-1, self.n_in)
            spikes = np.count_nonzero(src)
            if not spikes:  # a silent stretch adds nothing
                continue
            out = (self.out if total is None else self.part)[:k]
            if self.events is not None and event_driven(spikes, *src.shape, self.n_out):
                from backends.emulator.kernels import event_sums

                event_sums(*self._event_args(g, src), out.reshape(len(src), self.n_out))
            else:
                acc = _product(src, wt, self.x[:len(src)], self.acc[:len(src)])
                self.arith.synapse_output(acc, self.weight_exp, self.int32_accumulator, out.reshape(acc.shape),
                                          self.may_wrap)
            total = out if total is None else np.add(total, out, out=total)
        self._forget(t0, k)
        self.emitted = (t0, k, total)
        return total

    def event_block(self, t0: int, k: int) -> Optional["EventBlock"]:
        """Steps ``t0 .. t0+k-1`` as an `EventBlock` for a population that computes them where it
        uses them (`backends.emulator.kernels.event_lif_block`), when this block runs event-driven
        (fixed mode, binary, one delay group, spikes sparse enough: `event_driven`); else None, and
        `emit` gives the block. Only for a synapse whose one target takes the block this way."""
        if self.events is None or len(self.spec.groups) != 1:
            return None
        from backends.emulator.kernels import spike_counts

        lo = t0 - 1 - self.spec.groups[0][0] - self.h0
        src = self.hist[lo:lo + k]
        spikes, most = spike_counts(src.reshape(-1, self.n_in))
        if spikes and not fused_event_driven(spikes, k * src.shape[1], self.n_in, self.n_out):
            return None
        self._forget(t0, k)
        src, weights, acc = self._event_args(0, src, most)[:3]
        return EventBlock(src, weights, acc, self.weight_exp)

    def _event_args(self, g: int, src: np.ndarray, most: Optional[int] = None) -> tuple:
        """(src, integer weights, accumulator, scale, floor, may_wrap) of delay group g for
        `backends.emulator.kernels.event_sums`; the accumulator's dtype holds the block's sums
        (``most``: the most spikes in one row of ``src``, counted here when not given)."""
        from backends.emulator.kernels import accumulator_dtype, spike_counts

        if most is None:
            most = spike_counts(src.reshape(-1, self.n_in))[1]
        dtype = accumulator_dtype(self.max_w, most)
        if dtype not in self.accumulators:
            self.accumulators[dtype] = np.empty(self.n_out, dtype)
        return (src, self.events[g], self.accumulators[dtype], 2.0 ** self.weight_exp, self.weight_exp < 0,
                self.may_wrap)

    def _forget(self, t0: int, k: int) -> None:
        """Keep only the source steps that outputs from step ``t0 + k`` on can reach."""
        keep = t0 + k - self.span - self.h0
        self.hist, self.h0 = self.hist[keep:], self.h0 + keep


class EventBlock(NamedTuple):
    """A binary synapse's block for `backends.emulator.kernels.event_lif_block` (see `Synapse.event_block`)."""

    src: np.ndarray  # (k, B, n_in) bool: the source spikes that reach the block's steps
    weights: np.ndarray  # (n_in, n_out) integers, W.T
    acc: np.ndarray  # (n_out,) integer scratch, exact for the block's sums
    weight_exp: int  # the sums are shifted by it (flooring when negative), then wrapped into int32


class FeedNode:
    """One Feed node in a run: ``a[t] = gain * x[t] + offset``, delivered in the same step t.

    `extend` takes the Input's block (graded values, or spikes as 0/1), `emit` returns
    the fed block for the same steps (the offset reaches every step, spike or not).
    """

    graded = True  # reads the Input's values (a binary Input's values are its spikes)

    def __init__(self, name: str, op: irm.Feed, arithmetic, batch: int, block: int):
        self.op, self.mode = op, arithmetic.name
        self.out = memory.empty((block, batch, op.n), np.float64)
        self.block = None

    def extend(self, src: np.ndarray) -> None:
        """The source's steps ``t0 .. t0+k-1`` (``(k, B, n)``), those `emit` is asked for next."""
        self.block = src

    def emit(self, t0: int, k: int):
        """``(k, B, n)`` for steps ``t0 .. t0+k-1`` (valid until the next block's emit)."""
        out = self.out[:k]
        out[...] = self.op.values(self.block[:k], self.mode)
        return out


def _may_wrap(max_abs_sum: float, weight_exp: int, int32_accumulator: bool) -> bool:
    """Whether an int32 wrap of a synapse's output can fire, given ``max |sum of products|``:
    the int32 accumulator's, or the shift's (``|floor(x * 2**e)| <= |x| * 2**e + 1``)."""
    if int32_accumulator and max_abs_sum > fx.INT32_MAX:
        return True
    return max_abs_sum * 2.0 ** weight_exp + 1 > fx.INT32_MAX


# Cost model (ns, measured on the CI machine with numpy/OpenBLAS and scipy): a dense product
# costs DENSE_MAC per multiply-add; a sparse one builds a csr matrix (CSR_SCAN per input
# element), then adds a row of W per nonzero input (CSR_ENTRY + CSR_ADD * n_out).
DENSE_MAC, CSR_SCAN, CSR_ENTRY, CSR_ADD = 0.045, 1.0, 40.0, 0.17


# Event-driven cost (ns, compiled `event_sums`): EVENT_SCAN per source element read,
# EVENT_ADD per weight added (one per spike and target), EVENT_ROW per output written.
# EVENT_ADD measured on two 500 -> 4000 synapses into one LIF layer (2 cores, AVX-512): 0.035 ns
# per weight added at 60 % input spikes against 0.047 per multiply-add of the product, which
# DENSE_MAC matches (it was 0.15, from a loaded shared machine; docs/emulator-paths.md).
EVENT_SCAN, EVENT_ADD, EVENT_ROW = 0.5, 0.035, 1.0


def event_driven(spikes: int, rows: int, n_in: int, n_out: int) -> bool:
    """Whether adding the weight rows of ``spikes`` spiking sources (of ``rows * n_in``)
    costs less than the dense product, unless `backends.emulator.paths` pins a path."""
    event = EVENT_SCAN * rows * n_in + EVENT_ADD * spikes * n_out + EVENT_ROW * rows * n_out
    return _events_pay(event, rows, n_in, n_out)


# The fused block's cost (ns, `kernels.event_lif_block`, in the units of DENSE_MAC): FUSED_SCAN per
# source element listed, FUSED_ADD per weight added (int8 rows into int16/int32 sums, eight rows a
# pass), FUSED_ROW per row start (a spike in a tile of `kernels.EVENT_TILE` columns). Measured on the
# scale benchmark's 1000 -> 10,000 layer (2 cores, AVX-512): 0.0125 ns per weight added against
# 0.027 per multiply-add of the product path, at 30 % to 100 % input spikes (docs/emulator-paths.md).
FUSED_SCAN, FUSED_ADD, FUSED_ROW = 0.5, 0.021, 12.0


def fused_event_driven(spikes: int, rows: int, n_in: int, n_out: int) -> bool:
    """`event_driven` for a block a LIF population computes where it uses it (`Synapse.event_block`):
    the sums never leave L1 and no output is written, so it pays at any activity on a wide layer."""
    from backends.emulator.kernels import EVENT_TILE

    tiles = -(-n_out // EVENT_TILE)
    event = FUSED_SCAN * rows * n_in + spikes * (FUSED_ADD * n_out + FUSED_ROW * tiles)
    return _events_pay(event, rows, n_in, n_out)


def _events_pay(event_ns: float, rows: int, n_in: int, n_out: int) -> bool:
    """The pinned synapse path (`backends.emulator.paths`), else whether ``event_ns`` is below the
    dense product's cost."""
    forced = paths.PATHS["synapse"]
    if forced is not None:
        return forced == "event"
    return event_ns < DENSE_MAC * rows * n_in * n_out


def _product(x: np.ndarray, wt: np.ndarray, x_buf: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``x @ wt`` in ``wt``'s dtype (into ``out``, with ``x`` cast into ``x_buf``), or through a
    csr matrix when the inputs are sparse enough to pay.

    Exact either way: every partial sum is an integer the dtype holds (see `matmul_dtype`).
    """
    n_out = wt.shape[1]
    if np.count_nonzero(x) * (CSR_ENTRY + CSR_ADD * n_out) + CSR_SCAN * x.size < DENSE_MAC * x.size * n_out:
        return scipy.sparse.csr_matrix(x, dtype=wt.dtype) @ wt
    np.copyto(x_buf, x, casting="unsafe")  # spikes, or graded values that are integers in fixed mode
    return np.matmul(x_buf, wt, out=out)


def _check_delays(name: str, op: irm.Dense) -> np.ndarray:
    delay = op.delays
    if delay is None:
        return np.zeros(op.weight.shape, dtype=np.int64)
    if delay.shape != op.weight.shape:
        raise SpikeportError(f"{name}: delay has shape {delay.shape}, weight has {op.weight.shape}")
    if delay.size and (delay.min() < 0 or delay.max() > fx.MAX_DELAY):
        raise SpikeportError(f"{name}: delay={int(delay.min()) if delay.min() < 0 else int(delay.max())} "
                             f"is outside [0, {fx.MAX_DELAY}]")
    return delay


def _check_integers(name: str, part: np.ndarray) -> None:
    if part.dtype.kind == "f" and not np.array_equal(part, np.trunc(part)):
        bad = part[part != np.trunc(part)].flat[0]
        raise SpikeportError(f"{name}: graded input value {bad} is not an integer; fixed mode sends integers")
    lo, hi = part.min(), part.max()
    if lo < fx.INT32_MIN or hi > fx.INT32_MAX:
        raise SpikeportError(f"{name}: graded input value {lo if lo < fx.INT32_MIN else hi} is outside int32 "
                             f"[{fx.INT32_MIN}, {fx.INT32_MAX}] (Lava's RingBuffer stores int32)")
