"""netx's integer rules (lava-dl 0.6.0 ``netx/hdf5.py``, ``netx/utils.py``, ``netx/blocks``),
mirrored so spikeport reads and writes ``.net`` files without lava-dl.

Units: file weights are integers (netx truncates them toward zero, ``astype(int)``);
a synapse's current is ``floor(sum(W_lava * s) * 2**weight_exp)`` per step (Lava's
sum-then-shift) with ``W_lava`` the weights Lava keeps after its clip and truncation;
neuron state is on Lava's ``<< 6`` scale; delays are whole steps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models import fixed_point as fx

MAX_DELAY = 62  # netx clamps delays to 62 and builds DelayDense(max_delay=62) (lava-dl issues 214, 226)
BIAS_EXP = 6  # netx hands every bias to Lava as bias_mant with bias_exp 6
INPUT_WEIGHT, INPUT_BIAS = 64, 0  # an input layer's defaults (`Network.create_input`)
# a dense layer without `neuron` gets this one (`Network.create_dense`): 1 << 18 - 1 is 1 << 17
DEFAULT_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17, "refDelay": 1,
                  "gradedSpike": False}
NEURON_TYPES = ("CUBA", "LOIHI")  # netx maps both onto Lava's LIF
SIGN_NAMES = {1: "MIXED", 2: "EXCITATORY", 3: "INHIBITORY"}


@dataclass
class Optimized:
    """What ``netx.utils.optimize_weight_bits`` hands Lava for one matrix, and what it changed."""

    weights: np.ndarray  # int64, after netx's clip and left shift
    num_weight_bits: int
    weight_exp: int
    sign_mode: int  # netx's own (computed, never passed to Lava)
    notes: list = field(default_factory=list)


def optimize_weight_bits(weight: np.ndarray) -> Optimized:
    """``netx.utils.optimize_weight_bits`` step for step (integer ``weight``, any shape).

    Mixed-sign weights above 254 or below -256 are clipped to [-256, 254]; a
    one-signed matrix whose magnitude exceeds 255 (256 if inhibitory) gets a
    negative shift, which numpy's ``left_shift`` turns into all zeros (lava-dl
    issue 170). Each such change is named in ``notes``.
    """
    w = np.asarray(weight, dtype=np.int64)
    notes = []
    hi, lo = int(w.max()), int(w.min())
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):
        notes.append(f"mixed-sign weights [{lo}, {hi}] clipped to [-256, 254] (lava-dl issue 170)")
        w = np.clip(w, -256, 254)
        hi, lo = int(w.max()), int(w.min())
    if hi < 0:
        sign, signed, scale = 3, 0, -256 / lo
    elif lo >= 0:
        sign, signed, scale = 2, 0, (255 / hi if hi else np.inf)
    else:
        sign, signed, scale = 1, 1, min(127 / hi, -128 / lo)
    if not np.isfinite(scale):
        raise ValueError("all weights are zero (netx's optimize_weight_bits divides by the largest weight)")
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    with np.errstate(all="ignore"):
        shifted = np.left_shift(w.astype(np.int32), scale_bits).astype(np.int64)
    if scale_bits < 0:
        notes.append(f"largest weight {hi if sign != 3 else lo} needs a negative shift ({scale_bits}); "
                     f"numpy's left_shift makes the weights {_describe(shifted)} (lava-dl issue 170)")
    return Optimized(shifted, 8 - scale_bits - n, -scale_bits, sign, notes)


def _describe(w: np.ndarray) -> str:
    return "all zero" if not w.any() else f"[{w.min()}, {w.max()}]"


@dataclass
class LavaSynapse:
    """One synapse as Lava runs it: ``weights`` after Lava's clip and truncation (int64),
    its shared ``weight_exp`` and ``num_weight_bits``, and the sign mode Lava infers."""

    weights: np.ndarray
    weight_exp: int
    num_weight_bits: int
    sign_mode: int


def lava_synapses(matrices: list) -> tuple[list, Optimized]:
    """netx's treatment of a layer's file matrices (one, or ``weight`` and ``weight_rec``
    optimised together as one matrix): the `LavaSynapse` of each, and the `Optimized` record.

    Lava's Dense re-derives each matrix's sign mode (netx's is not passed), clips it to
    8 bits and truncates ``8 - num_weight_bits (+1 if mixed)`` low bits. (netx's delayed
    recurrent block, which drops ``weight_exp``, is refused by the reader.)
    """
    opt = optimize_weight_bits(np.hstack([np.asarray(m, np.int64) for m in matrices]))
    exp = opt.weight_exp
    out, lo = [], 0
    for m in matrices:
        part = opt.weights[:, lo:lo + m.shape[1]]
        lo += m.shape[1]
        mode = fx.infer_sign_mode(part)
        out.append(LavaSynapse(lava_kept(part, opt.num_weight_bits, mode), exp, opt.num_weight_bits, int(mode)))
    return out, opt


def lava_kept(w: np.ndarray, num_weight_bits: int, mode) -> np.ndarray:
    """The weights Lava's fixed_pt Dense keeps (``clip_weights`` then ``truncate_weights``),
    int64; a negative truncation count shifts everything out (numpy), as Lava does."""
    if fx.dropped_lsbs(num_weight_bits, mode) < 0:
        return np.zeros(np.shape(w), np.int64)
    return fx.lava_weights(np.asarray(w, np.float64), num_weight_bits, mode).astype(np.int64)


def currents_per_spike(syn: LavaSynapse) -> np.ndarray:
    """Each synapse's exact contribution to the current when every contribution is
    shifted exactly (``W * 2**exp``), as float64; integral iff no shift loses a bit."""
    return syn.weights * 2.0 ** syn.weight_exp


def neuron_integers(cfg: dict) -> dict:
    """Lava LIF integers for a netx CUBA neuron group: ``du = iDecay - 1``, ``dv = vDecay``,
    ``vth = vThMant``; bias_exp is 6; no refractory period; initial u = v = 0."""
    return dict(du=int(cfg["iDecay"]) - 1, dv=int(cfg["vDecay"]), vth=int(cfg["vThMant"]))
