"""Discretisation of a trained TTFS network to a spikeport IR of Lava CUBA LIF neurons (dv = 0).

Times are in units of tau_syn; a deployed step is ``dt`` (units of tau_syn) and
step index ``i`` (0-based, Lava step ``i + 1``) stands for continuous time ``i * dt``.
"""
from __future__ import annotations

import math

import numpy as np

from models import fixed_params as fp
from models.errors import SpikeportError
from models.ttfs_layer import TTFSNetwork
from toolchain import engines
from toolchain import ir as irm
from toolchain.tasks import encoders

#
# Discretisation (derivation). Lava's CUBA LIF with dv = 0 and no bias is, per step,
#     u[i] = (1 - du) u[i-1] + a[i],      v[i] = v[i-1] + u[i],     spike if v[i] > vth.
# Take du = 1 - q, q = exp(-dt / tau_syn), and give the Dense the continuous weights w.
# One input spike of weight w whose synaptic input arrives at step index n gives
#     u[i] = w q^(i-n),    v[i] = w (1 - q^(i-n+1)) / (1 - q)          (i >= n),
# while the continuous membrane is V(t) = w (1 - exp(-(t - t_in)/tau_syn)). The input
# sent at index k (time k dt) arrives one hop later, at n = k + 1, so
#     v[i] = V(i dt) / du       exactly, for every i (the hop delay is exactly the
#                               "end of step" of the sampled integral),
# and by linearity for any set of inputs on the grid. So the discrete membrane is the
# continuous one sampled at t = i dt and multiplied by 1/du = 1/(1 - exp(-dt/tau)) =
# tau/dt + 1/2 + dt/(12 tau) + ... (not exactly tau/dt); with vth = theta / du the discrete
# neuron spikes at the first index i with V(i dt) > theta, i.e. index ceil(t_spike / dt)
# (+1 when t_spike / dt is an integer). Every layer uses the same clock: index i of any
# population means time i dt, because each hop delay cancels this way. The errors are
# therefore (a) input times rounded to the grid (|error| <= dt/2), (b) each layer's
# spike postponed to the next grid point (0..1 step, mean ~1/2) and propagated, and
# (c) Lava's integer du: the decay actually used is du_eff = (du_int + 1)/4096, i.e.
# tau_eff = -dt / ln(1 - du_eff); the float IR uses du_eff too (float == fixed decay).
#
# Re-firing: Lava resets v to 0 but keeps u, and with dv = 0 nothing stops v from
# climbing again, so a discrete neuron can spike several times where the continuous one
# spikes once; every extra hidden spike adds its weight to the next layer again (on the
# digits net this costs ~5 pp; see `deploy_ttfs(refire="allow")`).
#
# Fix (refire="inhibit", Lava-expressible, no new neuron model): cancel the neuron's
# current from the step after its spike on, for ever. Each hidden population i gets
#   * layers.i.inhibit  Sparse diag(-H) from the population onto itself;
#   * layers.i.latch    a LIF population with no current decay (du = 0, fixed du = -1),
#                       dv = 0, vth = 1/2, fed by layers.i.to_latch (Sparse, identity):
#                       one input spike sets its u = 1 for good, so it spikes every step
#                       from the next step on;
#   * layers.i.latch_inhibit  Sparse diag(-H du) from the latch onto the population.
# A spike at step n then adds to the population's u the inhibitory current
#     H q^k (self, decaying) + H du (1 + q + ... + q^(k-1)) (latch, arriving from n+2)
#     = H q^k + H (1 - q^k) = H       at step n+1+k, for every k >= 0,
# i.e. exactly -H from step n+1 on. With H >= the largest excitatory current the neuron
# ever receives, u <= 0 after its spike, so v (restarting from 0) never rises again and
# the neuron spikes exactly once, as in continuous time. Because u <= 0, nothing v does
# after the spike matters: it may fall to Lava's saturation at -(2**23 - 1) harmlessly,
# and the quantizer need not cover it. inhibit="bound" takes H = sum_i max(W_ji, 0)
# (a proof for any input); inhibit="data" takes H = margin x the largest excitatory
# current seen on calibration data (smaller H, so a finer fixed-point scale; re-spikes
# on other data are counted by `deploy_ttfs`). Output neurons need nothing: only their
# first spike is read.

INPUT, OUTPUT = "input", "output"


def ttfs_clock(dt: float) -> dict:
    """Decay and threshold scale for step ``dt`` (units of tau_syn), with Lava's integer du."""
    du_float = 1.0 - math.exp(-dt)
    du_int, _ = fp.decays_to_fixed(du_float, 0.0)
    du_eff, _ = fp.decays_from_fixed(du_int, 0)
    return dict(dt=float(dt), du_float=du_float, du=du_eff, du_int=int(du_int),
                tau_eff=-dt / math.log(1.0 - du_eff), v_scale=1.0 / du_eff)


def layer_nodes(ir) -> list:
    """The TTFS layers' neuron populations (``layers.0``, ``layers.1``, ...), without latches."""
    return [f"layers.{i}" for i in range(len(ir.meta["ttfs"]["config"]["sizes"]))]


def lower_ttfs(model: TTFSNetwork, dt: float, *, refire: str = "inhibit", inhibit: str = "bound",
               x_cal=None, inhibit_margin: float = 1.25, t_end: float | None = None, name: str = "ttfs"):
    """A TTFS network as a spikeport IR of Lava CUBA LIF (dv = 0) at step ``dt`` (units of tau_syn).

    ``input -> layers.0.dense -> layers.0 -> layers.1.dense -> layers.1 -> output``; with
    ``refire="inhibit"`` each hidden population also gets the self-inhibition and latch
    described above (``layers.i.inhibit``, ``layers.i.to_latch``, ``layers.i.latch``,
    ``layers.i.latch_inhibit``) so it spikes once; ``refire="allow"`` leaves Lava's reset
    alone. ``inhibit``: how H is chosen, ``"bound"`` (sum of positive input weights, any
    input) or ``"data"`` (``inhibit_margin`` x the largest excitatory current on ``x_cal``).
    ``t_end``: the last time (units of tau_syn) the run must cover (default
    ``t_max_in + 3``); the step count is ``meta["ttfs"]["steps"]``.
    """
    if refire not in ("inhibit", "allow"):
        raise SpikeportError(f"ttfs: refire={refire!r} is not 'inhibit' or 'allow'")
    if inhibit not in ("bound", "data"):
        raise SpikeportError(f"ttfs: inhibit={inhibit!r} is not 'bound' or 'data'")
    if refire == "inhibit" and inhibit == "data" and x_cal is None:
        raise SpikeportError("ttfs: inhibit='data' needs calibration inputs x_cal")
    if not dt > 0:
        raise SpikeportError(f"ttfs: dt={dt} must be > 0 (units of tau_syn)")
    clock = ttfs_clock(dt)
    t_end = float(t_end if t_end is not None else model.t_max_in + 3.0)
    meta = dict(clock, theta=model.theta, t_max_in=model.t_max_in, t_end=t_end,
                steps=int(math.ceil(t_end / dt)) + 1, refire=refire,
                inhibit=inhibit if refire == "inhibit" else None, inhibit_margin=inhibit_margin,
                time_units="tau_syn", input_step="round(t_max_in * (1 - x) / dt)", config=model.config)
    weights = [w.detach().double().cpu().numpy() for w in model.weights]
    if refire == "allow":
        return build_ir(name, weights, meta, {})
    bound = {i: np.clip(w, 0, None).sum(1) for i, w in enumerate(weights[:-1])}
    if inhibit == "bound":
        return build_ir(name, weights, meta, bound)
    return build_ir(name, weights, meta, data_inhibition(name, weights, meta, bound, x_cal, inhibit_margin))


def data_inhibition(name: str, weights: list, meta: dict, bound: dict, x_cal, margin: float) -> dict:
    """H per hidden layer from calibration inputs ``x_cal``: ``margin`` x the peak current each
    neuron receives with its own inhibition off (layer by layer, the ones below already set),
    at least ``1e-3 theta`` and at most ``bound`` (the sum of its positive input weights)."""
    h = dict(bound)
    for i in range(len(weights) - 1):
        h[i] = None
        probe = build_ir(name, weights, meta, h)
        out = engines.run("float-emulator", probe, encode_input(np.asarray(x_cal), probe.meta), [f"layers.{i}/u"])
        peak = np.asarray(out[f"layers.{i}/u"]).max(axis=(0, 1))
        h[i] = np.minimum(bound[i], np.maximum(margin * peak, 1e-3 * meta["theta"]))
    return h


def build_ir(name: str, weights: list, meta: dict, inhibition: dict):
    """The IR of feed-forward ``weights`` [(n_out, n_in) per layer] at the clock in ``meta`` (its
    ``du``, ``theta`` and ``config``; stored as ``meta["ttfs"]``). Hidden layer ``i`` gets the
    self-inhibition and latch of strength ``inhibition[i]`` (H, (n,)); none where it is absent or None."""
    du, theta, last = meta["du"], meta["theta"], len(weights) - 1
    ir = irm.IR(name, meta={"ttfs": dict(meta)})
    src = ir.add(INPUT, irm.Input(meta["config"]["n_in"], source="input"))
    for i, w in enumerate(weights):
        path = f"layers.{i}"
        ir.add(f"{path}.dense", irm.Dense(w, source=path), [src])
        ir.add(path, irm.LIF(w.shape[0], du=du, dv=0.0, vth=theta / du, source=path), [f"{path}.dense"])
        if i < last and inhibition.get(i) is not None:
            _add_spike_once(ir, path, inhibition[i], du)
        src = path
    ir.add(OUTPUT, irm.Output(weights[-1].shape[0], source=f"layers.{last}"), [src])
    return ir


def _add_spike_once(ir, path: str, h: np.ndarray, du: float) -> None:
    """Self-inhibition ``-H`` and the latch that holds it from the step after the first spike on."""
    n = len(h)
    ir.add(f"{path}.inhibit", irm.Sparse(-np.diag(h), source=path), [path])
    ir.connect(f"{path}.inhibit", path)
    ir.add(f"{path}.to_latch", irm.Sparse(np.eye(n), source=path), [path])
    ir.add(f"{path}.latch", irm.LIF(n, du=0.0, dv=0.0, vth=0.5, source=path), [f"{path}.to_latch"])
    ir.add(f"{path}.latch_inhibit", irm.Sparse(-np.diag(h * du), source=path), [f"{path}.latch"])
    ir.connect(f"{path}.latch_inhibit", path)


def encode_input(x, meta: dict) -> np.ndarray:
    """Input spikes (B, steps, n_in), bool: pixel x at index ``round(t_max_in (1 - x) / dt)``."""
    m = meta["ttfs"] if "ttfs" in meta else meta
    return encoders.latency_encode(np.asarray(x), int(m["steps"]), t_min=0.0,
                                   t_max=m["t_max_in"] / m["dt"], threshold=-1.0)

