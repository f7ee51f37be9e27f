"""spikeport's Lava process for the gate QIF neuron (`toolchain.ir.ops.gate_qif`): graded output.

`GateQIF` is an ``AbstractProcess`` like spikeport's QIF process (ports ``a_in``, ``s_out``;
Vars ``u, x, q, bias`` per neuron and the integer constants per population) whose ``s_out``
sends the step's gate charge q as a graded value (int32) instead of a bit. Lava 0.10's
Dense forwards it unchanged when built with ``num_message_bits > 0``: its fixed-point model
types ``s_in`` as ``bool, precision=1`` (proc/dense/models.py:63), but a ``PyInPortVectorDense``
starts its sum from a zero array of that dtype and adds what arrives
(magma/core/model/py/ports.py:346-351), so a bool zero plus an int32 payload is the int32
payload; ``num_message_bits > 0`` then takes ``weights.dot(s_in)`` (proc/dense/models.py:97-99)
instead of summing the columns of the nonzero inputs (:100-102). `docs/gate.md` quotes them.

Models: ``fixed_pt`` (integers only, written independently of the emulator's step rule, u by
`backends.lava.qif.lava_current`) and ``floating_pt`` (the float equations).
"""
from __future__ import annotations

import functools

import numpy as np

from backends.lava.compat import import_lava
from backends.lava.ops import Context, register, require_fixed, tile_neuron
from backends.lava.qif import lava_current
from toolchain.ir.ops.gate_qif import GateQIF


@functools.lru_cache(maxsize=None)
def lava_classes():
    """(gate QIF process class, {"fixed": model, "float": model})."""
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

    class GateQIFProcess(AbstractProcess):
        """QIF population sending its gate charge as graded spikes (equations in
        ``toolchain.ir.ops.gate_qif``)."""

        def __init__(self, *, shape, u, x, bias, k, frac, du, u_shift, x_th, x_reset, x_a, gate_shift,
                     payload_bits, h=0.0, gain=0.0, width=1.0, name=None):
            super().__init__(shape=shape, name=name)
            self.a_in, self.s_out = InPort(shape=shape), OutPort(shape=shape)
            self.u, self.x, self.bias = (Var(shape=shape, init=v) for v in (u, x, bias))
            self.q = Var(shape=shape, init=np.zeros(shape))
            for key, value in dict(k=k, frac=frac, du=du, u_shift=u_shift, x_th=x_th, x_reset=x_reset, x_a=x_a,
                                   gate_shift=gate_shift, payload_bits=payload_bits, h=h, gain=gain,
                                   width=width).items():
                setattr(self, key, Var((1,), init=value))

    @implements(proc=GateQIFProcess, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class Fixed(PyLoihiProcessModel):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
        s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
        u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
        x: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
        q: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
        bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
        k: int = LavaPyType(int, np.int32, precision=5)
        frac: int = LavaPyType(int, np.int32, precision=5)
        du: int = LavaPyType(int, np.int32, precision=13)
        u_shift: int = LavaPyType(int, np.int32, precision=5)
        x_th: int = LavaPyType(int, np.int32, precision=24)
        x_reset: int = LavaPyType(int, np.int32, precision=24)
        x_a: int = LavaPyType(int, np.int32, precision=24)
        gate_shift: int = LavaPyType(int, np.int32, precision=5)
        payload_bits: int = LavaPyType(int, np.int32, precision=5)
        h: float = LavaPyType(float, float)
        gain: float = LavaPyType(float, float)
        width: float = LavaPyType(float, float)

        def run_spk(self):
            u = lava_current(self.u, self.a_in.recv(), self.du)
            x = np.int64(self.x)
            xh = x + np.right_shift(x * x, int(self.frac) + int(self.k)) + self.bias + np.right_shift(
                np.int64(u), int(self.u_shift))
            lo, zone, shift = int(self.x_a), 1 << (int(self.payload_bits) + int(self.gate_shift)), int(self.gate_shift)
            charge_after = np.right_shift(np.clip(np.minimum(xh, lo + zone) - lo, 0, zone), shift)
            charge_before = np.right_shift(np.clip(x - lo, 0, zone), shift)
            q = (charge_after - charge_before).astype(np.int32)
            spiked = xh >= int(self.x_th)
            self.u[:] = u
            self.x[:] = np.where(spiked, int(self.x_reset), xh)
            self.q[:] = q
            self.s_out.send(q)

    @implements(proc=GateQIFProcess, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt")
    class Float(PyLoihiProcessModel):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
        s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
        u: np.ndarray = LavaPyType(np.ndarray, float)
        x: np.ndarray = LavaPyType(np.ndarray, float)
        q: np.ndarray = LavaPyType(np.ndarray, float)
        bias: np.ndarray = LavaPyType(np.ndarray, float)
        k: float = LavaPyType(float, float)
        frac: float = LavaPyType(float, float)
        du: float = LavaPyType(float, float)
        u_shift: float = LavaPyType(float, float)
        x_th: float = LavaPyType(float, float)
        x_reset: float = LavaPyType(float, float)
        x_a: float = LavaPyType(float, float)
        gate_shift: float = LavaPyType(float, float)
        payload_bits: float = LavaPyType(float, float)
        h: float = LavaPyType(float, float)
        gain: float = LavaPyType(float, float)
        width: float = LavaPyType(float, float)

        def run_spk(self):
            self.u[:] = self.u * (1 - self.du) + self.a_in.recv()
            xh = self.x + self.h * self.x * self.x + self.bias + self.gain * self.u
            lo, width = float(self.x_a), float(self.width)
            q = np.clip((np.minimum(xh, lo + width) - lo) / width, 0, 1) - np.clip((self.x - lo) / width, 0, 1)
            self.x[:] = np.where(xh >= self.x_th, self.x_reset, xh)
            self.q[:] = q
            self.s_out.send(q)

    return GateQIFProcess, {"fixed": Fixed, "float": Float}


def process_kwargs(name: str, op: GateQIF, mode: str) -> dict:
    """The process's keyword arguments in ``mode``."""
    if mode == "fixed":
        require_fixed(name, op)
        f = op.fixed
        return dict(u=f.u, x=f.x, bias=f.bias, k=f.k, frac=f.frac, du=f.du, u_shift=f.u_shift, x_th=f.x_th,
                    x_reset=f.x_reset, x_a=f.x_a, gate_shift=f.gate_shift, payload_bits=f.payload_bits)
    return dict(u=np.zeros(op.n), x=op.x, bias=op.bias, k=0, frac=0, du=op.du, u_shift=0, x_th=op.x_th,
                x_reset=op.x_reset, x_a=op.x_a, gate_shift=0, payload_bits=0, h=op.h, gain=op.gain, width=op.width)


def _build(name: str, op: GateQIF, ctx: Context):
    process, _ = lava_classes()
    return process(name=name, shape=(op.n * ctx.tiles,), **tile_neuron(process_kwargs(name, op, ctx.mode), ctx.tiles))


def _models(mode: str) -> dict:
    process, models = lava_classes()
    return {process: models[mode]}


register(GateQIF, _build, models=_models)
