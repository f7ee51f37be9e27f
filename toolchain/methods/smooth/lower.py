"""A trained theta network as a time-stepped QIF network: discretisation, calibration, integers.

Continuous model: `models.theta_network.ThetaNetwork` (phase form, delta pulses). Deployed
model: the QIF op (`toolchain.ir.ops.qif`) in ``x = V - 1/2``, ``tau dx/dt = x**2 + c``
(c = I0 - 1/4), Euler step ``h = dt / tau = 2**-k``, input pulses as voltage jumps
(``du = 1, gain = 1``: u holds one step's input).

Time convention: step ``n`` of layer ``l`` (l = 1..L, one-based engine steps) stands for
continuous time ``(n - l - 1) dt``: every synapse hop adds one step, so each layer's clock
runs one step behind the layer below and a spike keeps its continuous time as it crosses
a hop. Inputs at time t are emitted at step ``round(t / dt) + 1``; layer l starts at time
``-(l + 1) dt`` from the phase ``phi0 - (l + 1) dt`` (free flow is a phase shift; a phase
below 0 starts at the reset). A trial of length T takes ``ceil(T / dt) + L + 1`` steps.

Thresholds (`calibrate_thresholds`): the finite ``x_th`` standing for +inf is chosen per
step so that a free neuron firing within the trial fires on average on time (Euler's under-growth of
x**2 makes spikes late, cutting at x_th makes them early); ``x_reset`` (for -inf) so the
free period after a spike is on average Theta.

Integers (`quantize_smooth`): ``X = x 2**frac`` with ``frac = 22 - ceil(log2 x_th)`` (one bit
of headroom in the 24-bit register), bias ``round(h c 2**frac)``, delta pulses
``(W_int 2**weight_exp) << 6 = w 2**frac``: weights on Lava's 8-bit grid at scale
``2**(frac - 6)`` (`models.fixed_params`), ``du = 4095``, ``u_shift = 0``.
"""
from __future__ import annotations

import math

import numpy as np

from models import fixed_params as fp
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.ir import passes


def step_of(k: int, tau: float) -> float:
    """The deployed step dt (time units) for h = 2**-k."""
    return tau * 2.0 ** -k


def steps_for(T: float, dt: float, layers: int) -> int:
    """Engine steps a trial of length T needs (module docstring)."""
    return int(math.ceil(T / dt - 1e-9)) + layers + 1


def x_of_phase(phi, tau: float, c: float) -> np.ndarray:
    """x = V - 1/2 at phase phi (``-inf`` at 0, ``+inf`` at Theta)."""
    root = math.sqrt(c)
    return root * np.tan(np.asarray(phi, np.float64) * root / tau - math.pi / 2)


def _free_steps(x0: np.ndarray, h: float, c: float, x_th: np.ndarray, limit: int) -> np.ndarray:
    """Euler steps until x >= x_th, for every start ``x0`` (rows) and threshold ``x_th`` (columns);
    ``limit`` where never."""
    x = np.repeat(np.asarray(x0, np.float64)[:, None], len(x_th), 1)
    steps = np.full(x.shape, limit)
    alive = np.ones(x.shape, bool)
    for n in range(1, limit + 1):
        x += h * (x * x + c)
        hit = alive & (x >= x_th)
        steps[hit] = n
        alive &= ~hit
        x[~alive] = 0.0  # keep finished entries finite
        if not alive.any():
            break
    return steps


def calibrate_thresholds(k: int, tau: float, c: float, T: float) -> tuple[float, float]:
    """(x_th, x_reset) for step h = 2**-k: the mean first-spike error of free neurons that fire
    within a trial of length T (start phases spread over (Theta - T, Theta - 2 dt)) is nulled
    (x_th), and the mean step count from reset to spike matches Theta / dt (x_reset). Both from a
    scan of candidates (module doc)."""
    h, dt, Theta = 2.0 ** -k, step_of(k, tau), tau * math.pi / math.sqrt(c)
    phases = np.linspace(max(Theta - T, 0.0), Theta - 2 * dt, 241)
    x0 = x_of_phase(phases, tau, c)
    limit = int(2 * Theta / dt) + 10
    candidates = np.geomspace(4.0, 2.0 ** (k + 1), 400)
    error = _free_steps(x0, h, c, candidates, limit) * dt - (Theta - phases)[:, None]
    x_th = float(candidates[int(np.argmin(np.abs(error.mean(0))))])
    resets = -np.geomspace(1.0, 2.0 ** (k + 1), 400)
    periods = _free_steps(resets, h, c, np.array([x_th]), limit)[:, 0] * dt
    x_reset = float(resets[int(np.argmin(np.abs(periods - Theta)))])
    return x_th, x_reset


def lower_smooth(net, k: int, x_th: float, x_reset: float) -> irm.IR:
    """The float QIF IR of a `ThetaNetwork` at step h = 2**-k (module docstring's convention)."""
    tau, c = net.neuron.tau, net.neuron.I0 - 0.25
    dt, h = step_of(k, tau), 2.0 ** -k
    ir = irm.IR("smooth")
    ir.add("input", irm.Input(net.sizes[0]))
    source = "input"
    for l, (w, phi0) in enumerate(zip(net.weights, net.phases), start=1):
        phase = np.clip(phi0.detach().double().numpy() - (l + 1) * dt, 0.0, None)
        x0 = np.clip(x_of_phase(phase, tau, c), x_reset, np.nextafter(x_th, -np.inf))
        ir.add(f"l{l}.dense", irm.Dense(w.detach().double().numpy()), [source])
        ir.add(f"l{l}", irm.QIF(len(phase), h=h, du=1.0, gain=1.0, x_th=x_th, x_reset=x_reset,
                                bias=np.full(len(phase), h * c), x=x0, source=f"layers.{l - 1}"), [f"l{l}.dense"])
        source = f"l{l}"
    ir.add("output", irm.Output(net.sizes[-1]), [source])
    layers = len(net.phases)
    ir.meta["smooth"] = dict(k=k, dt=dt, T=net.T, tau=tau, c=c, layers=layers,
                             steps=steps_for(net.T, dt, layers), x_th=x_th, x_reset=x_reset)
    passes.validate(ir)
    return ir


def quantize_smooth(ir: irm.IR) -> tuple[irm.IR, list]:
    """The IR with fixed records (module docstring); returns (IR, one report line per layer)."""
    meta = ir.meta["smooth"]
    frac = 22 - math.ceil(math.log2(meta["x_th"]))
    if frac < 0:
        raise SpikeportError(f"smooth: x_th={meta['x_th']:.4g} leaves no fractional bits in the 24-bit state")
    scale, lines = 2.0 ** frac, []
    for l in range(1, meta["layers"] + 1):
        op, syn = ir.op(f"l{l}"), ir.op(f"l{l}.dense")
        mode = fp.sign_mode_of(syn.weight)
        exp = fp.weight_exp_for(float(np.abs(syn.weight).max(initial=0.0)), scale / 64, mode)
        weights, _ = fp.quantize_weights(syn.weight, scale / 64, fp.SynapseScale(exp), mode)
        syn.fixed = irm.SynapseFixed(weights, weight_exp=exp, sign_mode=int(mode))
        x_th, x_reset = int(round(op.x_th * scale)), int(round(op.x_reset * scale))
        op.fixed = irm.QIFFixed(k=meta["k"], frac=frac, du=4095, u_shift=0, x_th=x_th, x_reset=x_reset,
                                bias=np.round(op.bias * scale), x=np.clip(np.round(op.x * scale), x_reset, x_th - 1),
                                u=np.zeros(op.n))
        lsb = 2.0 ** (exp + 6 - frac)
        lines.append(f"l{l}: frac={frac}, x_th={x_th} ({op.x_th:.4g}), x_reset={x_reset}, weight_exp={exp}, "
                     f"weight step {lsb:.3g} V, max |w| {np.abs(syn.weight).max():.3g} V")
    meta["frac"] = frac
    passes.validate(ir, require_fixed=True)
    return ir, lines
