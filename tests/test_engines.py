"""`toolchain.engines`: every engine name runs its engine; simulate's names map onto them; no Lava on import."""
import sys

import numpy as np
import pytest
import torch

from fresh_interpreter import run_isolated
from models.errors import SpikeportError
from models.network import Network
from toolchain import engines
from toolchain.lower import lower
from toolchain.simulate import simulate

# engine -> (what runs it, arithmetic)
DISPATCH = {"float": ("torch", "float"), "float-emulator": ("emulator", "float"), "torch-fixed": ("torch", "fixed"),
            "emulator": ("emulator", "fixed"), "lava": ("lava", "fixed"), "lava-float": ("lava", "float")}


def scaled_network(seed=0):
    """A 6-5-3 network with fixed-point scales, so it lowers to a fixed IR (a few spikes per run)."""
    net = Network(dict(n_in=6, seed=seed, layers=[dict(n=5, du=0.2, dv=0.1), dict(n=3, du=0.3, dv=0.1)])).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=torch.Generator().manual_seed(seed),
                                          dtype=torch.float64) * 1.6 - 0.4)
            layer.set_fixed_scale(300.0, 0, 0)
    return net


@pytest.fixture(scope="module")
def subject():
    net = scaled_network()
    x = (np.random.RandomState(1).rand(2, 20, 6) < 0.4).astype(np.int32)
    return net, lower(net), x


@pytest.fixture
def calls(monkeypatch):
    """Replace the emulator, Lava and the torch model by recorders of (what, mode)."""
    import backends.emulator
    import backends.lava.runner

    seen = []

    def recorder(what):
        def run(*args, mode, **options):
            seen.append((what, mode))
            return {}
        return run

    monkeypatch.setattr(backends.emulator, "run", recorder("emulator"))
    monkeypatch.setattr(backends.lava.runner, "run_lava", recorder("lava"))
    monkeypatch.setattr(engines, "torch_outputs", lambda model, x, mode: seen.append(("torch", mode)) or {})
    return seen


def test_the_engine_table_names_every_engine_with_a_one_line_description():
    assert list(engines.ENGINES) == list(DISPATCH)
    assert all(text and "\n" not in text for text in engines.ENGINES.values())


@pytest.mark.parametrize("engine", list(DISPATCH))
def test_every_engine_name_dispatches_to_its_engine_and_arithmetic(engine, subject, calls):
    net, ir, x = subject
    engines.run(engine, ir, x, model=net)
    assert calls == [DISPATCH[engine]]


def test_float_without_a_torch_model_is_the_float_emulator(subject, calls):
    _, ir, x = subject
    engines.run("float", ir, x)
    assert calls == [("emulator", "float")]


def test_an_unknown_engine_is_a_one_line_error_naming_the_choices(subject):
    _, ir, x = subject
    with pytest.raises(SpikeportError) as error:
        engines.run("quantum", ir, x)
    assert str(error.value) == ("unknown engine 'quantum'; choose from float, float-emulator, torch-fixed, "
                                "emulator, lava, lava-float")


def test_torch_fixed_needs_the_torch_model_and_torch_engines_take_no_backend_options(subject):
    net, ir, x = subject
    with pytest.raises(SpikeportError, match="'torch-fixed' needs the torch model"):
        engines.run("torch-fixed", ir, x)
    with pytest.raises(SpikeportError, match="options progress do not apply"):
        engines.run("float", ir, x, model=net, progress=False)


def test_torch_fixed_is_bit_identical_to_the_emulator_and_float_close_to_the_float_emulator(subject):
    net, ir, x = subject
    fixed, emulated = engines.run("torch-fixed", ir, x, model=net), engines.run("emulator", ir, x)
    assert sorted(fixed) == sorted(emulated)
    assert all(np.array_equal(fixed[k], emulated[k]) and fixed[k].dtype == emulated[k].dtype for k in fixed)
    assert sum(int(fixed[k].sum()) for k in fixed if k.endswith("/s")) > 0
    torch_float, emulated_float = engines.run("float", ir, x, model=net), engines.run("float-emulator", ir, x)
    for key in torch_float:
        np.testing.assert_allclose(torch_float[key], emulated_float[key], rtol=1e-9, atol=1e-9, err_msg=key)


def test_a_torch_engine_records_what_it_is_asked_for_keyed_like_the_backends(subject):
    net, ir, x = subject
    wanted = ["output", "layers.0/s"]
    torch_run, emulated = engines.run("torch-fixed", ir, x, wanted, model=net), engines.run("emulator", ir, x, wanted)
    assert list(torch_run) == list(emulated)
    assert all(np.array_equal(torch_run[k], emulated[k]) for k in emulated)


def test_the_torch_engines_record_the_state_in_the_order_a_step_computes_it(subject):
    net, ir, x = subject
    assert list(engines.run("torch-fixed", ir, x, model=net))[:3] == ["layers.0/u", "layers.0/v", "layers.0/s"]


def test_simulate_backend_names_map_onto_engines_in_one_table(subject):
    _, ir, x = subject
    assert engines.SIMULATE_BACKENDS == {"emulator": "emulator", "float": "float-emulator", "lava": "lava",
                                         "lava-float": "lava-float"}
    for backend in ("emulator", "float"):
        got, want = simulate(ir, x, backend), engines.run(engines.SIMULATE_BACKENDS[backend], ir, x)
        assert all(np.array_equal(got[k], want[k]) for k in want)


def test_importing_the_toolchain_and_its_engines_does_not_import_lava():
    code, out, err = run_isolated([sys.executable, "-c", (
        "import sys; import toolchain.cli, toolchain.engines, toolchain.simulate, toolchain.verify; "
        "print(sorted(m for m in sys.modules if m == 'lava' or m.startswith('lava.')))")])
    assert code == 0, err
    assert out.strip() == "[]"
