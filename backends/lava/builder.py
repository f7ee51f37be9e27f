"""IR -> a graph of real Lava processes (lava-nc 0.10.0), not yet running.

Each node becomes the process its op type's `backends.lava.ops.LavaOp` builds
(the table and the tiling are described there); edges are wired by role
(spikes ``s_out -> s_in`` into a synapse, activation ``a_out -> a_in`` into a
neuron; Lava sums several); Monitors probe what is recorded.

Time convention (Lava's): steps t = 1..T; the RingBuffer sends column t-1 of
its data at step t; every synaptic hop adds one step (a delay d adds 1+d).

The process builders import Lava lazily; `build_network` applies the Python
3.11 shim first (`backends.lava.compat.import_lava`). `check_lava_params`
needs no Lava.
"""
from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from typing import Optional

import networkx as nx
import numpy as np

from backends.lava.compat import import_lava
from backends.lava.ops import Context, lava_op
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.ir import passes

MODES = {"fixed": "fixed_pt", "float": "floating_pt"}


@dataclass
class LavaNetwork:
    """A built (not yet compiled) Lava process graph for one IR.

    ``processes`` maps IR node names to their Lava process (Output nodes have
    none); ``monitors`` maps a probed neuron node to ``{var: Monitor}`` (``"s"`` and its state variables).
    ``tiles`` samples sit side by side in every population; ``num_steps`` is T.
    ``models`` maps processes Lava does not ship to the process model that runs them.
    """

    processes: dict
    monitors: dict = field(default_factory=dict)
    tiles: int = 1
    num_steps: int = 0
    mode: str = "fixed"
    models: dict = field(default_factory=dict)

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


def check_lava_params(ir: irm.IR, mode: str = "fixed", check: bool = True) -> None:
    """Refuse what spikeport refuses, then parameters Lava would silently misread.

    ``check`` (default True): first `toolchain.ir.passes.validate` (the Loihi 2
    ranges, finite float parameters, reachability: exactly what the emulator's
    `backends.emulator.prepare` refuses). ``check=False`` is the escape hatch for
    tests probing Lava's storage arithmetic outside Loihi's ranges; the CLI never
    passes it. Always: the graph (`check_structure`), then each node with its op
    type's ``LavaOp.check``: Lava's storage and arithmetic limits (e.g. int16
    ``bias_mant``, int32 weights and state, integer ``du/dv/vth``, delays 0..63),
    which keep Lava from hanging even then. Raises `SpikeportError` naming node,
    parameter, value and limit.
    """
    require_mode(mode)
    if check:
        passes.validate(ir)
    check_structure(ir)
    for name, op in ir.nodes():
        check = lava_op(name, op).check
        if check is not None:
            check(name, op, mode)


# ----------------------------------------------------------------- the graph
def check_structure(ir: irm.IR) -> None:
    """Ops with a Lava mapping, consistent shapes (`toolchain.ir.passes.infer_shapes`),
    edges Lava can wire, one connected graph."""
    for name, op in ir.nodes():
        lava_op(name, op)
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
    if isinstance(d_op, irm.Sink):
        return None
    if isinstance(s_op, (irm.Source, irm.Neuron)) and isinstance(d_op, irm.Synapse):
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
                  record: Optional[list] = None, check: bool = True) -> LavaNetwork:
    """Build the Lava processes for ``ir`` without compiling or running them.

    ``data`` maps each Input node to its RingBuffer data, shape
    ``(tiles * n, T)`` (time last, as Lava wants; sample b owns rows
    ``[b·n, (b+1)·n)``). ``tiles == 1`` builds the original Dense/DelayDense
    processes; ``tiles > 1`` the block-diagonal Sparse/DelaySparse ones.
    ``record`` lists ``(neuron node, var)`` pairs to probe, one Monitor each (``"s"``
    on the process's ``s_out``, a state variable on the Var of that name); None probes nothing.
    ``check`` (default True): refuse what `toolchain.ir.passes.validate` refuses, as the emulator
    does; False only for tests that probe Lava outside Loihi's ranges. Lava's own storage
    limits are `check_lava_params`' job (`run_lava` runs it before any child starts).
    """
    import_lava()
    require_mode(mode)
    if check:
        passes.validate(ir)
    check_structure(ir)
    steps = {np.shape(d)[-1] for d in data.values()}
    if len(steps) != 1 or set(data) != set(ir.names(irm.Input)):
        raise SpikeportError(f"{ir.name}: need data for exactly the Input nodes "
                             f"{ir.names(irm.Input)} with one common T, got {sorted(data)}")
    ctx = Context(mode, int(tiles), {k: np.asarray(v) for k, v in data.items()})
    procs, models = {}, {}
    for name, op in ir.nodes():
        entry = lava_op(name, op)
        if entry.build is not None:
            procs[name] = entry.build(name, op, ctx)
        if entry.models is not None:
            models.update(entry.models(mode))
    _connect(ir, procs)
    num_steps = steps.pop()
    monitors = {}
    for node, var in record or ():
        monitors.setdefault(node, {})[var] = _monitor(procs[node], var, num_steps)
    return LavaNetwork(procs, monitors, tiles=ctx.tiles, num_steps=num_steps, mode=mode, models=models)


def run_network(net: LavaNetwork, run_cfg=None, scratch: Optional[str] = None) -> dict:
    """Run ``net`` for its T steps and return ``{node: {var: (tiles, T, n)}}``.

    ``run_cfg`` defaults to ``Loihi2SimCfg(select_tag=...)`` for the network's
    mode; either way its ``exception_proc_model_map`` gets the network's own
    process models (``net.models``, keyed by process class, which ``RunConfig.select``
    looks up, and by process instance, which Lava's compiler looks up first in
    ``ProcGroupDiGraphs._map_proc_to_model``; by class alone it searches the process's
    folder for models and fails) and Monitor ->
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
    own = {proc: net.models[type(proc)] for proc in net.processes.values() if type(proc) in net.models}
    cfg.exception_proc_model_map = {**cfg.exception_proc_model_map, **net.models, **own,
                                    Monitor: saving_monitor_model()}
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
