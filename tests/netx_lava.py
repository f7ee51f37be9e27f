"""Test helpers for Lava-DL netx files: SLAYER's own blocks and export, and netx-on-Lava runs.

* `slayer_file(path, kind)` builds one of the small networks below with
  ``lava.lib.dl.slayer.block.cuba`` blocks (seeded) and writes it with the
  blocks' own ``export_hdf5``, as SLAYER users do;
* `run_netx(path, x)` loads a file with ``lava.lib.dl.netx.hdf5.Network`` and runs
  it on Lava's ``Loihi2SimCfg(select_tag="fixed_pt")``, recording every layer's
  neuron ``s, v, u`` as ``{"layer<i>/<var>": (1, T, n)}`` (the names spikeport's
  netx reader gives them). The input ``x`` ``(T, N)`` is sent to ``net.inp``; for a
  network whose first layer is an ``input`` layer (netx drops ``net.inp`` there) it is
  handed to that layer's neuron ``a_in`` as ``weight * x + bias``, in the same step;
* `compare(a, b)`: (identical arrays, total arrays, first differing key).

lava-dl is imported through `backends.lava.compat.import_lava_dl` (the one shim).
"""
from __future__ import annotations

import h5py
import numpy as np

from backends.lava.compat import import_lava_dl

NEURON = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03, scale_grad=3,
              requires_grad=False)
KINDS = ("dense", "delayed", "two_layers", "excitatory", "input", "recurrent")  # 12 inputs each
BENCH = "bench"  # 64 -> 128 -> 10 with delays on the second layer, for benchmarks/netx_vs_lava.py


def _blocks(kind: str, slayer):
    import torch

    cuba = slayer.block.cuba
    torch.manual_seed(KINDS.index(kind) if kind in KINDS else 99)
    if kind == BENCH:
        return [cuba.Dense(NEURON, 64, 128, weight_scale=2), cuba.Dense(NEURON, 128, 10, weight_scale=2, delay=True)]
    if kind == "dense":
        return [cuba.Dense(NEURON, 12, 6, weight_scale=2)]
    if kind == "delayed":
        return [cuba.Dense(NEURON, 12, 6, weight_scale=2, delay=True)]
    if kind == "two_layers":
        return [cuba.Dense(NEURON, 12, 8, weight_scale=2), cuba.Dense(NEURON, 8, 4, weight_scale=3, delay=True)]
    if kind == "excitatory":
        block = cuba.Dense(NEURON, 12, 6)
        block.synapse.weight.data = torch.randint(3, 23, block.synapse.weight.shape).float() / 8
        return [block]
    if kind == "input":
        return [cuba.Input(NEURON, weight=1.5, bias=0.0), cuba.Dense(NEURON, 12, 6, weight_scale=2)]
    if kind == "recurrent":
        return [cuba.Recurrent(NEURON, 12, 6, weight_scale=2)]
    raise ValueError(kind)


def slayer_file(path, kind: str):
    """Write SLAYER network ``kind`` (one of `KINDS`, or `BENCH`) to ``path`` with ``export_hdf5``; returns path."""
    import torch

    _, slayer = import_lava_dl()
    blocks = _blocks(kind, slayer)
    z = torch.zeros(1, blocks[0].synapse.in_channels if hasattr(blocks[0], "synapse") else 12, 4)
    with torch.no_grad():  # SLAYER blocks learn their shapes in their first forward pass
        for block in blocks:
            z = block(z)
    for block in blocks:  # a delay exists once the first forward pass has given it its shape
        if getattr(block, "delay", None) is not None:
            block.delay.delay.data = torch.randint(0, 5, block.delay.delay.shape).float()
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(str(i)))
    return path


def spikes(T: int, n: int, rate: float = 0.3, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, n)) < rate).astype(np.int64)


def run_netx(path, x: np.ndarray) -> dict:
    """netx-on-Lava (fixed_pt) of the file at ``path`` on spikes ``x`` (T, N): every layer's s, v, u."""
    netx, _ = import_lava_dl()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    T = x.shape[0]
    net = netx.hdf5.Network(net_config=str(path))
    first = net.layers[0]
    if type(first).__name__ == "Input":  # netx never connects net.inp here: feed the neuron itself
        t = first.transform
        source = RingBuffer(data=(t["weight"] * x + t["bias"]).T.astype(np.float64))
        source.s_out.connect(first.neuron.a_in)
    else:
        source = RingBuffer(data=x.T.astype(np.float64))
        source.s_out.connect(net.inp)
    monitors = {}
    for i, layer in _layer_indices(path, net):
        for var in ("s", "v", "u"):
            m = Monitor()
            m.probe(layer.neuron.s_out if var == "s" else getattr(layer.neuron, var), T)
            monitors[f"layer{i}/{var}"] = (m, layer.neuron, var)
    try:
        net.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = {}
        for key, (m, proc, var) in monitors.items():
            port = proc.s_out if var == "s" else getattr(proc, var)
            data = m.get_data()[proc.name][port.name]
            out[key] = np.asarray(data)[None]
    finally:
        net.stop()
    return out


def _layer_indices(path, net):
    """(file layer index, netx block) for every block with a neuron, in order."""
    with h5py.File(path, "r") as f:
        kinds = [f["layer"][str(i)]["type"][0].decode() for i in range(len(f["layer"]))]
    indices = [i for i, k in enumerate(kinds) if k not in ("flatten",) and not (k == "input" and "neuron" not in
                                                                              h5py.File(path, "r")["layer"][str(i)])]
    return list(zip(indices, net.layers))


def compare(a: dict, b: dict, keys=None) -> tuple[int, int, str]:
    """(identical arrays, arrays compared, first differing key or "") over ``keys`` (default: a's)."""
    keys = list(keys or a)
    same = [k for k in keys if k in b and np.array_equal(np.asarray(a[k], np.int64), np.asarray(b[k], np.int64))]
    bad = next((k for k in keys if k not in same), "")
    return len(same), len(keys), bad
