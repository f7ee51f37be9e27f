"""The QIF op in its current-based form (u decays, enters x scaled by h): every engine agrees."""
from __future__ import annotations

import numpy as np
import pytest

from backends import emulator
from conformance import assert_runs_everywhere
from toolchain import ir as irm


def current_based(n: int = 4) -> irm.IR:
    """input(5) -> dense -> QIF(4): h = 2**-5, u decays by 1/8 per step and enters x as u >> 5."""
    rng = np.random.default_rng(7)
    w = rng.integers(-40, 120, (n, 5))
    x0 = np.linspace(-2.0, 1.0, n)
    frac = 12
    fixed = irm.QIFFixed(k=5, frac=frac, du=511, u_shift=5, x_th=16 << frac, x_reset=-(16 << frac),
                         bias=np.full(n, 32), x=np.round(x0 * 2 ** frac), u=np.zeros(n))
    qif = irm.QIF(n, h=2 ** -5, du=0.125, gain=2 ** -5, x_th=16.0, x_reset=-16.0, bias=np.full(n, 2 ** -5),
                  x=x0, fixed=fixed)
    ir = irm.IR("qif-current")
    ir.add("input", irm.Input(5))
    ir.add("syn", irm.Dense(w / 64.0, fixed=irm.SynapseFixed(w, weight_exp=0, sign_mode=1)), ["input"])
    ir.add("pop", qif, ["syn"])
    ir.add("output", irm.Output(n), ["pop"])
    return ir


def test_the_current_based_qif_keeps_a_decaying_current_and_fires():
    out = emulator.run(current_based(), np.random.default_rng(1).random((2, 60, 5)) < 0.5)
    u = out["pop/u"]
    assert out["pop/s"].any() and (np.abs(np.diff(u, axis=1)) > 0).any()
    assert u.dtype == np.int32


@pytest.mark.lava
def test_the_current_based_qif_runs_bit_identically_on_lava_in_both_arithmetics():
    assert_runs_everywhere(current_based(), np.random.default_rng(2).random((2, 40, 5)) < 0.5)
