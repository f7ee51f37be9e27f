"""The whole network as one compiled loop: the emulator's path for small fixed-point LIF networks.

For a network of binary Inputs, LIF/LIFReset populations and binary synapses without
delays (Dense, Sparse, or DelayDense whose delays are all 0), fixed mode,
`CompiledNetwork` runs every sample's T steps in one numba call
(`backends.emulator.kernels.network_run`), in exact integers, with no per-block Python
work: what makes a single input or a short batch cost microseconds instead of the block
scheduler's per-node calls. Any other network, or one larger than `MAX_WEIGHTS`, runs on
the block scheduler (`backends.emulator.engine`), which stays the reference; the tests
hold the two bit-identical (and both against Lava).

Time convention (every engine's): steps t = 1..T; the Input sends ``x[:, t-1]``
at step t; a synapse delivers at step t + 1 what its source sent at step t, so
every population's input at step t is a function of what was sent at t - 1 and
the order in which populations are stepped does not matter (recurrent loops
included). Per step and sample: each synapse adds the weight rows of its
spiking sources (exact integers), shifts by ``weight_exp`` (`fx.shift_by_weight_exp`),
the outputs into one population are summed (in int32, wrapping: exact for what
reaches u, docs/emulator-paths.md), then each population takes its LIF step in
integers (`models.fixed_kernel.lif_int`, LIFReset zeroing first).

Memory: only the recorded arrays are kept, each population's ``(B, T, n)`` s, u
or v one contiguous part of a flat buffer, handed out as a view.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from backends.emulator import memory, paths
from backends.emulator.lif import LIFPopulation
from backends.recording import recorded_dtype, recorded_width
from models import fixed_point as fx
from toolchain import ir as irm

MAX_WEIGHTS = 1 << 20  # weights (all synapses) up to which a network runs as one loop: it stays in cache
PROGRESS_CHUNKS = 20  # calls a run with a progress bar is split into (groups of samples)


class CompiledNetwork:
    """A prepared program's network, flattened for `kernels.network_run` (see the module docstring).

    Neurons of all populations share one index space (node order), after the Input
    channels among the sources; each synapse is a source range, a target range, its
    ``weight_exp`` and its ``W.T`` in one flat array of the narrowest integer dtype that
    holds every weight (`kernels.integer_weights`).
    """

    @staticmethod
    def of(program) -> Optional["CompiledNetwork"]:
        """The compiled form of ``program`` (an `backends.emulator.engine.Program`), or None when
        the network is outside what the loop runs or `backends.emulator.paths.fast` says blocks."""
        if not paths.fast("network") or not _supported(program):
            return None
        return CompiledNetwork(program)

    def __init__(self, program):
        from backends.emulator import kernels

        ir = program.ir
        self.n_in = sum(op.n for _, op in program.input_ops)
        self.lo, lo = {}, 0
        for name, _ in ir.nodes(irm.Neuron):
            self.lo[name] = lo
            lo += program._size(name)
        self.n = lo
        index = dict(self._input_ranges(program.input_ops))
        index.update({name: (self.n_in + a, self.n_in + a + program._size(name)) for name, a in self.lo.items()})
        rows, weights = [], []
        for name, spec in program.synapses.items():
            src, dst = program.inputs[name][0], list(ir.outputs(name))[0]
            (slo, shi), dlo = index[src], self.lo[dst]
            rows.append((slo, shi, dlo, dlo + spec.n_out, sum(w.size for w in weights), spec.weight_exp))
            weights.append(spec.groups[0][1].ravel())
        self.synapses = np.array(rows, dtype=np.int64).reshape(-1, 6)
        self.weights = kernels.integer_weights(np.concatenate(weights or [np.zeros(0)]))
        # int32 sums where every partial sum fits (twice the SIMD lanes of int64)
        exact32 = all(s.max_w * s.n_in <= fx.INT32_MAX for s in program.synapses.values())
        self.acc_like = np.zeros(self.n, np.int32 if exact32 else np.int64)
        pops = [(name, program.neurons[name]) for name in self.lo]
        self.pops = np.array([(self.lo[name], self.lo[name] + len(p.bias), *(p.reset or (0, 0)),
                               fx.current_factor(p.du), fx.voltage_factor(p.dv), p.theta) for name, p in pops],
                             dtype=np.int64).reshape(-1, 7)
        self.bias, self.u0, self.v0 = (np.concatenate([getattr(p, f) for _, p in pops]).astype(np.int32)
                                       for f in ("bias", "u0", "v0"))

    @staticmethod
    def _input_ranges(input_ops):
        lo = 0
        for name, op in input_ops:
            yield name, (lo, lo + op.n)
            lo += op.n

    def run(self, x: np.ndarray, targets: dict, state_dtype, bar, packed: bool = False) -> dict:
        """Run ``x`` (checked ``(B, T, N)``) and return the ``targets`` of `resolve_record`.

        Only the recorded arrays are kept: each population's ``(B, T, n)`` s, u or v is one
        contiguous part of a flat int8 (s) or int32 (u, v) buffer, handed out as a view;
        ``packed`` spikes are a uint8 ``(B, T, ceil(n / 8))`` part, written packed by the kernel
        (`backends.recording.pack_spikes`).
        ``bar``: a tqdm bar over the samples (samples then run in `PROGRESS_CHUNKS` groups),
        or one whose ``disable`` is True (one call for the whole batch).
        """
        from backends.emulator import kernels

        batch, steps = x.shape[:2]
        recorded = dict.fromkeys(targets.values())
        offsets, sizes = self._record_layout(recorded, batch * steps, packed)
        buffers = {field: memory.empty((size,), recorded_dtype(field, state_dtype, packed))
                   for field, size in sizes.items()}
        pops = np.concatenate([self.pops, offsets], axis=1)
        spikes = np.ascontiguousarray(x != 0)
        chunk = max(1, batch if bar.disable else -(-batch // PROGRESS_CHUNKS))
        for lo in range(0, batch, chunk):
            hi = min(batch, lo + chunk)
            kernels.network_run(spikes, lo, hi, self.synapses, self.weights, self.acc_like, pops, self.bias,
                                self.u0, self.v0, buffers["s"], buffers["u"], buffers["v"], packed)
            bar.update(hi - lo)
        out, filled = {}, set()  # an array recorded under two names (a node and its Output) is handed out twice
        for key, (node, field) in targets.items():
            i, n = self._index(node), recorded_width(field, self._size(node), packed)
            at = offsets[i, "suv".index(field)]
            part = buffers[field][at:at + batch * steps * n].reshape(batch, steps, n)
            out[key] = part.copy() if (node, field) in filled else part
            filled.add((node, field))
        return out

    def _record_layout(self, recorded, samples_steps: int, packed: bool):
        """Per population ``(offset of s, u, v)`` in the flat buffers (-1: not recorded), and each
        buffer's size; a population's array is ``samples_steps`` rows of `recorded_width` values."""
        offsets = np.full((len(self.pops), 3), -1, dtype=np.int64)
        sizes = dict.fromkeys("suv", 0)
        for node, field in recorded:
            i = self._index(node)
            offsets[i, "suv".index(field)] = sizes[field]
            sizes[field] += samples_steps * recorded_width(field, self._size(node), packed)
        return offsets, sizes

    def _index(self, node: str) -> int:
        return list(self.lo).index(node)

    def _size(self, node: str) -> int:
        i = self._index(node)
        return int(self.pops[i, 1] - self.pops[i, 0])


def _supported(program) -> bool:
    """Whether `CompiledNetwork` runs ``program`` exactly (see the module docstring)."""
    ir = program.ir
    if program.mode != "fixed" or any(op.num_message_bits for _, op in program.input_ops):
        return False
    if any(program.populations[name] is not LIFPopulation for name in program.neurons):
        return False
    if list(ir.nodes(irm.Feed)) or sum(s.n_in * s.n_out for s in program.synapses.values()) > MAX_WEIGHTS:
        return False
    for name, spec in program.synapses.items():
        targets = list(ir.outputs(name))
        if spec.graded or len(spec.groups) != 1 or spec.groups[0][0] != 0 or len(targets) != 1:
            return False
        if not isinstance(ir.op(targets[0]), irm.LIF):
            return False
        if spec.max_w * spec.n_in * 2.0 ** max(spec.weight_exp, 0) >= 2.0 ** 53:  # int64 sums and shifts exact
            return False
    return True
