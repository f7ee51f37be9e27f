"""IR -> a graph of real Lava processes (lava-nc 0.10.0), not yet running.

Mapping (one op table, `OP_TABLE`; parameters come from `neuron_kwargs` and
`synapse_kwargs`, which in fixed mode are exactly ``op.lava_kwargs()``):

=============  ====================================  =================================
IR op          one network per sample (tiles=1)       "tile" batch of B samples
=============  ====================================  =================================
Input          ``io.source.RingBuffer`` (n, T)         RingBuffer (B·n, T)
Dense          ``dense.Dense``                         ``sparse.Sparse``, block-diagonal
Sparse         ``sparse.Sparse`` (scipy csr)           Sparse, block-diagonal
DelayDense     ``dense.DelayDense`` (delays matrix)    ``sparse.DelaySparse``, block-diag
LIF/LIFReset   ``lif.LIF`` / ``lif.LIFReset``          the same, arrays tiled B times
Output         (no process: marks its predecessor)
=============  ====================================  =================================

Tiling puts the B samples side by side: sample b owns the neuron indices
``[b·n, (b+1)·n)`` of every population, and every synapse is the
block-diagonal matrix ``diag(W, ..., W)`` handed to Lava with the *same
explicit* ``sign_mode``/``num_weight_bits``/``weight_exp``, so Lava quantises
each block exactly as it would quantise ``W`` alone (Lava's Sparse is
bit-identical to Dense). Scalars shared by a population (du, dv, vth) stay
scalars. One compile and T steps then run the whole batch. (In float mode
Lava's Sparse sums in another order than Dense: equal up to float rounding.)

Time convention (Lava's): steps t = 1..T; the RingBuffer sends column t-1 of
its data at step t; every synaptic hop adds one step (a delay d adds 1+d).

Units: fixed mode holds Lava's integers (weights are 8-bit mantissas scaled
by ``2**weight_exp``, state on the ``<<6`` scale); float mode holds Lava's
``floating_pt`` floats. One Lava quirk is handled here: ``sign_mode`` must be
Lava's own ``SignMode`` enum, not the IR's int (see `_lava_synapse_kwargs`).

The process builders import Lava lazily; `build_network` applies the Python
3.11 shim first (`backends.lava.compat.import_lava`). `check_lava_params`
needs no Lava.
"""
from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Optional

import networkx as nx
import numpy as np
import scipy.sparse as sp

from models import fixed_point as fx
from models.errors import SpikeportError, out_of_range
from toolchain import ir as irm
from toolchain.ir import passes

MODES = {"fixed": "fixed_pt", "float": "floating_pt"}


@dataclass
class LavaNetwork:
    """A built (not yet compiled) Lava process graph for one IR.

    ``processes`` maps IR node names to their Lava process (Output nodes have
    none); ``monitors`` maps a probed neuron node to ``{"s"|"v"|"u": Monitor}``.
    ``tiles`` samples sit side by side in every population; ``num_steps`` is T.
    """

    processes: dict
    monitors: dict = field(default_factory=dict)
    tiles: int = 1
    num_steps: int = 0
    mode: str = "fixed"

    @property
    def select_tag(self) -> str:
        return MODES[self.mode]

    @property
    def anchor(self):
        """A process to call ``run``/``stop`` on (Lava runs its whole connected graph)."""
        return next(iter(self.processes.values()))


# ------------------------------------------------------------------ parameters
def require_mode(mode: str) -> str:
    if mode not in MODES:
        raise SpikeportError(f"lava: mode={mode!r} is not one of {sorted(MODES)}")
    return mode


def _require_fixed(name: str, op: irm.Op) -> None:
    if op.fixed is None:
        raise SpikeportError(f"{name}: IR is float; compile/quantize first (no fixed-point parameters)")


def synapse_kwargs(name: str, op: irm.Dense, mode: str) -> dict:
    """Keyword arguments for a Lava Dense/Sparse process (weights as an (n_out, n_in) array).

    Fixed: ``op.lava_kwargs()``, with a NULL sign mode resolved the way Lava
    resolves it for the untiled matrix (so tiling cannot change it). Float:
    the float weights; Lava's float models ignore the quantisation kwargs.
    """
    if mode == "fixed":
        _require_fixed(name, op)
        kw = op.lava_kwargs()
        if kw["sign_mode"] == fx.SignMode.NULL:
            kw["sign_mode"] = int(fx.infer_sign_mode(kw["weights"]))
        return kw
    kw = dict(weights=op.weight, num_message_bits=int(op.num_message_bits))
    if op.delays is not None:
        kw["delays"] = op.delays
    return kw


def neuron_kwargs(name: str, op: irm.LIF, mode: str) -> dict:
    """Keyword arguments for a Lava LIF/LIFReset process.

    Fixed: ``op.lava_kwargs()``. Float: ``du, dv, vth`` as given,
    ``bias_mant = bias``, ``bias_exp = 0`` (ignored by Lava's float model).
    """
    if mode == "fixed":
        _require_fixed(name, op)
        return op.lava_kwargs()
    kw = dict(du=op.du, dv=op.dv, vth=op.vth, bias_mant=op.bias, bias_exp=0)
    if isinstance(op, irm.LIFReset):
        kw.update(reset_interval=int(op.reset_interval), reset_offset=int(op.reset_offset))
    return kw


# --------------------------------------------------- what Lava would misread
INT16 = (-(1 << 15), (1 << 15) - 1)
INT32 = (fx.INT32_MIN, fx.INT32_MAX)
SHIFT32 = (-31, 31)  # numpy shifts of int32 by 32 or more are undefined
BIAS_LIMIT = 1 << 30  # v = vd + u + bias is summed in int32 before saturation


def check_lava_params(ir: irm.IR, mode: str = "fixed") -> None:
    """Refuse parameters Lava would silently misread (hang on, wrap, or shift undefined).

    Checks the graph (`check_structure`), then exactly the kwargs
    `build_network` hands to Lava. These are Lava's
    storage and arithmetic limits (int16 ``bias_mant``, int32 weights and
    state, integer ``du/dv/vth``, delays 0..63); the narrower Loihi 2 hardware
    limits are `toolchain.passes.validate`'s job. Raises `SpikeportError`
    naming node, parameter, value and limit.
    """
    require_mode(mode)
    check_structure(ir)
    for name, op in ir.nodes(irm.Synapse):
        _check_synapse(name, synapse_kwargs(name, op, mode), mode)
    for name, op in ir.nodes(irm.Neuron):
        _check_neuron(name, neuron_kwargs(name, op, mode), mode)


def _in_range(node: str, param: str, values, lo, hi, note: str = "") -> None:
    arr = np.atleast_1d(np.asarray(values))
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise out_of_range(node, param, plain(bad), f"[{lo}, {hi}]{note}")


def _integer(node: str, param: str, value, why: str) -> None:
    if not float(value).is_integer():
        raise SpikeportError(f"{node}: {param}={value} is not an integer ({why})")


def plain(x):
    """A numpy scalar as a plain int (when integral) or float, for messages."""
    x = np.asarray(x).item()
    return int(x) if float(x).is_integer() else x


def _check_synapse(name: str, kw: dict, mode: str) -> None:
    _in_range(name, "num_message_bits", kw["num_message_bits"], 0, 32)
    if "delays" in kw:
        _in_range(name, "delay", kw["delays"], 0, fx.MAX_DELAY, " (Loihi 2: 6-bit delays)")
    if mode == "fixed":
        _in_range(name, "weights", kw["weights"], *INT32, " (Lava stores weights as int32)")
        _in_range(name, "num_weight_bits", kw["num_weight_bits"], 0, fx.WEIGHT_BITS)
        _in_range(name, "weight_exp", kw["weight_exp"], *SHIFT32, " (int32 shift)")
        _in_range(name, "sign_mode", kw["sign_mode"], min(fx.SignMode), max(fx.SignMode))


def _check_neuron(name: str, kw: dict, mode: str) -> None:
    if "reset_interval" in kw:
        _in_range(name, "reset_interval", kw["reset_interval"], 1, np.inf)
    if mode != "fixed":
        return
    for param in ("du", "dv", "vth"):
        _integer(name, param, kw[param], "Lava's fixed_pt LIF hangs on a non-integer value")
    _in_range(name, "du", kw["du"], *fx.DU_RANGE, " (12 bits; -1 = no current decay)")
    _in_range(name, "dv", kw["dv"], *fx.DV_RANGE, " (12 bits)")
    _in_range(name, "bias_mant", kw["bias_mant"], *INT16, " (Lava stores it as int16)")
    _in_range(name, "bias_exp", kw["bias_exp"], *SHIFT32, " (int32 shift)")
    bias = fx.effective_bias(np.asarray(kw["bias_mant"], np.float64), kw["bias_exp"])
    _in_range(name, "bias_mant << bias_exp", bias, -BIAS_LIMIT, BIAS_LIMIT, " (int32 voltage sum)")
    for state in ("u", "v"):
        _in_range(name, state, kw[state], *INT32, " (Lava stores it as int32)")


# --------------------------------------------------------------------- tiling
def _tile_neuron(kw: dict, tiles: int) -> dict:
    """Per-neuron arrays repeated ``tiles`` times; population scalars unchanged."""
    return {k: np.tile(v, tiles) if np.ndim(v) == 1 else v for k, v in kw.items()}


def _block_diag(matrix: np.ndarray, tiles: int, dtype) -> sp.csr_matrix:
    return sp.block_diag([sp.csr_matrix(np.asarray(matrix, dtype=dtype))] * tiles, format="csr")


def _tile_synapse(kw: dict, tiles: int) -> dict:
    """Weights (and delays, masked to existing synapses) as block-diagonal csr matrices."""
    weights = np.asarray(kw["weights"])
    out = dict(kw, weights=_block_diag(weights, tiles, weights.dtype))
    if "delays" in kw:
        delays = np.where(weights != 0, np.asarray(kw["delays"], dtype=np.int64), 0)
        out["delays"] = _block_diag(delays, tiles, np.int64)
        out["max_delay"] = int(np.max(kw["delays"], initial=0))
    return out


# -------------------------------------------------------------------- op table
@dataclass(frozen=True)
class _Context:
    """What every op-table entry needs: mode, tile count, input data by node."""

    mode: str
    tiles: int
    data: dict  # Input node name -> (tiles * n, T) array


def _input(name: str, op: irm.Input, ctx: _Context):
    from lava.proc.io.source import RingBuffer

    return RingBuffer(data=ctx.data[name])


def _lava_synapse_kwargs(name: str, op: irm.Dense, ctx: _Context) -> dict:
    """`synapse_kwargs` with ``sign_mode`` as Lava's own enum.

    Lava's ``SignMode`` is a plain ``Enum``: an int 1 or 3 compares unequal
    to MIXED/INHIBITORY, and Lava then silently treats the matrix as
    excitatory (negative weights clipped to 0).
    """
    from lava.utils.weightutils import SignMode

    kw = synapse_kwargs(name, op, ctx.mode)
    if "sign_mode" in kw:
        kw["sign_mode"] = SignMode(int(kw["sign_mode"]))
    return kw


def _dense(name: str, op: irm.Dense, ctx: _Context):
    kw = _lava_synapse_kwargs(name, op, ctx)
    if ctx.tiles == 1 and type(op) is irm.Dense:
        from lava.proc.dense.process import Dense

        return Dense(name=name, **kw)
    from lava.proc.sparse.process import Sparse

    return Sparse(name=name, **_tile_synapse(kw, ctx.tiles))


def _delay_dense(name: str, op: irm.DelayDense, ctx: _Context):
    kw = _lava_synapse_kwargs(name, op, ctx)
    if ctx.tiles == 1:
        from lava.proc.dense.process import DelayDense

        return DelayDense(name=name, max_delay=int(np.max(kw["delays"], initial=0)), **kw)
    from lava.proc.sparse.process import DelaySparse

    return DelaySparse(name=name, **_tile_synapse(kw, ctx.tiles))


def _lif(name: str, op: irm.LIF, ctx: _Context):
    from lava.proc.lif.process import LIF, LIFReset

    cls = LIFReset if isinstance(op, irm.LIFReset) else LIF
    return cls(name=name, shape=(op.n * ctx.tiles,), **_tile_neuron(neuron_kwargs(name, op, ctx.mode), ctx.tiles))


OP_TABLE: dict[type, Optional[Callable]] = {
    irm.Input: _input,
    irm.Dense: _dense,
    irm.Sparse: _dense,
    irm.DelayDense: _delay_dense,
    irm.LIF: _lif,
    irm.LIFReset: _lif,
    irm.Output: None,  # no process: an Output marks its predecessor's spikes
}


# ----------------------------------------------------------------- the graph
def check_structure(ir: irm.IR) -> None:
    """Ops with a Lava mapping, consistent shapes (`toolchain.passes.infer_shapes`),
    edges Lava can wire, one connected graph."""
    for name, op in ir.nodes():
        if type(op) not in OP_TABLE:
            raise SpikeportError(f"{name}: op {op.kind} has no Lava mapping (known: "
                                 f"{', '.join(t.__name__ for t in OP_TABLE)})")
    passes.infer_shapes(ir)
    for src, dst in ir.graph.edges:
        _edge_ports(ir, src, dst)
    if not ir.names(irm.Input):
        raise SpikeportError(f"{ir.name}: the graph has no Input node")
    if nx.number_weakly_connected_components(ir.graph) > 1:
        raise SpikeportError(f"{ir.name}: the graph has several unconnected parts; "
                             "Lava runs one connected process graph")


def _edge_ports(ir: irm.IR, src: str, dst: str) -> Optional[tuple]:
    """(source port, destination port) names for an edge; None for an edge into an Output.

    Spikes: Input/LIF ``s_out`` -> synapse ``s_in``. Activation: synapse
    ``a_out`` -> LIF ``a_in`` (Lava sums several).
    """
    s_op, d_op = ir.op(src), ir.op(dst)
    if isinstance(d_op, irm.Output):
        return None
    if isinstance(s_op, (irm.Input, irm.Neuron)) and isinstance(d_op, irm.Synapse):
        return "s_out", "s_in"
    if isinstance(s_op, irm.Synapse) and isinstance(d_op, irm.Neuron):
        return "a_out", "a_in"
    raise SpikeportError(f"{dst}: edge from {src!r} ({s_op.kind}) to {d_op.kind} "
                         "is not supported by the Lava backend")


def _connect(ir: irm.IR, procs: dict) -> None:
    for src, dst in ir.graph.edges:
        ports = _edge_ports(ir, src, dst)
        if ports is not None:
            getattr(procs[src], ports[0]).connect(getattr(procs[dst], ports[1]))


def _monitor(proc, target: str, num_steps: int):
    from lava.proc.monitor.process import Monitor

    monitor = Monitor()
    monitor.probe(proc.s_out if target == "s" else getattr(proc, target), num_steps)
    return monitor


def build_network(ir: irm.IR, data: dict, *, mode: str = "fixed", tiles: int = 1,
                  record: Optional[list] = None) -> LavaNetwork:
    """Build the Lava processes for ``ir`` without compiling or running them.

    ``data`` maps each Input node to its RingBuffer data, shape
    ``(tiles * n, T)`` (time last, as Lava wants; sample b owns rows
    ``[b·n, (b+1)·n)``). ``tiles == 1`` builds the original Dense/DelayDense
    processes; ``tiles > 1`` the block-diagonal Sparse/DelaySparse ones.
    ``record`` lists ``(neuron node, "s"|"v"|"u")`` pairs to probe, one
    Monitor each (on ``s_out``, ``v``, ``u``); None probes nothing.
    """
    from backends.lava.compat import import_lava

    import_lava()
    require_mode(mode)
    check_structure(ir)
    steps = {np.shape(d)[-1] for d in data.values()}
    if len(steps) != 1 or set(data) != set(ir.names(irm.Input)):
        raise SpikeportError(f"{ir.name}: need data for exactly the Input nodes "
                             f"{ir.names(irm.Input)} with one common T, got {sorted(data)}")
    ctx = _Context(mode, int(tiles), {k: np.asarray(v) for k, v in data.items()})
    procs = {}
    for name, op in ir.nodes():
        make = OP_TABLE[type(op)]
        if make is not None:
            procs[name] = make(name, op, ctx)
    _connect(ir, procs)
    num_steps = steps.pop()
    monitors = {}
    for node, var in record or ():
        monitors.setdefault(node, {})[var] = _monitor(procs[node], var, num_steps)
    return LavaNetwork(procs, monitors, tiles=ctx.tiles, num_steps=num_steps, mode=mode)


def run_network(net: LavaNetwork, run_cfg=None, scratch: Optional[str] = None) -> dict:
    """Run ``net`` for its T steps and return ``{node: {"s"|"v"|"u": (tiles, T, n)}}``.

    ``run_cfg`` defaults to ``Loihi2SimCfg(select_tag=...)`` for the network's
    mode; either way its ``exception_proc_model_map`` gets Monitor ->
    `saving_monitor_model` (see there), so the recordings come back as files
    (in a temporary folder inside ``scratch``, default the system's), not
    through Lava's element-by-element ``get_data()``. Values
    are the Monitors' float64; the caller casts them. The Lava runtime is
    always stopped, also on error.
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.monitor.process import Monitor

    cfg = run_cfg if run_cfg is not None else Loihi2SimCfg(select_tag=net.select_tag)
    cfg.exception_proc_model_map = {**cfg.exception_proc_model_map, Monitor: saving_monitor_model()}
    with tempfile.TemporaryDirectory(prefix="spikeport-monitors-", dir=scratch) as folder:
        files = {}
        for node, monitors in net.monitors.items():
            for var, monitor in monitors.items():
                files[node, var] = os.path.join(folder, f"{len(files)}.npy")
                _set_param(monitor, SAVE_TO, files[node, var])
        try:
            net.anchor.run(condition=RunSteps(num_steps=net.num_steps), run_cfg=cfg)
        finally:
            net.anchor.stop()
        out = {}
        for (node, var), path in files.items():
            out.setdefault(node, {})[var] = _untile(np.load(path), net.tiles)
        return out


SAVE_TO = "spikeport_save_to"  # Monitor proc_params key: where its model saves the recording


def _set_param(proc, key: str, value) -> None:
    if proc.proc_params.get(key) is not None:
        proc.proc_params.overwrite(key, value)
    else:
        proc.proc_params[key] = value


@functools.lru_cache(maxsize=None)
def saving_monitor_model():
    """Lava's ``PyMonitorModel``, which also saves its recording to a .npy file after the last step.

    Reading a Monitor with ``get_data()`` moves the array through Lava's
    runtime one element at a time (``PyLoihiProcessModel._get_var``, marked
    FIXME in Lava): ~30 us per value, 35 s for a 100-sample verify of a
    64-128-10 network against 3 s of simulation. Recording is unchanged (the
    same ``run_spk``/``run_post_mgmt``); the file holds exactly the array
    ``get_data()`` would return. Each Monitor probes one target (Var data in
    ``var_read_0``, OutPort data in ``out_read_0``).
    """
    from lava.proc.monitor.models import PyMonitorModel

    class SavingMonitorModel(PyMonitorModel):
        def run_post_mgmt(self):
            super().run_post_mgmt()
            data = self.var_read_0 if self.proc_params["n_ref_ports"] else self.out_read_0
            if self.time_step == data.shape[0] and self.proc_params.get(SAVE_TO):
                np.save(self.proc_params[SAVE_TO], data)

    return SavingMonitorModel


def _untile(values: np.ndarray, tiles: int) -> np.ndarray:
    """Monitor data (T, tiles*n) -> (tiles, T, n)."""
    steps = values.shape[0]
    return np.ascontiguousarray(values.reshape(steps, tiles, -1).transpose(1, 0, 2))
