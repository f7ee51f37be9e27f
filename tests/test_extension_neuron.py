"""A neuron type defined entirely in this module runs on every engine: the extension point, proven.

`SubtractiveIF` is an integrate-and-fire neuron with reset by subtraction, a different update
rule and a different state (one variable, ``v``) from the built-in LIF::

    v[t] = v[t-1] + a_in[t] + bias;   s[t] = v[t] >= vth;   v[t] -= vth where s[t]

Everything it needs is here: the op record (its ranges and step rule), a Lava process with
``fixed_pt`` and ``floating_pt`` models (Lava has none), the Lava mapping, and a vectorised
emulator population. Nothing under ``toolchain/`` or ``backends/`` names it. The network
mixes it with a LIF layer, so spikes cross between the two kinds of population.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np
import pytest

from backends import emulator
from backends import lava as lava_backend
from backends.emulator import populations
from backends.lava.ops import require_fixed, tile_neuron
from conformance import assert_runs_everywhere
from toolchain import ir as irm
from toolchain.formats import onnx as onnx_format
from toolchain.ir import passes
from toolchain.ir.ops import check_range, ints

V_LIMIT = (1 << 23) - 1  # 24-bit state, as Loihi's


# ------------------------------------------------------------------ the op
@dataclass
class SubtractiveIFFixed:
    """Fixed-point parameters: integer threshold, bias and initial voltage (Lava's units)."""

    vth: int
    bias: np.ndarray  # (n,) int64
    v: np.ndarray  # (n,) int64

    def __post_init__(self):
        self.vth = int(ints(self.vth, "vth"))
        self.bias, self.v = ints(self.bias, "bias"), ints(self.v, "v")


@dataclass
class SubtractiveIF(irm.Neuron):
    """Integrate-and-fire with reset by subtraction (equations in the module docstring)."""

    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    n: int
    vth: float
    bias: np.ndarray = None  # (n,) float64
    fixed: Optional[SubtractiveIFFixed] = None

    def __post_init__(self):
        self.bias = np.zeros(self.n) if self.bias is None else np.asarray(self.bias, np.float64)
        self.vth = float(self.vth)

    def check_fixed(self, name: str) -> None:
        check_range(name, "vth", self.fixed.vth, 1, (1 << 17) - 1, " (17 bits)")
        check_range(name, "bias", self.fixed.bias, -(1 << 15), (1 << 15) - 1, " (16 bits)")
        check_range(name, "v", self.fixed.v, -V_LIMIT, V_LIMIT, " (24 bits)")

    def initial_state(self, mode: str) -> dict:
        return {"v": (self.fixed.v if mode == "fixed" else np.zeros(self.n)).astype(np.float64)}

    def _constants(self, mode: str):
        f = self.fixed
        return (float(f.vth), f.bias.astype(np.float64)) if mode == "fixed" else (self.vth, self.bias)

    def step(self, state: dict, a_in, t: int, mode: str):
        vth, bias = self._constants(mode)
        v = state["v"] + a_in + bias
        s = v >= vth
        return s, {"v": v - vth * s}


# --------------------------------------------------- a faster emulator kernel
@populations.register(SubtractiveIF)
class SubtractiveIFPopulation(populations.Population):
    """The same rule in place on (B, n) arrays, writing straight into the block rows."""

    @staticmethod
    def prepare(op: SubtractiveIF, arithmetic):
        vth, bias = op._constants(arithmetic.name)
        return dict(n=op.n, vth=vth, bias=bias.copy(), v0=op.initial_state(arithmetic.name)["v"])

    @staticmethod
    def size(constants) -> int:
        return constants["n"]

    def __init__(self, c: dict, arithmetic, batch: int, block: int, record: dict):
        self.c, self.record = c, record
        self.v = np.broadcast_to(c["v0"], (batch, c["n"])).copy()
        self.S = np.empty((block, batch, c["n"]), bool)
        self.A = np.empty((block, batch, c["n"]))
        self.V = np.empty((block, batch, c["n"]))

    def step(self, i: int, t: int, a) -> None:
        self.v += a + self.c["bias"]
        np.greater_equal(self.v, self.c["vth"], out=self.S[i])
        self.v -= self.c["vth"] * self.S[i]
        self.V[i] = self.v

    def end_block(self, t0: int, k: int) -> None:
        for var, block in (("s", self.S), ("v", self.V)):
            if var in self.record:
                self.record[var][:, t0 - 1:t0 - 1 + k] = block[:k].transpose(1, 0, 2)


# ------------------------------------------------------ its own Lava process
@functools.lru_cache(maxsize=None)
def lava_classes():
    """(process, {mode: process model}); defined on first use, after the Python 3.11 shim."""
    lava_backend.import_lava()
    from lava.magma.core.decorator import implements, requires, tag
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyOutPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, OutPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.process.variable import Var
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    class SubtractiveIFProcess(AbstractProcess):
        def __init__(self, *, shape, vth, bias, v, name=None):
            super().__init__(shape=shape, vth=vth, bias=bias, v=v, name=name)
            self.a_in, self.s_out = InPort(shape=shape), OutPort(shape=shape)
            self.v, self.bias, self.vth = Var(shape=shape, init=v), Var(shape=shape, init=bias), Var((1,), init=vth)

    class _Step(PyLoihiProcessModel):
        def run_spk(self):
            self.v[:] = self.v + self.a_in.recv() + self.bias
            s = self.v >= self.vth
            self.v[:] = self.v - self.vth * s
            self.s_out.send(s)

    @implements(proc=SubtractiveIFProcess, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class Fixed(_Step):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
        s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
        v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
        bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
        vth: int = LavaPyType(int, np.int32, precision=17)

    @implements(proc=SubtractiveIFProcess, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("floating_pt")
    class Float(_Step):
        a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
        s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
        v: np.ndarray = LavaPyType(np.ndarray, float)
        bias: np.ndarray = LavaPyType(np.ndarray, float)
        vth: float = LavaPyType(float, float)

    return SubtractiveIFProcess, {"fixed": Fixed, "float": Float}


def _build_process(name: str, op: SubtractiveIF, ctx):
    process, _ = lava_classes()
    if ctx.mode == "fixed":
        require_fixed(name, op)
        kw = dict(vth=op.fixed.vth, bias=op.fixed.bias, v=op.fixed.v)
    else:
        kw = dict(vth=op.vth, bias=op.bias, v=np.zeros(op.n))
    return process(name=name, shape=(op.n * ctx.tiles,), **tile_neuron(kw, ctx.tiles))


def _process_models(mode: str) -> dict:
    process, models = lava_classes()
    return {process: models[mode]}


lava_backend.register(SubtractiveIF, _build_process, models=_process_models)


# ------------------------------------------------------------------ network
def network() -> irm.IR:
    """input(6) -> dense -> SubtractiveIF(5) -> dense -> LIF(3) -> output, float and fixed."""
    rng = np.random.default_rng(3)
    w1, w2 = rng.integers(-40, 90, (5, 6)), rng.integers(-60, 120, (3, 5))
    ir = irm.IR("extension")
    ir.add("input", irm.Input(6))
    ir.add("l0.dense", irm.Dense(w1 / 100.0, fixed=irm.SynapseFixed(w1, weight_exp=0, sign_mode=1)), ["input"])
    ir.add("l0", SubtractiveIF(5, vth=1.5, bias=np.full(5, 0.05),
                               fixed=SubtractiveIFFixed(vth=150, bias=np.full(5, 5), v=np.zeros(5))), ["l0.dense"])
    ir.add("l1.dense", irm.Dense(w2 / 100.0, fixed=irm.SynapseFixed(w2, weight_exp=3, sign_mode=1)), ["l0"])
    ir.add("l1", irm.LIF(3, du=0.25, dv=0.125, vth=1.0,
                         fixed=irm.LIFFixed(du=1024, dv=512, vth=80, bias_mant=np.zeros(3), bias_exp=np.zeros(3),
                                            u=np.zeros(3), v=np.zeros(3))), ["l1.dense"])
    ir.add("output", irm.Output(3), ["l1"])
    return ir


def inputs(batch: int = 3, steps: int = 30) -> np.ndarray:
    return np.random.default_rng(0).random((batch, steps, 6)) < 0.4


def test_the_new_neuron_is_a_registered_op_type_with_its_own_state_variables():
    assert irm.OP_TYPES["SubtractiveIF"] is SubtractiveIF
    ir = network()
    passes.validate(ir, require_fixed=True)
    out = emulator.run(ir, inputs())
    assert {"l0/s", "l0/v", "l1/s", "l1/u", "l1/v"} == set(out)
    assert out["l0/v"].dtype == np.int32 and out["l0/s"].any() and out["l1/s"].any()


def test_the_new_neuron_round_trips_onnx_exactly(tmp_path):
    ir = network()
    onnx_format.save(ir, tmp_path / "extension.onnx")
    assert onnx_format.load(tmp_path / "extension.onnx") == ir


def test_its_registered_emulator_kernel_equals_its_own_step_rule():
    ir, x = network(), inputs()
    assert emulator.implementation(ir.op("l0")) is SubtractiveIFPopulation
    fast = emulator.run(ir, x)
    del populations._IMPLEMENTATIONS[SubtractiveIF]  # the generic kernel: the op's step rule
    try:
        assert emulator.implementation(ir.op("l0")) is populations.StepRulePopulation
        reference = emulator.run(ir, x)
    finally:
        populations.register(SubtractiveIF)(SubtractiveIFPopulation)
    for key in reference:
        assert np.array_equal(fast[key], reference[key]), key


def test_its_out_of_range_parameters_are_refused_naming_node_and_limit():
    ir = network()
    ir.op("l0").fixed.vth = 1 << 20
    with pytest.raises(Exception, match=r"l0: vth=1048576 is outside \[1, 131071\]"):
        passes.validate(ir, require_fixed=True)


@pytest.mark.lava
def test_it_runs_on_lava_bit_identical_to_the_emulator_in_both_arithmetics():
    assert_runs_everywhere(network(), inputs(), modes=("fixed", "float"))
