"""NIR round trips with snnTorch and Norse, built with the peers' own APIs: the table of docs/nir.md.

Run from the repository root (snntorch 1.0.0, norse 1.1.0 and nirtorch 2.6 installed, as ``make
install`` does)::

    .venv/bin/python examples/nir_peers.py [--digits model.pt]

Each case builds a network, exports it with one program's own NIR exporter to a ``.nir`` file,
reads the file with the other program, runs both on the same random input spikes (float
arithmetic; spikeport's float emulator) and compares the output layer's spikes. Spikeport adds one
step per synaptic hop, so its output layer (``k`` hops from the input) spikes in step ``t + k``
where the Euler peer spikes in step ``t``: the comparison is exact after that shift, and spikeport
must not spike in its first ``k`` steps. An outcome is one of

* ``identical``: every spike equal;
* ``refused: REASON``: spikeport (or the peer's importer) refused the file in one line;
* ``warning: REASON (N of M spikes differ)``: the file lacks information, said so, and the
  spikes that differ are counted.

``tests/test_nir_peers.py`` asserts each case's outcome.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nir
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models.errors import SpikeportError  # noqa: E402
from toolchain import engines, formats  # noqa: E402
from toolchain import ir as irm  # noqa: E402

B, T, N_IN, N_HID, N_OUT = 4, 60, 6, 8, 3


@dataclass
class Outcome:
    kind: str  # "identical" | "refused" | "warning" | "DIFFERENT"
    detail: str = ""
    differ: int = -1  # spikes that differ (-1: not run)

    def __str__(self) -> str:
        return self.kind + (f": {self.detail}" if self.detail else "")


def input_spikes(seed: int = 0, n: int = N_IN) -> np.ndarray:
    """(B, T, n) Bernoulli spikes of density 0.3."""
    return (np.random.default_rng(seed).random((B, T, n)) < 0.3).astype(np.float32)


# ------------------------------------------------------------------ runners
def run_spikeport(ir: irm.IR, x: np.ndarray) -> np.ndarray:
    """Output-node spikes (B, T, n) of ``ir`` on the float emulator."""
    (out,) = [name for name, _ in ir.nodes(irm.Output)]
    return engines.run("float-emulator", ir, x, record=[out])[f"{out}/s"].astype(np.float32)


def run_stepwise(step: Callable, x: np.ndarray) -> np.ndarray:
    """A peer network stepped over time: ``step(x_t)`` -> output spikes (B, n); (B, T, n)."""
    with torch.no_grad():
        return torch.stack([step(torch.from_numpy(x[:, t])) for t in range(x.shape[1])], 1).numpy()


def run_snntorch(net, x):
    import snntorch.utils

    snntorch.utils.reset(net)
    return run_stepwise(lambda x_t: _first(net(x_t)), x)


def run_norse(net, x):
    state = [None]

    def step(x_t):
        out, state[0] = net(x_t, state[0])
        return out
    return run_stepwise(step, x)


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def compare(peer: np.ndarray, spikeport: np.ndarray, hops: int) -> tuple[int, int]:
    """(spikes that differ, peer spikes) with spikeport ``hops`` steps later; spikes spikeport emits in
    its first ``hops`` steps count as differing."""
    differ = int(np.sum(peer[:, : T - hops] != spikeport[:, hops:]) + np.sum(spikeport[:, :hops]))
    return differ, int(peer.sum())


def verdict(peer, ours, hops, warned: list[str]) -> Outcome:
    differ, total = compare(peer, ours, hops)
    if total == 0:
        return Outcome("DIFFERENT", "the peer never spiked: the case tests nothing")
    if warned:
        return Outcome("warning", f"{warned[0].split(' (')[0]} ({differ} of {total} spikes differ)", differ)
    return Outcome("identical" if differ == 0 else "DIFFERENT", f"{total} spikes" if differ == 0 else
                   f"{differ} of {total} spikes differ", differ)


def _caught(fn):
    """(result, [spikeport's NIR warnings]) of ``fn()``."""
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in held if str(w.message).startswith(("--nir-", "NIR"))]


# ------------------------------------------------------------------ networks
def snntorch_net(kind: str, bias: bool, reset: str = "zero", reset_delay: bool = False):
    """Linear -> Synaptic -> Linear -> Synaptic (kind "synaptic") or Linear -> Leaky ("leaky")."""
    import snntorch as snn

    torch.manual_seed(1)
    full = lambda v, n: torch.full((n,), v)  # noqa: E731  (snnTorch's exporter needs per-neuron params)
    opts = dict(init_hidden=True, reset_mechanism=reset, reset_delay=reset_delay)
    if kind == "leaky":
        return torch.nn.Sequential(torch.nn.Linear(N_IN, N_OUT, bias=bias),
                                   snn.Leaky(beta=full(0.85, N_OUT), threshold=full(0.5, N_OUT), output=True, **opts))
    return torch.nn.Sequential(
        torch.nn.Linear(N_IN, N_HID, bias=bias),
        snn.Synaptic(alpha=full(0.8, N_HID), beta=full(0.9, N_HID), threshold=full(1.0, N_HID), **opts),
        torch.nn.Linear(N_HID, N_OUT, bias=bias),
        snn.Synaptic(alpha=full(0.7, N_OUT), beta=full(0.8, N_OUT), threshold=full(0.6, N_OUT), output=True, **opts))


def scaled(net, factor: float):
    """``net`` with every Linear weight (and bias) times ``factor``, so that it spikes."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(factor)
                if m.bias is not None:
                    m.bias.mul_(factor / 2)
    return net


def norse_net(cell: str, bias: bool, v_leak: float = 0.0):
    """Linear -> LIFCell|LIFBoxCell -> Linear -> LIFCell|LIFBoxCell (Norse's defaults otherwise)."""
    import norse.torch as norse

    torch.manual_seed(2)
    if cell == "LIFCell":
        make = lambda: norse.LIFCell(norse.LIFParameters(v_leak=torch.tensor(v_leak)))  # noqa: E731
    else:
        make = lambda: norse.LIFBoxCell(norse.LIFBoxParameters(v_leak=torch.tensor(v_leak)))  # noqa: E731
    return scaled(norse.SequentialState(torch.nn.Linear(N_IN, N_HID, bias=bias), make(),
                                        torch.nn.Linear(N_HID, N_OUT, bias=bias), make()),
                  6.0 if cell == "LIFCell" else 25.0)  # LIFBoxCell's input gain is dt/tau_mem = 0.1


def writable(graph: nir.NIRGraph) -> nir.NIRGraph:
    """Norse 1.1.0's ``to_nir`` graph with its torch tensors as numpy arrays and each neuron's 0-d
    parameters broadcast to its layer (the rows of the Affine feeding it): ``nir.write`` cannot store
    0-d ones (h5py: "Scalar datasets don't support chunk/filter options") and ``nir.read`` then
    refuses the shapes. Values are unchanged."""
    def array(value):
        return np.asarray(value.detach() if hasattr(value, "detach") else value, dtype=np.float32)
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, (nir.CubaLIF, nir.LIF)):
            (src,) = [a for a, b in graph.edges if b == name]
            n = graph.nodes[src].weight.shape[0]
            params = {k: np.full(n, array(v)) for k, v in vars(node).items()
                      if k not in ("input_type", "output_type", "metadata")}
            node = type(node)(**params)
        elif isinstance(node, nir.Affine):
            node = nir.Affine(weight=array(node.weight), bias=array(node.bias))
        nodes[name] = node
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges))


# ------------------------------------------------------------------ round trips
def peer_to_spikeport(peer: str, net, hops: int, folder: Path) -> Outcome:
    """Export ``net`` with the peer's exporter, read it with ``--nir-from PEER``, compare."""
    x = input_spikes()
    path = folder / f"{peer}.nir"
    if peer == "snntorch":
        from snntorch.export_nir import export_to_nir

        graph = export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0])
        expected = run_snntorch(net, x)
    else:
        from norse.torch.utils.export_nir import to_nir

        graph = writable(to_nir(net, torch.zeros(N_IN)))
        expected = run_norse(net, x)
    nir.write(path, graph)
    try:
        ir, warned = _caught(lambda: formats.load(path, nir_from=peer))
    except SpikeportError as e:
        return Outcome("refused", str(e))
    return verdict(expected, run_spikeport(ir, x), hops, warned)


def spikeport_to_peer(peer: str, ir: irm.IR, hops: int, folder: Path) -> Outcome:
    """Write ``ir`` with ``--nir-for PEER``, read it with the peer's own importer, compare."""
    x = input_spikes(1, next(op.n for _, op in ir.nodes(irm.Input)))
    path = folder / f"for-{peer}.nir"
    try:
        formats.save(ir, path, nir_for=peer)
    except SpikeportError as e:
        return Outcome("refused", str(e))
    graph = nir.read(path)
    if peer == "snntorch":
        from snntorch.import_nir import import_from_nir

        net = import_from_nir(graph)
        got = run_stepwise(lambda x_t: _first(net(x_t)), x)
    else:
        from norse.torch.utils.import_nir import from_nir

        got = run_norse(from_nir(graph, dt=float(1e-3)), x)
    return verdict(got, run_spikeport(ir, x), hops, [])


def imported(peer: str, net, folder: Path) -> irm.IR:
    """The spikeport IR of a peer network (through the peer's exporter and ``--nir-from``)."""
    from snntorch.export_nir import export_to_nir
    from norse.torch.utils.export_nir import to_nir

    graph = export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0]) if peer == "snntorch" else \
        writable(to_nir(net, torch.zeros(N_IN)))
    nir.write(folder / "src.nir", graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return formats.load(folder / "src.nir", nir_from=peer)


def digits_ir(checkpoint: Path, zero_bias: bool) -> irm.IR:
    """spikeport's digits network (a SuperSpike checkpoint, lowered), optionally without biases."""
    from toolchain.lower import lower
    from toolchain.methods.superspike import checkpoint as ckpt

    model, meta = ckpt.load(checkpoint)
    ir = lower(model, name="digits")
    if zero_bias:
        for _, op in ir.nodes(irm.LIF):
            op.bias = np.zeros(op.n)
    return ir


def cases(folder: Path, digits: Path | None = None) -> dict[str, Callable[[], Outcome]]:
    """Case name -> the function that runs it."""
    found = {
        ("snntorch", "to spikeport", "Linear->Synaptic->Linear->Synaptic (reset zero)"):
            lambda: peer_to_spikeport("snntorch", scaled(snntorch_net("synaptic", False), 3.0), 2, folder),
        ("snntorch", "to spikeport", "Linear->Leaky (reset zero)"):
            lambda: peer_to_spikeport("snntorch", scaled(snntorch_net("leaky", False), 3.0), 1, folder),
        ("snntorch", "to spikeport", "Linear(bias)->Synaptic x2 (reset zero)"):
            lambda: peer_to_spikeport("snntorch", scaled(snntorch_net("synaptic", True), 3.0), 2, folder),
        ("snntorch", "to spikeport", "defaults: Linear(bias)->Synaptic x2, subtract reset, reset_delay"):
            lambda: peer_to_spikeport("snntorch", scaled(snntorch_net("synaptic", True, "subtract", True), 3.0),
                                      2, folder),
        ("norse", "to spikeport", "Linear->LIFCell x2"):
            lambda: peer_to_spikeport("norse", norse_net("LIFCell", False), 2, folder),
        ("norse", "to spikeport", "Linear(bias)->LIFCell x2"):
            lambda: peer_to_spikeport("norse", norse_net("LIFCell", True), 2, folder),
        ("norse", "to spikeport", "Linear->LIFBoxCell x2"):
            lambda: peer_to_spikeport("norse", norse_net("LIFBoxCell", False), 2, folder),
        ("norse", "to spikeport", "Linear(bias)->LIFBoxCell x2"):
            lambda: peer_to_spikeport("norse", norse_net("LIFBoxCell", True), 2, folder),
        ("norse", "to spikeport", "Linear->LIFCell x2, v_leak=0.5 (v starts at v_leak)"):
            lambda: peer_to_spikeport("norse", norse_net("LIFCell", False, 0.5), 2, folder),
        ("norse", "to spikeport", "Linear->LIFBoxCell x2, v_leak=0.5"):
            lambda: peer_to_spikeport("norse", norse_net("LIFBoxCell", False, 0.5), 2, folder),
    }
    for peer in ("snntorch", "norse"):
        found[(peer, "from spikeport", "snnTorch Linear(bias)->Synaptic x2, read by spikeport")] = \
            lambda peer=peer: spikeport_to_peer(
                peer, imported("snntorch", scaled(snntorch_net("synaptic", True), 3.0), folder), 2, folder)
        found[(peer, "from spikeport", "Norse Linear(bias)->LIFCell x2, read by spikeport")] = \
            lambda peer=peer: spikeport_to_peer(peer, imported("norse", norse_net("LIFCell", True), folder), 2, folder)
        if digits is not None:
            found[(peer, "from spikeport", "spikeport digits network (trained, biases)")] = \
                lambda peer=peer: spikeport_to_peer(peer, digits_ir(digits, False), 2, folder)
            found[(peer, "from spikeport", "spikeport digits network, biases zeroed")] = \
                lambda peer=peer: spikeport_to_peer(peer, digits_ir(digits, True), 2, folder)
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--digits", type=Path, help="a SuperSpike digits checkpoint (spikeport train --task digits)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(key, fn()) for key, fn in cases(Path(tmp), args.digits).items()]
    print("| peer | direction | network | outcome |\n|---|---|---|---|")
    for (peer, direction, network), outcome in rows:
        print(f"| {peer} | {direction} | {network} | {outcome} |")
    return int(any(o.kind == "DIFFERENT" for _, o in rows))


if __name__ == "__main__":
    sys.exit(main())
