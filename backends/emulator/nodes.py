"""Runtime state of the IR's nodes: input sources, synapses, neuron populations.

Arrays are time-major blocks ``(k, B, n)``: k consecutive steps of a batch of
B samples. Step numbers are 1-based (Lava's ``time_step``); block row i is
step ``t0 + i``.

* `Source` (Input): step t sends ``x[:, t-1]``: 1 for each nonzero value
  (binary Input) or the values themselves (graded Input).
* `Synapse` (Dense, Sparse, DelayDense): a source value at step t reaches the
  target at step ``t + 1 + d``; the synapse keeps the source's last 1 + d_max
  steps and computes a whole block of outputs with one product per delay
  (dense, or through a csr matrix when the spikes are sparse enough to pay).
* `Neuron` (LIF, LIFReset): the recurrence over the steps of a block; keeps
  the block's spikes for the synapses it feeds and writes what is recorded.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from backends.emulator import arith as ar
from backends.emulator import memory
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
        block = np.ascontiguousarray(self.x[:, t0 - 1:t0 - 1 + k, self.lo:self.hi].transpose(1, 0, 2))
        self.spikes = block != 0
        self.values = block.astype(np.float64) if self.graded else self.spikes


class Synapse:
    """One synapse node: the source's recent history, exact products, the variant's output rule.

    Output at step t is ``sum_g out_g(src[t - 1 - d_g])`` over the delay groups
    g (entries of W with delay d_g; Lava's DelayDense shifts each group's sum
    by weight_exp on its own). `extend` appends source steps, `emit` computes
    output steps from the history: one product per group for a whole block.
    """

    def __init__(self, name: str, op: irm.Dense, arithmetic, source_max: float, batch: int, block: int):
        self.arith = arithmetic
        self.graded = op.num_message_bits > 0
        w = arithmetic.weights(op)
        delay = _check_delays(name, op)
        self.n_in, self.n_out = w.shape[1], w.shape[0]
        max_w = float(np.abs(w).max(initial=0.0))
        max_x = source_max if self.graded else 1.0
        if self.graded and isinstance(op, irm.DelayDense) and arithmetic.integer_inputs \
                and max_w * max_x > fx.INT32_MAX:
            raise SpikeportError(f"{name}: graded value {max_x:g} times weight {max_w:g} exceeds int32; "
                                 "Lava's DelayDense wraps each such product, which is not emulated")
        # Lava's graded Dense/Sparse accumulate W.dot(s) in int32; DelayDense sums int32 products in int64
        self.int32_accumulator = self.graded and not isinstance(op, irm.DelayDense)
        self.weight_exp = arithmetic.weight_exp(op)
        dtype = arithmetic.matmul_dtype(max_w, self.n_in, max_x)
        self.groups = [(int(d), np.ascontiguousarray(np.where(delay == d, w, 0.0).T.astype(dtype)))
                       for d in np.unique(delay[w != 0])] or [(0, np.zeros((self.n_in, self.n_out), dtype))]
        self.span = 1 + max(d for d, _ in self.groups)  # source steps an output step can reach back
        # source steps h0 .. h0+len-1: spikes (bool) or graded values
        self.hist = np.zeros((self.span, batch, self.n_in), np.float64 if self.graded else bool)
        self.h0 = 1 - self.span
        # one block's working arrays, reused from block to block
        self.x = memory.empty((block * batch, self.n_in), dtype)
        self.acc = memory.empty((block * batch, self.n_out), dtype)
        self.out = memory.empty((block, batch, self.n_out), np.float64)
        self.emitted = (0, 0, None)  # the last emit: a synapse may feed several populations

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
        for d, wt in self.groups:
            lo = t0 - 1 - d - self.h0
            src = self.hist[lo:lo + k].reshape(-1, self.n_in)
            if not src.any():  # a silent stretch adds nothing
                continue
            acc = _product(src, wt, self.x[:len(src)], self.acc[:len(src)])
            self._output(acc, self.out[:k].reshape(acc.shape), add=total is not None)
            total = self.out[:k]
        keep = t0 + k - self.span - self.h0
        self.hist, self.h0 = self.hist[keep:], self.h0 + keep
        self.emitted = (t0, k, total)
        return total

    def _output(self, acc: np.ndarray, out: np.ndarray, add: bool) -> None:
        """``out`` (+)= the variant's output rule on ``acc``, a few rows per call.

        Small temporaries are recycled by malloc; block-sized ones would be
        fresh memory (a page fault per 4 KiB) every block.
        """
        rows = max(1, RULE_BYTES // (8 * self.n_out))
        for i in range(0, len(acc), rows):
            q = self.arith.synapse_output(acc[i:i + rows], self.weight_exp, self.int32_accumulator)
            if add:
                out[i:i + rows] += q
            else:
                out[i:i + rows] = q


class Neuron:
    """One LIF/LIFReset population: state u, v, the block's spikes S and the recordings.

    ``record`` maps "s", "v", "u" to ``(B, T, n)`` arrays to fill (absent: not kept).
    """

    def __init__(self, op: irm.LIF, arithmetic, batch: int, block: int, record: dict):
        self.p = arithmetic.neuron_params(op)
        self.arith = arithmetic
        shape = (batch, op.n)
        self.u = np.broadcast_to(self.p.u0, shape).copy()
        self.v = np.broadcast_to(self.p.v0, shape).copy()
        self.zeros = np.zeros(shape)
        self.S = memory.empty((block, *shape), bool)
        self.A = memory.empty((block, *shape), np.float64)  # summed synaptic input, then its scaled form
        self.rec_s, self.rec_v, self.rec_u = (record.get(f) for f in "svu")

    def run(self, a, t0: int, k: int) -> None:
        """Steps ``t0 .. t0+k-1`` with synaptic input ``a`` ``(k, B, n)`` (None: no input)."""
        a, rule = self.arith.plan_block(self.p, self.u, self.v, a, self.A[:k])
        for i in range(k):
            self.step(i, t0 + i, 0.0 if a is None else a[i], rule)
        self.end_block(t0, k)

    def step(self, i: int, t: int, a, rule=None) -> None:
        """Step ``t`` (block row ``i``): LIFReset zeroing, u/v update, spike, reset, record.

        ``rule``: a block plan's step rule for its prepared input ``a``; None applies
        the variant's full sub-threshold step to the synaptic input ``a``.
        """
        p = self.p
        u, v = (self.zeros, self.zeros) if p.resets_at(t) else (self.u, self.v)
        if rule is None:
            u, v = self.arith.subthreshold(u, v, a, p.du, p.dv, p.bias)  # fresh arrays
        else:
            u, v = rule(u, v, a)
        ar.spike_and_reset(v, p.theta, self.S[i])
        self.u, self.v = u, v
        if self.rec_u is not None:
            self.rec_u[:, t - 1] = u
        if self.rec_v is not None:
            self.rec_v[:, t - 1] = v

    def end_block(self, t0: int, k: int) -> None:
        """Record the block's spikes."""
        if self.rec_s is not None:
            self.rec_s[:, t0 - 1:t0 - 1 + k] = self.S[:k].transpose(1, 0, 2)


# Cost model (ns, measured on the CI machine with numpy/OpenBLAS and scipy): a dense product
# costs DENSE_MAC per multiply-add; a sparse one builds a csr matrix (CSR_SCAN per input
# element), then adds a row of W per nonzero input (CSR_ENTRY + CSR_ADD * n_out).
DENSE_MAC, CSR_SCAN, CSR_ENTRY, CSR_ADD = 0.045, 1.0, 40.0, 0.17
RULE_BYTES = 64 << 10  # float64 bytes per call of a synapse's output rule


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
