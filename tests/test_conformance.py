"""Every built-in op type has an implementation in every consumer and runs alike on every engine.

Consumers: the emulator, the Lava op table, ONNX (schema-driven), NIR export (an entry, which
may refuse with a reason), post-training quantization (neurons). The engine check runs one
small network per op type (`conformance.example`) on the emulator and on Lava in fixed and
float mode. An op type added to toolchain/ir/ops without an example or an implementation
fails here by name.
"""
from __future__ import annotations

import numpy as np
import pytest

from backends import emulator
from backends.lava.ops import lava_op
from conformance import EXAMPLES, assert_runs_everywhere, example
from toolchain import ir as irm
from toolchain import quantize
from toolchain.formats import nir as nir_format
from toolchain.formats import onnx as onnx_format

BUILT_IN = sorted(kind for kind, cls in irm.OP_TYPES.items() if cls.__module__.startswith("toolchain."))


def _node_of(kind: str, ir: irm.IR) -> tuple[str, irm.Op]:
    return next((name, op) for name, op in ir.nodes() if op.kind == kind)


@pytest.mark.parametrize("kind", BUILT_IN)
def test_every_built_in_op_type_has_a_conformance_example(kind):
    assert kind in EXAMPLES, f"op type {kind} has no example in tests/conformance.py"


@pytest.mark.parametrize("kind", BUILT_IN)
def test_every_built_in_op_type_has_an_emulator_a_lava_and_a_nir_implementation(kind):
    name, op = _node_of(kind, example(kind))
    assert emulator.implementation(op) is not None or isinstance(op, irm.Sink), f"{kind}: no emulator implementation"
    lava_op(name, op)
    assert any(cls in nir_format.EXPORTS for cls in type(op).__mro__), f"{kind}: no NIR export entry"
    if isinstance(op, irm.Neuron):
        quantize.quantization_rule(name, op)


@pytest.mark.parametrize("kind", BUILT_IN)
def test_every_built_in_op_type_round_trips_onnx(kind, tmp_path):
    ir = example(kind)
    onnx_format.save(ir, tmp_path / "example.onnx")
    assert onnx_format.load(tmp_path / "example.onnx") == ir


def test_an_op_type_no_engine_knows_is_refused_naming_it():
    class Mystery(irm.Neuron):
        abstract = True  # not registered as an op type

    with pytest.raises(Exception, match="Mystery has no Lava mapping"):
        lava_op("pop", Mystery())
    with pytest.raises(Exception, match="Mystery has no implementation and no step rule"):
        emulator.implementation(Mystery())


MODES = ("fixed", "float")


def _example_input() -> np.ndarray:
    """(B=2, T=25, N=5) binary spikes, the input of every op type's example."""
    return np.random.default_rng(2).random((2, 25, 5)) < 0.5


@pytest.fixture(scope="module")
def lava_of_examples():
    """``{kind: {mode: Lava's outputs}}`` for every op type's example: the examples of one mode
    run in one Lava child (`run_lava_many`), each still its own Lava network, so the child's
    start-up is paid twice, not twice per op type. A Lava failure fails every test using this."""
    from backends.lava import run_lava_many

    runs = [(example(kind), _example_input()) for kind in BUILT_IN]
    by_mode = {mode: run_lava_many(runs, mode=mode) for mode in MODES}
    return {kind: {mode: by_mode[mode][i] for mode in MODES} for i, kind in enumerate(BUILT_IN)}


@pytest.mark.lava
@pytest.mark.parametrize("kind", BUILT_IN)
def test_every_built_in_op_type_runs_bit_identically_on_the_emulator_and_on_lava(kind, lava_of_examples):
    assert_runs_everywhere(example(kind), _example_input(), MODES, lava=lava_of_examples[kind])


NEURONS = [kind for kind in BUILT_IN if issubclass(irm.OP_TYPES[kind], irm.Neuron)]


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("kind", NEURONS)
def test_every_built_in_neuron_kernel_equals_its_op_s_own_step_rule(kind, mode, monkeypatch):
    from backends.emulator import populations

    ir, x = example(kind), np.random.default_rng(4).random((3, 40, 5)) < 0.5
    fast = emulator.run(ir, x, mode=mode)
    monkeypatch.setattr(populations, "_IMPLEMENTATIONS", {})
    assert emulator.implementation(ir.op("pop")) is populations.StepRulePopulation
    reference = emulator.run(ir, x, mode=mode)
    assert fast["pop/s"].any()
    for key in reference:
        assert np.array_equal(fast[key], reference[key]), key
