"""The engines that run a network, by name: the one place that chooses emulator, Lava or torch.

============== ===================================================================
name           what runs
============== ===================================================================
float          the torch model in float64 when one is given, else the float emulator
float-emulator `backends.emulator.run` on the IR's float parameters (Lava ``floating_pt``)
torch-fixed    the torch model in Lava integer mode, scaled like the IR
emulator       `backends.emulator.run` on the IR's integers (Lava ``fixed_pt``, bit for bit)
lava           `backends.lava.runner.run_lava` (lava-nc) in ``fixed_pt``
lava-float     `backends.lava.runner.run_lava` (lava-nc) in ``floating_pt``
============== ===================================================================

`run` returns what every engine records: ``{"<node>/<var>": (B, T, n)}``, axis 1
is time (index k is step t = k + 1), ``s`` the spikes and the other variables
the neuron's state as the engine records it (LIF: ``u`` current, ``v`` voltage
after reset). Lava is imported only when a Lava engine runs.

Every engine refuses, in one line, a network `toolchain.ir.passes.validate` refuses
(the emulator and Lava in their entry points, the torch engines here), so an
in-memory IR is checked as a file read by `toolchain.formats.load` is.
"""
from __future__ import annotations

import copy
from typing import Optional, Sequence

import numpy as np

from backends.recording import resolve_record
from models.errors import SpikeportError
from toolchain.ir import passes

ENGINES = {
    "float": "torch model in float64 (given a model), else the float emulator",
    "float-emulator": "emulator on the IR's float parameters (Lava floating_pt)",
    "torch-fixed": "torch model in Lava integer mode, scaled like the IR (needs a model)",
    "emulator": "emulator on the IR's integers (Lava fixed_pt, bit for bit)",
    "lava": "Lava (lava-nc) CPU simulator, fixed_pt",
    "lava-float": "Lava (lava-nc) CPU simulator, floating_pt",
}
# `spikeport simulate --backend NAME` -> engine (simulate runs an IR, never a torch model)
SIMULATE_BACKENDS = {"emulator": "emulator", "float": "float-emulator", "lava": "lava", "lava-float": "lava-float"}


def run(engine: str, ir, x, record: Optional[Sequence[str]] = None, *, model=None, **options) -> dict:
    """Run ``engine`` (a name of `ENGINES`) on inputs ``x`` (B, T, N): ``{"<node>/<var>": (B, T, n)}``.

    ``ir``: the network (`toolchain.ir.IR`); ``model``: the torch `models.network.Network`
    it was lowered from, for the torch engines. ``record``: neuron or Output node names, or
    ``"<node>/<var>"`` (None: every neuron node; see `backends.recording`). ``options`` go
    to the backend (emulator: ``progress``; Lava: ``batching``, ``timeout``, ``workers``).
    """
    check_name(engine)
    if engine == "torch-fixed" or (engine == "float" and model is not None):
        return _run_torch(engine, ir, x, record, model, options)
    mode = "fixed" if engine in ("emulator", "lava") else "float"
    if engine.startswith("lava"):
        from backends.lava.runner import run_lava  # lazy: pulls scipy (~250 ms) into the CLI parser

        return run_lava(ir, x, record, mode=mode, **options)
    from backends.emulator import run as run_emulator  # lazy: pulls scipy (~180 ms) into the CLI parser

    return run_emulator(ir, x, record, mode=mode, **options)


def named(backend: str, mode: str) -> str:
    """The engine name of a backend ("emulator" | "lava") in an arithmetic ("fixed" | "float")."""
    names = {("emulator", "fixed"): "emulator", ("emulator", "float"): "float-emulator",
             ("lava", "fixed"): "lava", ("lava", "float"): "lava-float"}
    if (backend, mode) not in names:
        raise SpikeportError(f"no engine runs backend {backend!r} in mode {mode!r}; "
                             f"backends: emulator, lava; modes: fixed, float")
    return names[backend, mode]


def check_name(engine: str) -> str:
    """``engine`` if it names an engine; otherwise a one-line error naming the choices."""
    if engine not in ENGINES:
        raise SpikeportError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    return engine


# -------------------------------------------------------------- torch model
def _run_torch(engine: str, ir, x, record, model, options: dict) -> dict:
    """``float``: the model as it is, float64; ``torch-fixed``: `fixed_model` in fixed mode."""
    if model is None:
        raise SpikeportError("engine 'torch-fixed' needs the torch model (a .pt checkpoint), not only an IR")
    if options:
        raise SpikeportError(f"engine {engine!r}: options {', '.join(sorted(options))} do not apply")
    passes.validate(ir)
    if engine == "float":
        return _recorded(ir, torch_outputs(model, x, "float"), record)
    return _recorded(ir, torch_outputs(fixed_model(model, ir), x, "fixed"), record)


def torch_outputs(model, x, mode: str) -> dict:
    """Run the torch model on ``x`` (B, T, N) in ``mode`` ("float" or "fixed"):
    ``layers.i/{u,v,s}`` in the order a step computes them, v after reset, with the
    backends' dtypes (s int8; u, v int32 in fixed mode, float64 in float mode)."""
    import torch

    with torch.no_grad():
        traces = model(torch.as_tensor(np.asarray(x), dtype=torch.float64), mode=mode)
    as_state = (lambda a: a.astype(np.int32)) if mode == "fixed" else (lambda a: a)
    out = {}
    for i, trace in enumerate(traces):
        out.update({f"layers.{i}/u": as_state(trace.u.numpy()), f"layers.{i}/v": as_state(trace.v_post.numpy()),
                    f"layers.{i}/s": trace.s.numpy().astype(np.int8)})
    return out


def fixed_model(model, ir):
    """A copy of the torch model scaled like the IR, so its fixed mode computes the IR's integers."""
    from toolchain.lower import apply_scales  # lazy: imports torch (engines is on the torch-free CLI path)

    model = copy.deepcopy(model)
    if "quantization" in ir.meta:
        apply_scales(model, ir)
    elif not model.has_fixed_scale:
        raise SpikeportError(f"IR {ir.name!r}: the IR records no quantization scales and the model has none; "
                             "cannot run the torch fixed-point model")
    return model


def _recorded(ir, outputs: dict, record) -> dict:
    """The part of a torch run that ``record`` asks for, keyed as the backends key it."""
    if record is None:
        return outputs
    wanted = resolve_record(ir, record)
    missing = next((f"{node}/{var}" for node, var in wanted.values() if f"{node}/{var}" not in outputs), None)
    if missing is not None:
        raise SpikeportError(f"record: the torch model does not record {missing!r}")
    return {key: outputs[f"{node}/{var}"] for key, (node, var) in wanted.items()}
