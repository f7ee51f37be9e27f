"""The Lava mapping of `toolchain.ir.ops.Feed`: a process of our own (Lava has none).

``FeedProcess`` receives what the Input's RingBuffer sends at step t on ``s_in``
and sends ``gain * x + offset`` on ``a_out`` in the same step t, so the neuron's
``a_in`` gets it at step t (a Dense would send it at t+1). This is exactly how a
Lava-DL netx input layer runs when the input is handed to its neuron's ``a_in``
(`toolchain.netx`). Fixed mode sends int32 (Lava's synaptic output type), float
mode float64. Tiled batches repeat the scalar gain and offset for every sample.

The classes are defined on first use, after the Python 3.11 shim
(`backends.lava.compat.import_lava`); the runner's child process registers the
mapping when it imports this package.
"""
from __future__ import annotations

import functools

import numpy as np

from backends.lava.compat import import_lava
from backends.lava.ops import register, require_fixed
from toolchain import ir as irm


@functools.lru_cache(maxsize=None)
def lava_classes():
    """(FeedProcess, {mode: process model})."""
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

    class FeedProcess(AbstractProcess):
        """``a_out[t] = gain * s_in[t] + offset``, in the same step."""

        def __init__(self, *, shape, gain, offset, name=None):
            super().__init__(shape=shape, gain=gain, offset=offset, name=name)
            self.s_in, self.a_out = InPort(shape=shape), OutPort(shape=shape)
            self.gain, self.offset = Var((1,), init=gain), Var((1,), init=offset)

    @implements(proc=FeedProcess, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class FeedFixedModel(PyLoihiProcessModel):
        s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
        a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
        gain: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
        offset: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)

        def run_spk(self):
            x = np.asarray(self.s_in.recv(), np.int64)
            self.a_out.send((x * int(self.gain[0]) + int(self.offset[0])).astype(np.int32))

    @implements(proc=FeedProcess, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt")
    class FeedFloatModel(PyLoihiProcessModel):
        s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
        a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
        gain: np.ndarray = LavaPyType(np.ndarray, float)
        offset: np.ndarray = LavaPyType(np.ndarray, float)

        def run_spk(self):
            self.a_out.send(self.s_in.recv() * self.gain[0] + self.offset[0])

    return FeedProcess, {"fixed": FeedFixedModel, "float": FeedFloatModel}


def _build(name: str, op: irm.Feed, ctx):
    process, _ = lava_classes()
    if ctx.mode == "fixed":
        require_fixed(name, op)
        gain, offset = op.fixed.gain, op.fixed.offset
    else:
        gain, offset = op.gain, op.offset
    return process(name=name, shape=(op.n * ctx.tiles,), gain=gain, offset=offset)


def _models(mode: str) -> dict:
    process, models = lava_classes()
    return {process: models[mode]}


register(irm.Feed, _build, models=_models)
