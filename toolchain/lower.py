"""Lowering: a `models.network.Network` -> graph IR, with no hand naming.

Node names follow the torch module paths, so a message about a node points
at the module it came from::

    input ──► layers.0.dense ──► layers.0 ──► layers.1.dense ──► layers.1 ──► output
                                   ▲    │
                                   └────┴── layers.0.rec   (only if recurrent)

A layer with delays lowers to a DelayDense. Float parameters are always
written. When the network carries fixed-point scales (quantization-aware
training, or a network the quantizer already scaled) the fixed-point records
are written too, computed by the *same* functions fixed mode trains with, so
the integers are identical to the ones used in training. `apply_scales` goes
the other way: it gives a network the scales a quantized IR was made with.
"""
from __future__ import annotations

import numpy as np
import torch

from models import fixed_params as fp
from models.errors import SpikeportError
from models.network import LIFLayer, Network
from toolchain import ir as irm

INPUT, OUTPUT = "input", "output"


def lower(model: torch.nn.Module, name: str = "network") -> irm.IR:
    """Lower ``model`` to an IR (float params, plus fixed params if scaled)."""
    if not isinstance(model, Network):
        raise SpikeportError(
            f"lower: module of type {type(model).__module__}.{type(model).__qualname__} is not supported; "
            "spikeport lowers models.network.Network (stacks of LIFLayer)")
    for path, module in model.named_modules():
        if path and not isinstance(module, (LIFLayer, torch.nn.ModuleList)):
            raise SpikeportError(f"lower: module {path!r} of type {type(module).__qualname__} is not supported")
    graph = irm.IR(name, meta={"config": model.config})
    src = graph.add(INPUT, irm.Input(model.n_in, source="input"))
    for i, layer in enumerate(model.layers):
        src = _lower_layer(graph, f"layers.{i}", layer, src)
    graph.add(OUTPUT, irm.Output(model.layers[-1].size, source=f"layers.{len(model.layers) - 1}"), [src])
    return graph


def _lower_layer(graph: irm.IR, path: str, layer: LIFLayer, src: str) -> str:
    fixed = layer.fixed_parameters() if layer.has_fixed_scale else None
    weight = _np(layer.weight)
    syn_fixed = _synapse_fixed(fixed, "weight", "sign_mode", "weight_exp")
    if layer.delays is not None:
        syn = irm.DelayDense(weight, fixed=syn_fixed, delay=_np(layer.delays).astype(np.int64), source=path)
    else:
        syn = irm.Dense(weight, fixed=syn_fixed, source=path)
    graph.add(f"{path}.dense", syn, [src])
    neuron = irm.LIF(layer.size, du=float(layer.du), dv=float(layer.dv), vth=float(layer.vth),
                     bias=_np(layer.bias), fixed=_lif_fixed(layer, fixed), source=path)
    graph.add(path, neuron, [f"{path}.dense"])
    if layer.rec_weight is not None:
        rec = irm.Dense(_np(layer.rec_weight), source=path,
                        fixed=_synapse_fixed(fixed, "rec_weight", "rec_sign_mode", "rec_weight_exp"))
        graph.add(f"{path}.rec", rec, [path])
        graph.connect(f"{path}.rec", path)
    return path


def _synapse_fixed(fixed, w_key, mode_key, exp_key):
    if fixed is None:
        return None
    return irm.SynapseFixed(weights=_np(fixed[w_key]).astype(np.int64), weight_exp=int(fixed[exp_key]),
                            num_weight_bits=8, sign_mode=int(fixed[mode_key]))


def _lif_fixed(layer: LIFLayer, fixed):
    if fixed is None:
        return None
    lam = float(layer.fixed_scale[0])
    mant, exp, _ = fp.bias_to_fixed(_np(layer.bias), lam)
    zeros = np.zeros(layer.size, dtype=np.int64)
    return irm.LIFFixed(du=int(fixed["du"]), dv=int(fixed["dv"]), vth=int(fixed["vth"]),
                        bias_mant=mant.astype(np.int64), bias_exp=exp, u=zeros, v=zeros)


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy() if t.is_floating_point() else t.detach().cpu().numpy()


def apply_scales(model, ir: irm.IR) -> None:
    """Give a `Network` the scales a quantized IR was made with (for its fixed mode)."""
    q = ir.meta.get("quantization", {})
    for i, layer in enumerate(model.layers):
        node = f"layers.{i}"
        exps = {s["node"]: s["weight_exp"] for s in q[node]["synapses"]}
        layer.set_fixed_scale(q[node]["lam"], exps.get(f"{node}.dense", 0), exps.get(f"{node}.rec", 0))
