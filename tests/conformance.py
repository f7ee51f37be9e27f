"""The conformance check every op type must pass: the same network on every engine and arithmetic.

`assert_runs_everywhere(ir, x)` runs ``ir`` on the emulator and on Lava in each mode and
asserts that every recorded array (spikes and each population's own state variables) is
bit-identical in fixed mode and equal up to float rounding in float mode (Lava's tiled
float Sparse sums in another order). `EXAMPLES` holds one small network per built-in
op type; `tests/test_conformance.py` fails naming any op type without one, or without an
implementation in some consumer.
"""
from __future__ import annotations

import numpy as np

from backends import emulator
from backends.lava import run_lava
from toolchain import ir as irm


def assert_runs_everywhere(ir: irm.IR, x: np.ndarray, modes=("fixed", "float"), lava: dict | None = None) -> None:
    """``ir`` on the emulator and on Lava in each of ``modes``, every recorded array alike.

    lava: ``{mode: outputs}`` of Lava already run on exactly ``(ir, x)`` in that mode (a
    `run_lava_many` that ran several examples in one Lava child); None runs `run_lava` here.
    """
    for mode in modes:
        emu = emulator.run(ir, x, mode=mode)
        got = run_lava(ir, x, mode=mode) if lava is None else lava[mode]
        assert set(emu) == set(got), (mode, sorted(emu), sorted(got))
        for key in emu:
            assert emu[key].dtype == got[key].dtype, (mode, key)
            if mode == "fixed" or key.endswith("/s"):
                assert np.array_equal(emu[key], got[key]), (mode, key)
            else:
                np.testing.assert_allclose(emu[key], got[key], rtol=1e-12, atol=1e-12, err_msg=f"{mode} {key}")
        assert any(emu[k].any() for k in emu if k.endswith("/s")), f"{mode}: the example never spikes"


def _lif(n: int, cls=irm.LIF, **extra) -> irm.LIF:
    fixed = irm.LIFFixed(du=1024, dv=512, vth=60, bias_mant=np.arange(n) % 3, bias_exp=np.ones(n),
                         u=np.zeros(n), v=np.zeros(n))
    return cls(n, du=0.25, dv=0.125, vth=60 * 64 / 64 / 64, bias=(np.arange(n) % 3) * 2 / 64, fixed=fixed, **extra)


def _qif(n: int) -> irm.QIF:
    """Delta-pulse QIF at h = 2**-6, x in units of 2**-12, thresholds +-20, spread initial x."""
    x0 = np.linspace(-3.0, 2.0, n)
    fixed = irm.QIFFixed(k=6, frac=12, du=4095, u_shift=0, x_th=20 << 12, x_reset=-(20 << 12),
                         bias=np.full(n, 64), x=np.round(x0 * 4096), u=np.zeros(n))
    return irm.QIF(n, h=1 / 64, du=1.0, gain=1.0, x_th=20.0, x_reset=-20.0, bias=np.full(n, 1 / 64), x=x0,
                   fixed=fixed)


def _gate_qif(n: int) -> irm.GateQIF:
    """The QIF example's delta-pulse neuron with a gate zone [0.25, 0.75] and x_th = 0.75: payloads of
    up to 64 per step, and whole passages in one step (q = 1 in float mode)."""
    x0 = np.linspace(-1.0, 0.5, n)
    fixed = irm.GateQIFFixed(k=6, frac=12, du=4095, u_shift=0, x_th=3072, x_reset=-4096, x_a=1024, gate_shift=5,
                             payload_bits=6, bias=np.full(n, 64), x=np.round(x0 * 4096), u=np.zeros(n))
    return irm.GateQIF(n, h=1 / 64, du=1.0, gain=1.0, x_th=0.75, x_reset=-1.0, x_a=0.25, width=0.5,
                       bias=np.full(n, 1 / 64), x=x0, fixed=fixed)


def _synapse(cls, w: np.ndarray, **extra):
    return cls(w / 64.0, fixed=irm.SynapseFixed(w, weight_exp=0, sign_mode=1), **extra)


def example(kind: str) -> irm.IR:
    """A small quantized network exercising op type ``kind``: input(5) -> synapse -> neuron(4) -> output."""
    rng = np.random.default_rng(1)
    w = rng.integers(-30, 90, (4, 5))
    synapse = {"Dense": lambda: _synapse(irm.Dense, w), "Sparse": lambda: _synapse(irm.Sparse, w * (w > 20)),
               "DelayDense": lambda: _synapse(irm.DelayDense, w, delay=rng.integers(0, 4, (4, 5)))}
    neuron = {"LIF": lambda: _lif(4), "LIFReset": lambda: _lif(4, irm.LIFReset, reset_interval=7, reset_offset=2),
              "QIF": lambda: _qif(4), "GateQIF": lambda: _gate_qif(4)}
    ir = irm.IR(f"example-{kind}")
    if kind == "Feed":  # fed straight from the input, same step: input(5) -> feed -> neuron(5)
        ir.add("input", irm.Input(5))
        ir.add("syn", irm.Feed(5, gain=40.0, offset=3.0, fixed=irm.FeedFixed(40, 3)), ["input"])
        ir.add("pop", _lif(5), ["syn"])
        ir.add("output", irm.Output(5), ["pop"])
        return ir
    ir.add("input", irm.Input(5))
    ir.add("syn", synapse.get(kind, synapse["Dense"])(), ["input"])
    ir.add("pop", neuron.get(kind, neuron["LIF"])(), ["syn"])
    ir.add("output", irm.Output(4), ["pop"])
    return ir


EXAMPLES = ("Input", "Dense", "Sparse", "DelayDense", "Feed", "LIF", "LIFReset", "QIF", "GateQIF",
            "Output")  # built-in op types covered
