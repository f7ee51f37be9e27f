"""Compile every numba kernel of the project once, into numba's on-disk cache.

The kernels (`models/*_kernel.py`, `backends/emulator/kernels.py`) are
``cache=True``: numba keeps each compiled signature in ``__pycache__`` beside
its source (or in ``NUMBA_CACHE_DIR``), keyed on the source file's path,
mtime and size. A fresh clone has no cache, so the first test run and the
first demo would compile them all (about 100 s of CPU). `make install` runs
this script once, so that they load the compiled code instead.

Kernels compile per argument types (dtype, ndim, layout, scalar types), so this
drives the real public paths on tiny inputs, never the kernels with guessed
signatures: each path then passes exactly the types it passes in use.

Run: ``python scripts/compile_kernels.py``; prints the seconds (wall) it took.
With a warm cache it only loads (a few seconds, mostly imports).
"""
from __future__ import annotations

import math
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from backends.emulator import kernels, paths, run  # noqa: E402
from models import synapses  # noqa: E402
from models.gate import GateNetwork, GateNeuron, readout  # noqa: E402
from models.network import Network  # noqa: E402
from models.theta import smooth_loss  # noqa: E402
from models.theta_network import ThetaNetwork  # noqa: E402
from models.ttfs_layer import ttfs_layer  # noqa: E402
from toolchain import ir as irm  # noqa: E402
from toolchain.lower import lower  # noqa: E402
from toolchain.quantize import calibration_stats, quantize  # noqa: E402

# Every combination of the emulator's paths (docs/emulator-paths.md): the block
# scheduler with each neuron and synapse path, and the whole network in one loop.
EMULATOR_PATHS = [dict(network="blocks", neuron="compiled", synapse="event"),
                  dict(network="blocks", neuron="compiled", synapse="dense"),
                  dict(network="blocks", neuron="numpy", synapse="event"),
                  dict(network="blocks"),
                  dict(network="compiled")]


def _spikes(shape, density: float, dtype, seed: int) -> torch.Tensor:
    """Binary spikes (0/1 in ``dtype``) of the given density."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).to(dtype)


def _network(config: dict, dtype) -> Network:
    net = Network(dict(config, seed=1))
    return net.to(dtype)


def lif_networks() -> None:
    """`models.network.Network` float and fixed, float32 and float64, forward and backward,
    sparse inputs (the event path of `models.synapses`, `models.event_kernel`) and dense ones
    (the matrix product), feed-forward (`models.lif_kernel`) and recurrent (torch loops)."""
    config = dict(n_in=40, layers=[dict(n=128), dict(n=4)])  # 128: wide enough for the event path
    for dtype in (torch.float32, torch.float64):
        for density in (0.5 * synapses.event_density_limit(128), 0.9):
            x = _spikes((2, 16, 40), density, dtype, seed=3)
            net = _network(config, dtype)
            traces = net(x)
            (traces[-1].v.sum() + traces[-1].s.sum() + traces[0].u.sum()).backward()
            net = _network(config, dtype)
            for layer in net.layers:
                layer.set_fixed_scale(300.0, 0)
            traces = net(x, mode="fixed")
            (traces[-1].v.sum() + traces[0].v.sum()).backward()


def _quantized_ir(weight_scale: float):
    """A tiny feed-forward Network lowered and quantized, weights scaled by ``weight_scale``
    before quantization (the weights' integer dtype follows their range)."""
    net = Network(dict(n_in=30, layers=[dict(n=20), dict(n=6)], seed=2))
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(weight_scale)
    ir = lower(net)
    x = _spikes((2, 20, 30), 0.3, torch.float64, seed=5).numpy()
    q, _ = quantize(ir, calibration_stats(ir, x))
    return q, x


def _one_synapse_ir(n_in: int, max_w: int, weight_exp: int, n: int = 4):
    """Input -> Dense (8-bit weight mantissas up to ``max_w``, ``weight_exp``) -> LIF(n): the
    mantissas' range sets the weights' integer dtype (int8 up to 127, else int16) and, with
    ``n_in`` spiking inputs, the accumulator's (`kernels.accumulator_dtype`: int16 or int32)."""
    w = np.random.default_rng(7).integers(-max_w, max_w + 1, (n, n_in))
    zeros = np.zeros(n, dtype=np.int64)
    ir = irm.IR("warm-up")
    ir.add("input", irm.Input(n_in))
    ir.add("dense", irm.Dense(weight=w * 2.0 ** weight_exp, fixed=irm.SynapseFixed(w, weight_exp=weight_exp)),
           ["input"])
    ir.add("lif", irm.LIF(n, du=0.5, dv=0.5, vth=64000.0,
                          fixed=irm.LIFFixed(du=2047, dv=2048, vth=1000, bias_mant=zeros, bias_exp=zeros,
                                             u=zeros, v=zeros)), ["dense"])
    return ir


def _on_every_path(ir, batches) -> None:
    for batch in batches:
        for forced in EMULATOR_PATHS:
            with paths.forced(**forced):
                run(ir, batch, check=False)
                run(ir, batch, record=[n for n, _ in ir.nodes(irm.Neuron)], check=False)
                run(ir, batch, record=[f"{n}/s" for n, _ in ir.nodes(irm.Neuron)], check=False, packed=True)


def emulator() -> None:
    """`backends.emulator.run` on each path, serial and on numba's threads (batches of
    `kernels.PARALLEL_WORK` neuron-steps and more), sparse and flooding inputs; int8 and int16
    weights, int16 and int32 accumulators."""
    q, x = _quantized_ir(1.0)
    big = int(math.ceil(kernels.PARALLEL_WORK / (x.shape[1] * 26))) + 1
    _on_every_path(q, (x, np.concatenate([x] * (big // 2 + 1)), np.ones((big, 20, 30))))
    for n_in, max_w, weight_exp in ((20, 100, 0), (20, 254, -2), (400, 100, 3), (400, 254, 0)):
        ir = _one_synapse_ir(n_in, max_w, weight_exp)
        _on_every_path(ir, (np.ones((2, 6, n_in)), _spikes((2, 6, n_in), 0.02, torch.float64, seed=8).numpy()))
        # a population wide enough that one block of 4 samples reaches PARALLEL_WORK: the kernels'
        # parallel compilations (each has its own cache: `kernels._serial_and_parallel`)
        wide = _one_synapse_ir(n_in, max_w, weight_exp, n=kernels.PARALLEL_WORK // 4)
        _on_every_path(wide, (_spikes((4, 3, n_in), 0.02, torch.float64, seed=9).numpy(),))


def theta_layers() -> None:
    """`models.theta_network.ThetaNetwork` (the smooth method's layers, `models.theta_kernel`)
    forward and backward, float32 and float64."""
    for dtype in (torch.float32, torch.float64):
        net = ThetaNetwork([5, 6, 3], T=2.0, seed=1, dtype=dtype)
        t_in = torch.rand(4, 5, generator=torch.Generator().manual_seed(2), dtype=dtype) * 2.0
        out = net(t_in)
        smooth_loss(out["t_out"], torch.arange(4) % 3, 2.0, gamma=1e-2).backward()


def gate_bptt() -> None:
    """`models.gate.readout` (`models.gate_kernel`'s forward and BPTT) for every gate kind."""
    for gate in ("box", "smooth"):
        for dtype in (torch.float32, torch.float64):
            net = GateNetwork(3, 6, 1, GateNeuron(gate=gate, x_reset=1.0), seed=3, dtype=dtype)
            inputs = torch.rand(2, 20, 3, generator=torch.Generator().manual_seed(4), dtype=dtype)
            out = readout(net, inputs)
            out["o"].sum().backward()


def ttfs_layers() -> None:
    """`models.ttfs_layer.ttfs_layer` (`models.ttfs_kernel`) forward and backward, float32 and
    float64, with and without a merged tail of last inputs."""
    for dtype in (torch.float32, torch.float64):
        g = torch.Generator().manual_seed(6)
        t = torch.rand(3, 8, generator=g, dtype=dtype) * 2.0
        t[:, :2] = 2.0
        t[0, 5] = math.inf
        w = (torch.rand(4, 8, generator=g, dtype=dtype) * 2.0).requires_grad_()
        z_in = torch.exp(t).requires_grad_()
        for tail in (dict(), dict(tail_z=math.exp(2.0), tail_mask=torch.isfinite(t) & (t == 2.0))):
            z = ttfs_layer(z_in, w, 1.0, **tail)
            z[torch.isfinite(z)].sum().backward()


def main() -> None:
    start = time.perf_counter()
    torch.manual_seed(0)
    for warm in (lif_networks, emulator, theta_layers, gate_bptt, ttfs_layers):
        warm()
    print(f"compile_kernels: numba kernels compiled or loaded from the cache in "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
