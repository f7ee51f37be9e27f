"""spikeport's own Lava process for the QIF neuron (`toolchain.ir.ops.qif`): Lava 0.10 has none.

`QIF` is an ``AbstractProcess`` with an ``a_in`` InPort, an ``s_out`` OutPort and Vars
``u, x, bias`` (per neuron) and ``k, frac, du, u_shift, x_th, x_reset`` (per population).
Two process models, selected by tag as Lava selects its own:

* ``fixed_pt`` (`lava_classes`' ``Fixed``): integer add, multiply, shift and compare only,
  as Loihi 2 microcode would run it; u exactly as Lava's bit-accurate LIF updates its
  current (int64 product, sign-magnitude shift by 12, ``a_in << 6``, the 24-bit
  correction), then ``X += (X * X) >> (frac + k) + bias + (u >> u_shift)`` in int64,
  spike ``X >= x_th``, reset to ``x_reset``. Written independently of the emulator's step
  rule (float64 arrays of exact integers), so the bit-identity tests compare two codes.
* ``floating_pt`` (``Float``): the float equations of the op's docstring.

Lava is imported on first use only (`lava_classes`), after the Python 3.11 shim.
"""
from __future__ import annotations

import functools

import numpy as np

from backends.lava.compat import import_lava
from backends.lava.ops import Context, register, require_fixed, tile_neuron
from toolchain.ir.ops.qif import QIF


@functools.lru_cache(maxsize=None)
def lava_classes():
    """(QIF process class, {"fixed": model, "float": model})."""
    import_lava()
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.process.variable import Var
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    class QIFProcess(AbstractProcess):
        """Quadratic integrate-and-fire population (spikeport's process; equations in
        ``toolchain.ir.ops.qif``)."""

        def __init__(self, *, shape, u, x, bias, k, frac, du, u_shift, x_th, x_reset, gain=1.0, name=None):
            super().__init__(shape=shape, name=name)
            self.a_in, self.s_out = InPort(shape=shape), OutPort(shape=shape)
            self.u, self.x, self.bias = (Var(shape=shape, init=v) for v in (u, x, bias))
            self.k, self.frac, self.du, self.u_shift = (Var((1,), init=v) for v in (k, frac, du, u_shift))
            self.x_th, self.x_reset, self.gain = (Var((1,), init=v) for v in (x_th, x_reset, gain))

    @implements(proc=QIFProcess, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class Fixed(PyLoihiProcessModel):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int16, precision=16)
        s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
        u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
        x: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
        bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
        k: int = LavaPyType(int, np.int32, precision=5)
        frac: int = LavaPyType(int, np.int32, precision=5)
        du: int = LavaPyType(int, np.int32, precision=13)
        u_shift: int = LavaPyType(int, np.int32, precision=5)
        x_th: int = LavaPyType(int, np.int32, precision=24)
        x_reset: int = LavaPyType(int, np.int32, precision=24)
        gain: float = LavaPyType(float, float)

        def run_spk(self):
            u = lava_current(self.u, self.a_in.recv(), self.du)
            x = np.int64(self.x)
            x = x + np.right_shift(x * x, int(self.frac) + int(self.k)) + self.bias + np.right_shift(np.int64(u), int(self.u_shift))
            s = x >= int(self.x_th)
            self.u[:] = u
            self.x[:] = np.where(s, int(self.x_reset), x)
            self.s_out.send(s)

    @implements(proc=QIFProcess, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt")
    class Float(PyLoihiProcessModel):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
        s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
        u: np.ndarray = LavaPyType(np.ndarray, float)
        x: np.ndarray = LavaPyType(np.ndarray, float)
        bias: np.ndarray = LavaPyType(np.ndarray, float)
        k: float = LavaPyType(float, float)  # float mode: h = k, the step per tau
        frac: float = LavaPyType(float, float)
        du: float = LavaPyType(float, float)
        u_shift: float = LavaPyType(float, float)
        x_th: float = LavaPyType(float, float)
        x_reset: float = LavaPyType(float, float)
        gain: float = LavaPyType(float, float)

        def run_spk(self):
            self.u[:] = self.u * (1 - self.du) + self.a_in.recv()
            x = self.x + self.k * self.x * self.x + self.bias + self.gain * self.u
            s = x >= self.x_th
            self.x[:] = np.where(s, self.x_reset, x)
            self.s_out.send(s)

    return QIFProcess, {"fixed": Fixed, "float": Float}


def lava_current(u, a_in, du) -> np.ndarray:
    """Lava's bit-accurate LIF current update: int64 product, sign-magnitude shift by 12,
    ``a_in << 6``, the 24-bit wrap (lif/models.py ``subthr_dynamics``), as int32."""
    half = 1 << 23
    decayed = np.int64(u) * (4096 - (int(du) + 1))
    u = np.int32(np.sign(decayed) * np.right_shift(np.abs(decayed), 12)) + np.left_shift(
        np.asarray(a_in).astype(np.int32), 6)
    u = np.where(u > half, u - 2 * half, u)
    return np.where(u <= -half, u + 2 * half, u)


def process_kwargs(name: str, op: QIF, mode: str) -> dict:
    """The process's keyword arguments in ``mode`` (float mode passes h as ``k``)."""
    if mode == "fixed":
        require_fixed(name, op)
        f = op.fixed
        return dict(u=f.u, x=f.x, bias=f.bias, k=f.k, frac=f.frac, du=f.du, u_shift=f.u_shift,
                    x_th=f.x_th, x_reset=f.x_reset)
    return dict(u=np.zeros(op.n), x=op.x, bias=op.bias, k=op.h, frac=0.0, du=op.du, u_shift=0.0,
                x_th=op.x_th, x_reset=op.x_reset, gain=op.gain)


def _build(name: str, op: QIF, ctx: Context):
    process, _ = lava_classes()
    return process(name=name, shape=(op.n * ctx.tiles,), **tile_neuron(process_kwargs(name, op, ctx.mode), ctx.tiles))


def _models(mode: str) -> dict:
    process, models = lava_classes()
    return {process: models[mode]}


register(QIF, _build, models=_models)
