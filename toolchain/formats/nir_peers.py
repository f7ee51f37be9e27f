"""What snnTorch's and Norse's NIR exporters and importers really write and read.

A NIR file does not say which program wrote it, and each peer's exporter
departs from NIR's continuous-time meaning in its own way; each importer also
accepts less than NIR can say. `PEERS` holds one `Peer` per program:

* ``adapt(graph, dt)`` (import, ``--nir-from PEER``): a corrected copy of a
  graph its exporter wrote, meaning in NIR's terms what the peer's model
  computed; where the file cannot say what the model was, a warning names the
  missing information;
* ``check(graph, dt)`` (export, ``--nir-for PEER``): a one-line refusal of
  anything the peer's importer cannot run as written.

``dt`` is the peer's time step in the file's time units (seconds for both):
snnTorch's exporter hard-codes ``dt = 1e-4``; Norse's ``to_nir`` and
``from_nir`` default to ``dt = 1e-3`` and take another one as an argument.

Measured with snntorch 1.0.0, norse 1.1.0 and nirtorch 2.6 (the tests in
``tests/test_nir_peers.py`` build networks with the peers' own APIs).
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import nir
import numpy as np

from models.errors import SpikeportError

# node metadata the import reads (Euler time): the voltage before the population's first step
INITIAL_V_KEY = "spikeport_initial_v"


class PeerConventionWarning(UserWarning):
    """A peer's file lacks information spikeport needs; the message names it."""


@dataclass(frozen=True)
class Peer:
    """A program's NIR conventions (module docstring)."""

    name: str
    label: str  # how messages name the program
    dt: float
    fixed_dt: bool  # the exporter ignores any other time step
    adapt: Callable
    check: Callable

    def time_step(self, dt: Optional[float], verb: str) -> float:
        """The ``dt`` to use: the peer's own unless given; a given one its exporter never writes is refused."""
        if dt is None:
            return self.dt
        if self.fixed_dt and dt != self.dt:
            raise SpikeportError(f"--nir-{verb} {self.name}: --nir-dt {dt:g} is not {self.dt:g}, the time step "
                                 f"{self.label}'s NIR {'exporter' if verb == 'from' else 'importer'} hard-codes")
        return dt


def peer(name: Optional[str]) -> Optional[Peer]:
    """The `Peer` called ``name`` (None for None); an unknown name is a one-line error."""
    if name is None:
        return None
    if name not in PEERS:
        raise SpikeportError(f"unknown NIR peer {name!r}; known: {', '.join(PEERS)}")
    return PEERS[name]


def _neurons(graph: nir.NIRGraph, *types):
    return [(name, node) for name, node in graph.nodes.items() if isinstance(node, types)]


def _replace(graph: nir.NIRGraph, changes: dict) -> nir.NIRGraph:
    nodes = {name: changes.get(name, node) for name, node in graph.nodes.items()}
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=dict(graph.metadata or {}))


def _array(value) -> np.ndarray:
    return np.asarray(value.detach().numpy() if hasattr(value, "detach") else value, dtype=np.float64)


# ------------------------------------------------------------------ snnTorch
def _snntorch_adapt(graph: nir.NIRGraph, dt: float) -> nir.NIRGraph:
    """snnTorch writes Synaptic/Leaky as CubaLIF/LIF at dt = 1e-4 with unit gains (exact), but always
    ``v_reset = 0``: the reset mechanism and ``reset_delay`` are lost, so warn."""
    neurons = [name for name, _ in _neurons(graph, nir.CubaLIF, nir.LIF)]
    if neurons:
        warnings.warn(PeerConventionWarning(
            f"--nir-from snntorch: the file does not say the reset mechanism of {', '.join(neurons)} "
            "(snnTorch's exporter writes v_reset=0 whatever the model used); spikeport runs reset to zero in "
            "the step of the spike, i.e. Synaptic/Leaky(reset_mechanism='zero', reset_delay=False); a model "
            "with snnTorch's defaults (reset_mechanism='subtract', reset_delay=True) spikes differently"),
            stacklevel=2)
    return graph


def _snntorch_check(graph: nir.NIRGraph, dt: float) -> None:
    """snnTorch's importer asserts ``v_leak == 0`` and needs a decaying current (it computes
    ``w_in * dt/tau_syn``, which is inf * 0 for tau_syn = inf)."""
    for name, node in _neurons(graph, nir.CubaLIF, nir.LIF):
        v_leak = _array(node.v_leak)
        if np.any(v_leak != 0):
            raise SpikeportError(f"--nir-for snntorch: {name}: v_leak={v_leak[v_leak != 0][0]:g} "
                                 "(a bias into the membrane) cannot be represented: snnTorch's importer refuses "
                                 "v_leak (it asserts v_leak == 0)")
        if isinstance(node, nir.CubaLIF) and np.any(np.isinf(_array(node.tau_syn))):
            raise SpikeportError(f"--nir-for snntorch: {name}: du=0 (tau_syn=inf, a current that never "
                                 "decays) cannot be represented: snnTorch's importer computes w_in*dt/tau_syn "
                                 "= inf*0")


# --------------------------------------------------------------------- Norse
def _norse_adapt(graph: nir.NIRGraph, dt: float) -> nir.NIRGraph:
    """Norse 1.1.0's ``to_nir`` writes ``tau = dt / tau_inv`` instead of ``1 / tau_inv`` (every time
    constant ``dt`` times too small). Its LIFCell (written as CubaLIF with r = 1 and the default
    w_in = 1) adds its input to the current unscaled before the voltage integrates it, which is NIR's
    Euler CubaLIF with ``w_in = tau_syn/dt``; LIFBoxCell (LIF) is NIR's Euler LIF once its time
    constant is corrected. Both start the voltage at v_leak (spikeport at 0): recorded as the
    population's initial voltage (`INITIAL_V_KEY`), which the import gives it through the clock."""
    changes = {}
    for name, node in _neurons(graph, nir.CubaLIF, nir.LIF):
        v_leak = _array(node.v_leak)
        common = dict(r=_array(node.r), v_leak=v_leak, v_threshold=_array(node.v_threshold),
                      v_reset=_array(node.v_reset), metadata={**(node.metadata or {}), INITIAL_V_KEY: v_leak})
        if isinstance(node, nir.CubaLIF):
            tau_syn, tau_mem = _array(node.tau_syn) / dt, _array(node.tau_mem) / dt
            changes[name] = dataclasses.replace(node, tau_syn=tau_syn, tau_mem=tau_mem, w_in=tau_syn / dt, **common)
        else:
            changes[name] = dataclasses.replace(node, tau=_array(node.tau) / dt, **common)
    return _replace(graph, changes)


def _norse_check(graph: nir.NIRGraph, dt: float) -> None:
    """Norse 1.1.0's ``from_nir`` reads a CubaLIF as an LIBoxCell current and an LIFBoxCell voltage and
    hands ``v_leak`` to both, so a nonzero v_leak would also drive the current."""
    for name, node in _neurons(graph, nir.CubaLIF):
        v_leak = _array(node.v_leak)
        if np.any(v_leak != 0):
            raise SpikeportError(f"--nir-for norse: {name}: v_leak={v_leak[v_leak != 0][0]:g} (a bias into the "
                                 "membrane) cannot be represented: Norse's importer adds a CubaLIF's v_leak to "
                                 "its synaptic current as well")


PEERS = {
    "snntorch": Peer("snntorch", "snnTorch", 1e-4, True, _snntorch_adapt, _snntorch_check),
    "norse": Peer("norse", "Norse", 1e-3, False, _norse_adapt, _norse_check),
}
