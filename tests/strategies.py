"""Random fixed-point networks and inputs that exercise every rule of docs/fixed-point.md.

A network is described by a small `NetSpec` (structure and the corner cases
it should hit) plus a seed for its arrays; `build` turns a spec into an IR
and an input batch. Two ways to get specs, one construction:

* `net_specs()`: a hypothesis strategy (shrinks on structure: fewer layers,
  no delays, no recurrence, ...);
* `random_spec(rng)`: a plain seeded generator for scripts and benchmarks.

What the specs cover (each toggled independently): feed-forward chains of
1-3 LIF layers; DelayDense with delays 0..6 (sometimes up to 63); recurrent
synapses; graded inputs; several synapses into one population (a skip
projection from the input); LIFReset; weight styles from mixed to extreme
(+-255, -256, all-inhibitory, all-excitatory, odd mixed values that lose
their LSB, a sign mode that contradicts the weights); num_weight_bits 5..8;
weight_exp -3..+3; du in {-1, 0, 4095, random}, dv in {0, 4095, random};
biases with bias_exp 0..7 and negative mantissas; nonzero initial u and v;
and a "flood" drive (700 inputs at w=255) that pushes u across +-2**23 and v
into saturation.

Every parameter stays inside what Lava itself accepts (int16 bias mantissa,
du/dv ranges, int32 state), so the same IR runs on Lava. The float
parameters are the fixed ones in the same units (weights ``W * 2**e``,
``du = (du+1)/4096``, ``dv = dv/4096``, ``vth << 6``, effective bias), all
dyadic, so float sums are exact in any order and ``floating_pt`` can be
compared with equality.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from models import fixed_point as fx
from toolchain import ir as irm

WEIGHT_STYLES = ("mixed", "excitatory", "inhibitory", "extreme", "odd", "contradicting")
DU_CHOICES = (-1, 0, 4095, None)  # None: random in [0, 4095]
DV_CHOICES = (0, 4095, None)
FLOOD_INPUTS = 700


@dataclass(frozen=True)
class NetSpec:
    """Structure and corner cases of one random network; arrays come from ``seed``."""

    seed: int = 0
    n_in: int = 8
    layers: tuple = (6, 4)
    batch: int = 3
    steps: int = 30
    max_delay: tuple = ()  # per layer; 0 or missing = Dense
    recurrent: tuple = ()  # per layer
    reset: tuple = ()  # per layer: (interval, offset) for LIFReset, or None
    graded: bool = False
    skip: bool = False  # the input also projects onto the last layer
    weights: str = "mixed"
    num_weight_bits: int = 8
    weight_exp: int = 0
    du: int | None = None
    dv: int | None = None
    density: float = 0.3
    flood: bool = False  # 700 inputs at w = 255: u wraps, v saturates

    def per_layer(self, field: str, i: int, default):
        values = getattr(self, field)
        return values[i] if i < len(values) else default


# ------------------------------------------------------------------ strategies
@st.composite
def net_specs(draw, max_layers: int = 3, max_batch: int = 4, max_steps: int = 40) -> NetSpec:
    """A hypothesis strategy for `NetSpec`s covering every rule (see the module docstring)."""
    n_layers = draw(st.integers(1, max_layers))
    flood = draw(st.sampled_from([False] * 5 + [True]))
    delays = st.sampled_from([0] * 4 + [1, 2, 3, 4, 5, 6, 63])
    resets = st.one_of(st.none(), st.none(), st.none(), st.tuples(st.integers(1, 7), st.integers(0, 9)))
    return NetSpec(
        seed=draw(st.integers(0, 2 ** 31 - 1)),
        n_in=FLOOD_INPUTS if flood else draw(st.integers(1, 16)),
        layers=tuple(draw(st.integers(1, 12)) for _ in range(n_layers)),
        batch=draw(st.integers(1, max_batch)),
        steps=draw(st.integers(1, max_steps)),
        max_delay=tuple(draw(delays) for _ in range(n_layers)),
        recurrent=tuple(draw(st.booleans()) for _ in range(n_layers)),
        reset=tuple(draw(resets) for _ in range(n_layers)),
        graded=draw(st.booleans()),
        skip=draw(st.booleans()),
        weights="excitatory" if flood else draw(st.sampled_from(WEIGHT_STYLES)),
        num_weight_bits=draw(st.integers(5, 8)),
        weight_exp=draw(st.integers(-3, 3)),
        du=draw(st.sampled_from(DU_CHOICES)),
        dv=draw(st.sampled_from(DV_CHOICES)),
        density=draw(st.sampled_from([0.05, 0.2, 0.4, 0.8])),
        flood=flood,
    )


def random_spec(rng: np.random.Generator, **overrides) -> NetSpec:
    """A `NetSpec` drawn with a numpy generator (the same space as `net_specs`)."""
    n_layers = int(rng.integers(1, 4))
    flood = bool(rng.random() < 1 / 6)
    spec = NetSpec(
        seed=int(rng.integers(0, 2 ** 31 - 1)),
        n_in=FLOOD_INPUTS if flood else int(rng.integers(1, 17)),
        layers=tuple(int(n) for n in rng.integers(1, 13, n_layers)),
        batch=int(rng.integers(1, 5)),
        steps=int(rng.integers(1, 41)),
        max_delay=tuple(int(rng.choice([0] * 4 + [1, 2, 3, 4, 5, 6, 63])) for _ in range(n_layers)),
        recurrent=tuple(bool(rng.random() < 0.5) for _ in range(n_layers)),
        reset=tuple((int(rng.integers(1, 8)), int(rng.integers(0, 10))) if rng.random() < 0.25 else None
                    for _ in range(n_layers)),
        graded=bool(rng.random() < 0.5),
        skip=bool(rng.random() < 0.5),
        weights="excitatory" if flood else str(rng.choice(WEIGHT_STYLES)),
        num_weight_bits=int(rng.integers(5, 9)),
        weight_exp=int(rng.integers(-3, 4)),
        du=DU_CHOICES[int(rng.integers(len(DU_CHOICES)))],
        dv=DV_CHOICES[int(rng.integers(len(DV_CHOICES)))],
        density=float(rng.choice([0.05, 0.2, 0.4, 0.8])),
        flood=flood,
    )
    return replace(spec, **overrides)


# ---------------------------------------------------------------- construction
def build(spec: NetSpec) -> tuple[irm.IR, np.ndarray]:
    """The IR (fixed and float parameters) and an input batch ``(B, T, n_in)`` for ``spec``.

    Node names: ``input``, ``layers.i.dense`` (``.rec`` recurrent, ``.skip`` from
    the input), ``layers.i``, ``output``.
    """
    rng = np.random.default_rng(spec.seed)
    ir = irm.IR(f"random-{spec.seed}")
    ir.add("input", irm.Input(spec.n_in, num_message_bits=16 if spec.graded else 0))
    src, n_src, last = "input", spec.n_in, len(spec.layers) - 1
    for i, n in enumerate(spec.layers):
        name = f"layers.{i}"
        flood = spec.flood and i == 0
        synapses = [_synapse(ir, f"{name}.dense", src, (n, n_src), spec, rng,
                             spec.per_layer("max_delay", i, 0), src == "input" and spec.graded, flood)]
        if spec.skip and i == last:
            synapses.append(_synapse(ir, f"{name}.skip", "input", (n, spec.n_in), spec, rng, 0, spec.graded, False))
        ir.add(name, _neuron(n, spec, rng, spec.per_layer("reset", i, None), spec.weight_exp), synapses)
        if spec.per_layer("recurrent", i, False):
            ir.connect(_synapse(ir, f"{name}.rec", name, (n, n), spec, rng, 0, False, False), name)
        src, n_src = name, n
    ir.add("output", irm.Output(n_src), [src])
    return ir, _inputs(spec, rng)


def _synapse(ir, name, src, shape, spec, rng, max_delay, graded, flood) -> str:
    weights, sign_mode = _weights("flood" if flood else spec.weights, shape, rng)
    nwb, exp = spec.num_weight_bits, max(spec.weight_exp, 0) if flood else spec.weight_exp
    fixed = irm.SynapseFixed(weights, weight_exp=exp, num_weight_bits=nwb, sign_mode=sign_mode)
    weight = fx.lava_weights(weights.astype(np.float64), nwb, sign_mode or None) * 2.0 ** exp
    bits = 16 if graded else 0
    if max_delay:
        op = irm.DelayDense(weight, num_message_bits=bits, fixed=fixed, delay=rng.integers(0, max_delay + 1, shape))
    else:
        op = irm.Dense(weight, num_message_bits=bits, fixed=fixed)
    return ir.add(name, op, [src])


def _weights(style: str, shape, rng) -> tuple[np.ndarray, int]:
    """Integer weights (not necessarily what Lava keeps) and the sign mode handed to Lava (0: infer)."""
    if style == "flood":
        return np.full(shape, 255), int(fx.SignMode.EXCITATORY)
    if style == "excitatory":
        return rng.integers(0, 256, shape), 0
    if style == "inhibitory":
        return rng.integers(-256, 1, shape), 0  # -256 is clipped to -255
    if style == "extreme":
        return rng.choice([-256, -255, -1, 0, 1, 254, 255], shape), 0
    if style == "odd":
        return 2 * rng.integers(-128, 128, shape) + 1, 0  # mixed: every LSB is dropped
    if style == "contradicting":  # Lava zeroes the weights of the other sign
        return rng.integers(-256, 256, shape), int(rng.choice([fx.SignMode.EXCITATORY, fx.SignMode.INHIBITORY]))
    w = rng.integers(-256, 256, shape)
    return w, int(rng.choice([0, fx.infer_sign_mode(w)]))


def _neuron(n: int, spec: NetSpec, rng, reset, weight_exp: int) -> irm.LIF:
    du = spec.du if spec.du is not None else int(rng.integers(0, 4096))
    dv = spec.dv if spec.dv is not None else int(rng.integers(0, 4096))
    vth = int(min(fx.VTH_RANGE[1], np.exp(rng.uniform(0.0, np.log(5000.0))) * 2.0 ** max(weight_exp, -2)))
    biased = rng.random() < 0.5
    bias_mant = rng.integers(-300, 301, n) * biased
    bias_exp = rng.integers(0, 8, n)
    started = rng.random() < 0.5
    u0, v0 = (rng.integers(-(1 << 20), 1 << 20, (2, n)) * started)
    fixed = irm.LIFFixed(du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp, u=u0, v=v0)
    kw = dict(du=(du + 1) / fx.DECAY_UNITY, dv=dv / fx.DECAY_UNITY, vth=fx.effective_threshold(float(vth)),
              bias=fx.effective_bias(bias_mant.astype(np.float64), bias_exp), fixed=fixed)
    if reset is None:
        return irm.LIF(n, **kw)
    return irm.LIFReset(n, reset_interval=reset[0], reset_offset=reset[1], **kw)


def _inputs(spec: NetSpec, rng) -> np.ndarray:
    """Binary spikes (sometimes as values like 5 or -1, each one spike) or graded integers."""
    shape = (spec.batch, spec.steps, spec.n_in)
    density = max(spec.density, 0.8) if spec.flood else spec.density
    active = rng.random(shape) < density
    if spec.graded:
        scale = int(rng.choice([300, 300, 1 << 15]))
        return active * rng.integers(-scale, scale + 1, shape)
    if rng.random() < 0.3:
        return active * rng.choice([1, 1, 5, -1, 2], shape)
    return active
