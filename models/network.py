"""Feed-forward stacks of LIF layers, rebuilt from a plain config dict.

A `Network` is a sequence of `LIFLayer`s. Layer i receives the spikes of
layer i-1 (layer 0 receives the input) through a dense synapse with optional
per-synapse integer delays (0..63), and optionally its own spikes through a
recurrent dense synapse. Every hop adds one step, as in Lava, so with input
spikes at step t the first layer can respond at t+1, the second at t+2.

Two modes over the same parameters:

* ``float``: Lava ``floating_pt`` equations (float32 or float64);
* ``fixed``: Lava ``fixed_pt`` integer arithmetic, bit for bit, in float64.
  Requires a per-layer scale (`LIFLayer.set_fixed_scale`, chosen by the
  quantizer or for quantization-aware training). Rounding is
  straight-through, so fixed mode trains.

``Network.config`` is all that is needed to rebuild the architecture, so a
checkpoint is ``{config, state_dict}`` and needs none of the code that made it.
"""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np
import torch
from torch import nn

from models import fixed_point as fx
from models import straight_through as ste
from models.errors import SpikeportError, out_of_range
from models.lif import LIFTrace, lif_scan
from models.synapses import FEEDBACK_MODES, make_feedback, spikes_of, synaptic_input

LAYER_DEFAULTS = dict(du=0.2, dv=0.1, vth=1.0, recurrent=False, max_delay=0, bias=True,
                      weight_gain=1.0, train_decays=False, train_threshold=False)
NETWORK_DEFAULTS = dict(feedback="symmetric", slope=10.0, seed=0)


def normalize_config(config: dict) -> dict:
    """Fill defaults and check ranges; errors name the layer, parameter, value and limit."""
    cfg = {**NETWORK_DEFAULTS, **copy.deepcopy(config)}
    if int(cfg.get("n_in", 0)) < 1:
        raise out_of_range("network", "n_in", cfg.get("n_in"), "[1, inf)")
    if not cfg.get("layers"):
        raise SpikeportError("network: config has no layers")
    if cfg["feedback"] not in FEEDBACK_MODES:
        raise out_of_range("network", "feedback", cfg["feedback"], f"{FEEDBACK_MODES}")
    cfg["layers"] = [_normalize_layer(i, layer) for i, layer in enumerate(cfg["layers"])]
    return cfg


def _normalize_layer(i: int, layer: dict) -> dict:
    layer = {**LAYER_DEFAULTS, **layer}
    where = f"layers.{i}"
    if int(layer.get("n", 0)) < 1:
        raise out_of_range(where, "n", layer.get("n"), "[1, inf)")
    for key in ("du", "dv"):
        if not 0.0 <= float(layer[key]) <= 1.0:
            raise out_of_range(where, key, layer[key], "[0, 1]")
    if not 0 <= int(layer["max_delay"]) <= fx.MAX_DELAY:
        raise out_of_range(where, "max_delay", layer["max_delay"], f"[0, {fx.MAX_DELAY}] (Loihi 2: 6-bit delays)")
    if float(layer["vth"]) <= 0:
        raise out_of_range(where, "vth", layer["vth"], "(0, inf)")
    return layer


class LIFLayer(nn.Module):
    """One LIF population with its incoming dense (and optional recurrent) synapse.

    Parameters in float units (Lava ``floating_pt``): ``weight`` (n, n_in),
    ``rec_weight`` (n, n), ``bias`` (n,), ``du``, ``dv`` (decay per step, 0..1),
    ``vth``. Delays (n, n_in) are integer steps, a buffer (not trained).
    """

    def __init__(self, n_in: int, spec: dict, generator: torch.Generator):
        super().__init__()
        n = int(spec["n"])
        k = float(spec["weight_gain"]) / np.sqrt(n_in)
        self.weight = nn.Parameter((torch.rand(n, n_in, generator=generator) * 2 - 1) * k)
        self.bias = nn.Parameter(torch.zeros(n), requires_grad=bool(spec["bias"]))
        self.du = nn.Parameter(torch.tensor(float(spec["du"])), requires_grad=bool(spec["train_decays"]))
        self.dv = nn.Parameter(torch.tensor(float(spec["dv"])), requires_grad=bool(spec["train_decays"]))
        self.vth = nn.Parameter(torch.tensor(float(spec["vth"])), requires_grad=bool(spec["train_threshold"]))
        self.rec_weight = None
        if spec["recurrent"]:
            kr = float(spec["weight_gain"]) / np.sqrt(n)
            self.rec_weight = nn.Parameter((torch.rand(n, n, generator=generator) * 2 - 1) * kr)
        max_delay = int(spec["max_delay"])
        delays = torch.randint(0, max_delay + 1, (n, n_in), generator=generator) if max_delay else None
        self.register_buffer("delays", delays)
        self.register_buffer("feedback", None)
        # fixed-point scale: lam (0 = not set), weight_exp of ff and rec synapses
        self.register_buffer("fixed_scale", torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64))

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    # ---------------------------------------------------------------- fixed point
    def set_fixed_scale(self, lam: float, weight_exp: int, rec_weight_exp: int = 0) -> None:
        """Choose the float->integer scale (see `models.fixed_params`)."""
        self.fixed_scale.copy_(torch.tensor([lam, weight_exp, rec_weight_exp], dtype=torch.float64))

    @property
    def has_fixed_scale(self) -> bool:
        return float(self.fixed_scale[0]) > 0

    def fixed_parameters(self) -> dict:
        """Integer parameters (float64 tensors, straight-through) for fixed mode."""
        lam, e, e_rec = float(self.fixed_scale[0]), int(self.fixed_scale[1]), int(self.fixed_scale[2])
        w, mode = ste.weights(self.weight, lam, e)
        out = dict(weight=w, sign_mode=mode, weight_exp=e, du=ste.decay(self.du, 1), dv=ste.decay(self.dv, 0),
                   vth=ste.threshold(self.vth, lam), bias=ste.bias(self.bias, lam))
        if self.rec_weight is not None:
            out["rec_weight"], out["rec_sign_mode"] = ste.weights(self.rec_weight, lam, e_rec)
            out["rec_weight_exp"] = e_rec
        return out

    # -------------------------------------------------------------------- forward
    def forward(self, s_in: torch.Tensor, mode: str = "float", slope: float = 10.0,
                binary: bool = False) -> LIFTrace:
        """Run the population on presynaptic spike trains ``s_in`` (B, T, n_in); ``binary``: the
        caller guarantees ``s_in`` holds only 0 and 1 (`synaptic_input`), as `Network` does."""
        if mode == "fixed":
            return self._forward_fixed(s_in, slope, binary)
        dtype = s_in.dtype
        a = synaptic_input(s_in, self.weight.to(dtype), self.delays, feedback=self._feedback(dtype))
        return lif_scan(a, alpha=(1 - self.du).to(dtype), beta=(1 - self.dv).to(dtype),
                        bias=self.bias.to(dtype), vth=self.vth.to(dtype),
                        w_rec=None if self.rec_weight is None else self.rec_weight.to(dtype),
                        slope=slope)

    def _forward_fixed(self, s_in: torch.Tensor, slope: float, binary: bool) -> LIFTrace:
        if not self.has_fixed_scale:
            raise SpikeportError("fixed mode needs a fixed-point scale per layer; compile or set_fixed_scale first")
        p = self.fixed_parameters()
        a = synaptic_input(s_in, p["weight"], self.delays, feedback=self._feedback(torch.float64),
                           fixed=True, weight_exp=p["weight_exp"], binary=binary)
        return lif_scan(a, alpha=(fx.current_factor(p["du"]) / fx.DECAY_UNITY),
                        beta=(fx.voltage_factor(p["dv"]) / fx.DECAY_UNITY), bias=p["bias"],
                        vth=p["vth"], w_rec=p.get("rec_weight"), rec_exp=p.get("rec_weight_exp", 0),
                        fixed=True, slope=slope)

    def _feedback(self, dtype) -> Optional[torch.Tensor]:
        return None if self.feedback is None else self.feedback.to(dtype)


class Network(nn.Module):
    """A stack of `LIFLayer`s built from ``config`` (see `normalize_config`).

    ``forward(x, mode)`` takes input spikes (B, T, n_in) (nonzero = spike) and
    returns one `LIFTrace` per layer, each (B, T, n).
    """

    def __init__(self, config: dict):
        super().__init__()
        self.config = normalize_config(config)
        gen = torch.Generator().manual_seed(int(self.config["seed"]))
        sizes = [int(self.config["n_in"])] + [int(layer["n"]) for layer in self.config["layers"]]
        self.layers = nn.ModuleList(
            LIFLayer(sizes[i], spec, gen) for i, spec in enumerate(self.config["layers"]))
        for layer in list(self.layers)[1:]:
            layer.feedback = make_feedback(self.config["feedback"], layer.weight.detach(), gen)

    @property
    def n_in(self) -> int:
        return int(self.config["n_in"])

    @property
    def has_fixed_scale(self) -> bool:
        return all(layer.has_fixed_scale for layer in self.layers)

    def forward(self, x: torch.Tensor, mode: str = "float") -> list[LIFTrace]:
        if x.ndim != 3 or x.shape[-1] != self.n_in:
            raise SpikeportError(f"network input: expected shape (B, T, {self.n_in}), got {tuple(x.shape)}")
        s = spikes_of(x, torch.float64 if mode == "fixed" else x.dtype if x.is_floating_point() else torch.float32)
        traces = []
        for layer in self.layers:
            trace = layer(s, mode=mode, slope=float(self.config["slope"]), binary=True)  # x != 0, then spikes
            traces.append(trace)
            s = trace.s
        return traces
