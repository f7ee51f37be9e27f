"""Lava's Loihi integer arithmetic, written once.

Every engine in spikeport (the torch simulator's fixed mode, the quantizer,
the numpy emulator) executes the fixed-point semantics through these small
pure functions, so there is exactly one definition of each rule in
``docs/fixed-point.md`` (which cites the Lava source each rule mirrors):

* decays round toward zero, current factor ``4095 - du`` (the ``du+1`` offset),
  voltage factor ``4096 - dv``, both over 4096;
* synaptic input enters ``u`` as ``a_in << 6`` in int32 (wraps mod 2**32);
* ``u`` gets a *single* conditional +-2**24 correction into (-2**23, 2**23];
* ``v`` saturates at +-(2**23 - 1); spikes when ``v > vth << 6``; reset ``v = 0``;
* weights: truncate, infer sign mode on the whole matrix, clip to 8 bits,
  drop ``8 - num_weight_bits + mixed`` LSBs; ``weight_exp`` shifts the summed
  activation (flooring for negative exponents), int32 wrap.

Values are float64 arrays (numpy) or float64 tensors (torch) that hold exact
integers: every product here stays far below 2**53, so float64 is exact and
matrix products can use BLAS. For torch tensors the rounding functions pass
gradients straight through (STE), which is what quantization-aware training
needs; numpy callers never see a difference.

Time convention (every engine): steps t = 1..T; a synaptic hop adds one step.

Why one module of ~470 lines: the design asks for Lava's integer arithmetic to
be written exactly once, in one place every engine imports; splitting it by
rule would spread one definition over several files. (`lava_weights` also
takes integer numpy arrays, in their own dtype: the emulator's large layers.)
"""
from __future__ import annotations

import enum
import math
import sys
from typing import NamedTuple

import numpy as np

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096
ACT_SHIFT = 6  # a_in << 6
VTH_SHIFT = 6  # vth << 6
U_MAX = 1 << 23  # u in (-2**23, 2**23]
V_SAT = (1 << 23) - 1  # v saturates at +-V_SAT
WEIGHT_BITS = 8
MAX_DELAY = 63  # Loihi 2: 6-bit synaptic delays
DU_RANGE = (-1, 4095)  # du = -1 means "no current decay" (lava-dl netx convention)
DV_RANGE = (0, 4095)
VTH_RANGE = (0, (1 << 17) - 1)  # 17-bit threshold mantissa
BIAS_MANT_RANGE = (-(1 << 12), (1 << 12) - 1)  # 13-bit signed mantissa
BIAS_EXP_RANGE = (0, 7)  # 3-bit exponent
WEIGHT_EXP_RANGE = (-8, 7)
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class SignMode(enum.IntEnum):
    """Lava's ``lava.utils.weightutils.SignMode`` values."""

    NULL = 0
    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


# ---------------------------------------------------------------- array helpers
def _is_torch(x) -> bool:
    if type(x) is np.ndarray:  # the emulator's hot loop asks this a few hundred times per run
        return False
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _ste(x, rounded):
    """``rounded`` in the forward pass, identity gradient in the backward pass."""
    if _is_torch(x) and x.requires_grad:
        return x + (rounded - x).detach()
    return rounded


def trunc(x):
    """Round toward zero (exact for float64 integers), straight-through for torch.

    torch: ``copysign(floor(|x|), x)``, because ``torch.trunc`` on float64 is
    slow and degrades badly under multi-threading on this CPU build.
    """
    if _is_torch(x):
        import torch

        return _ste(x, torch.copysign(x.detach().abs().floor_(), x.detach()))
    return np.trunc(x)


def floor(x):
    """Round toward -inf, straight-through for torch."""
    return _ste(x, x.floor() if _is_torch(x) else np.floor(x))


def round_half_away(x):
    """Round to nearest, ties away from zero (the quantizer's rounding)."""
    return trunc(x + 0.5 * (x.sign() if _is_torch(x) else np.sign(x)))


def _where(cond, a, b):
    if _is_torch(cond):
        import torch

        return torch.where(cond, a, b)
    return np.where(cond, a, b)


def _clip(x, lo, hi):
    if _is_torch(x):
        return x.clamp(lo, hi)
    x = np.asarray(x)
    if x.size and lo <= x.min() and x.max() <= hi:  # nothing to clip: two reductions beat numpy's clip
        return x
    return np.core.umath.clip(x, lo, hi)


def wrap_int32(x):
    """Two's-complement wrap into int32, as a numpy int32 shift or cast does."""
    if _fits(x, INT32_MIN, INT32_MAX):  # the usual case: nothing to wrap
        return x
    wrapped = (x - INT32_MIN) % (1 << 32) + INT32_MIN
    return x + (wrapped - x).detach() if _is_torch(x) and x.requires_grad else wrapped


# ---------------------------------------------------------------- neuron rules
def current_factor(du):
    """Integer current-decay numerator: ``4095 - du`` (Lava adds 1 to du)."""
    return DECAY_UNITY - (du + 1)


def voltage_factor(dv):
    """Integer voltage-decay numerator: ``4096 - dv``."""
    return DECAY_UNITY - dv


def decay(x, factor, out=None):
    """``rtz(x * factor / 4096)``: Lava's decay, rounding toward zero in magnitude.

    Computed as one product with ``factor / 4096``: both factors and the result
    are exactly representable in float64 (|x| < 2**30, factor < 2**13), so the
    product is exact and equals ``x * factor / 4096``. ``out``: an array, or a
    tensor when ``x`` has no gradient, to hold the result (may be ``x`` itself).
    """
    if _is_torch(x):
        if x.requires_grad:
            return trunc(x * (factor / DECAY_UNITY))  # straight-through; ``out`` is filled by the caller
        import torch

        if out is not None:  # the hot loop: two in-place kernels, no allocation
            return torch.mul(x, factor, out=out).div_(DECAY_UNITY, rounding_mode="trunc")
        return torch.div(x * factor, DECAY_UNITY, rounding_mode="trunc")
    product = np.multiply(x, factor / DECAY_UNITY, out=out)
    return np.trunc(product, out=product)


def _accumulate(fresh, *terms):
    """``fresh + terms...``, added in place into ``fresh`` (a temporary this module made, or
    the caller's ``out``) unless it carries a gradient."""
    if _is_torch(fresh):
        if fresh.requires_grad:
            return sum(terms, fresh)
        for term in terms:
            fresh.add_(term)
        return fresh
    for term in terms:
        np.add(fresh, term, out=fresh)
    return fresh


def scaled_input(a_in, out=None, *, may_wrap: bool = True):
    """``a_in << 6`` computed in int32, so it wraps exactly as Lava's does.

    ``out``: a numpy array to hold the product (may be ``a_in`` itself);
    ``may_wrap=False`` when the caller has proven ``|a_in << 6| <= 2**31 - 1``.
    """
    scaled = a_in * (1 << ACT_SHIFT) if out is None else np.multiply(a_in, float(1 << ACT_SHIFT), out=out)
    return wrap_int32(scaled) if may_wrap else scaled


def max_abs(x) -> float:
    """``max |x|`` as a Python float (0 for an empty array), in passes that make no
    temporary the size of ``x`` (torch: ``aminmax``; numpy: max and min), which
    matters on the (B, T, N) trains and on the emulator's blocks."""
    if _is_torch(x):
        x = x.detach()
        if x.numel() == 0:
            return 0.0
        if not (x.is_floating_point() or x.is_signed()):  # bool, uint8: no negatives
            return float(x.max())
        lo, hi = x.aminmax()
        return max(-float(lo), float(hi))
    x = np.asarray(x)
    if not x.size:
        return 0.0
    if x.dtype.kind in "bu":
        return float(x.max())
    return max(float(x.max()), -float(x.min()))


def _fits(x, lo, hi) -> bool:
    """Whether every element of ``x`` lies in [lo, hi] (checked as ``max|x| <= min(-lo, hi)``:
    one reduction; a False only means the exact wrap must be computed)."""
    return max_abs(x) <= min(-lo, hi)


def wrap_u(x):
    """Lava's single conditional +-2**24 correction of u (not a modulo)."""
    if _fits(x, -U_MAX + 1, U_MAX):
        return x
    span = float(1 << 24)
    return _where(x > U_MAX, x - span, _where(x <= -U_MAX, x + span, x))


def saturate_v(x):
    """Saturate v symmetrically at +-(2**23 - 1)."""
    return _clip(x, -V_SAT, V_SAT)


def effective_bias(bias_mant, bias_exp):
    """``bias_mant << bias_exp`` (or ``>>`` flooring for a negative exponent).

    The bias enters v on the 2**0 scale: it is *not* shifted by 6.
    """
    return floor(bias_mant * 2.0 ** np.asarray(bias_exp, dtype=np.float64))


def effective_threshold(vth):
    """``vth << 6``: the value v must strictly exceed to spike."""
    return vth * float(1 << VTH_SHIFT)


def lif_fixed_subthreshold(u, v, a_in, du, dv, bias, out=None):
    """One fixed-point step before the spike test: returns the new (u, v).

    ``bias`` is the effective bias (see `effective_bias`); v is pre-reset.
    Both sums are int32 in Lava and wrap before the 24-bit correction of u
    and the saturation of v; this matters once |u| exceeds 2**24 (inputs
    whose ``a_in << 6`` reaches 2**31). ``out``: see `lif_fixed_update`.
    """
    return lif_fixed_update(u, v, scaled_input(a_in), current_factor(du), voltage_factor(dv), bias, out=out)


class Wraps(NamedTuple):
    """Which of Lava's overflow rules a stretch of LIF steps can need (`lif_scan_wraps`)."""

    int32: bool  # the int32 wrap of the current sum and of the voltage sum
    u: bool  # the single +-2**24 correction of u
    saturate: bool  # the saturation of v at +-(2**23 - 1)


ALL_WRAPS = Wraps(int32=True, u=True, saturate=True)


def lif_fixed_update(u, v, a_scaled, cur_factor, volt_factor, bias, *, wraps: Wraps = ALL_WRAPS, out=None):
    """`lif_fixed_subthreshold` from the already scaled input ``a_in << 6`` and the
    integer decay numerators (``current_factor(du)``, ``voltage_factor(dv)``).

    ``wraps`` (from `lif_scan_wraps`, which proves it from bounds) names the
    overflow rules to apply (each is still checked first); skipping one that
    cannot fire changes nothing. ``out``: arrays or tensors (no gradient)
    ``(u_out, v_out)`` that receive the new state (they may be ``u`` and ``v``).
    """
    u_out, v_out = (None, None) if out is None else out
    x = _accumulate(decay(u, cur_factor, out=u_out), a_scaled)
    if wraps.int32:
        x = wrap_int32(x)
    u = _into(wrap_u(x) if wraps.u else x, u_out)
    y = _accumulate(decay(v, volt_factor, out=v_out), u, bias)
    if wraps.int32:
        y = wrap_int32(y)
    return u, _into(saturate_v(y) if wraps.saturate else y, v_out)


def _into(x, out):
    """``x``, copied into ``out`` when one is given and ``x`` is a different array (or tensor)."""
    if out is None or x is out:
        return x
    if _is_torch(out):
        out.copy_(x)
    else:
        np.copyto(out, x)
    return out


def lif_scan_wraps(max_abs_u0: float, max_abs_v0: float, max_abs_scaled_input: float,
                   max_abs_bias: float, cur_factor: float, volt_factor: float, steps: int) -> Wraps:
    """Which rules of `lif_fixed_update` a scan of ``steps`` steps can need, given bounds
    on the initial state, on ``|a_in << 6|`` over all steps (A), on the effective bias
    and the decay numerators (every rule, for a decay factor beyond +-4096, which
    grows states).

    Decays only shrink magnitudes (``f = |factor| / 4096 <= 1``) and a reset sets
    v to 0, so from ``|x_t| <= f |x_{t-1}| + c``: ``|x_t| <= |x_0| + c * min(t, 1 / (1 - f))``.

    * u without corrections: ``|u_t| <= |u0| + A * reach(f_u)``; below 2**23 no
      correction fires. Otherwise, with ``|u0| <= 2**23`` and ``A <= 2**24``, the
      current sum stays within ``3 * 2**23`` and the single correction brings it
      back to ``|u| <= 2**23``: neither int32 sum wraps.
    * v: with U bounding |u|, ``|v_t| <= |v0| + (U + |bias|) * reach(f_v)``; if that
      is at most 2**23 - 1, v never saturates. Either way the voltage sum stays within
      ``max(|v0|, 2**23 - 1) + U + |bias|``, which must fit int32.
    """
    if abs(cur_factor) > DECAY_UNITY or abs(volt_factor) > DECAY_UNITY:
        return ALL_WRAPS
    u_free = max_abs_u0 + max_abs_scaled_input * _reach(cur_factor, steps)
    u_correct = u_free >= U_MAX
    if u_correct and (max_abs_u0 > U_MAX or max_abs_scaled_input > 2 * U_MAX):
        return ALL_WRAPS
    u_bound = U_MAX if u_correct else u_free
    if max(max_abs_v0, V_SAT) + u_bound + max_abs_bias > INT32_MAX:
        return ALL_WRAPS
    v_free = max_abs_v0 + (u_bound + max_abs_bias) * _reach(volt_factor, steps)
    return Wraps(int32=False, u=u_correct, saturate=v_free > V_SAT)


def _reach(factor: float, steps: int) -> float:
    """``min(steps, 1 / (1 - f))``, f = |factor| / 4096: how many inputs a decaying sum can pile up."""
    f = abs(factor) / DECAY_UNITY
    return steps if f == 1 else min(steps, 1.0 / (1.0 - f))


def lif_float_subthreshold(u, v, a_in, du, dv, bias, out=None):
    """One ``floating_pt`` step before the spike test (bias_exp ignored, no shifts).

    ``out``: numpy arrays ``(u_out, v_out)`` that receive the new state.
    """
    if out is None:
        u = u * (1 - du) + a_in
        v = v * (1 - dv) + u + bias
        return u, v
    u = _accumulate(np.multiply(u, 1 - du, out=out[0]), a_in)
    return u, _accumulate(np.multiply(v, 1 - dv, out=out[1]), u, bias)


def reset_interval_hits(step: int, interval: int, offset: int) -> bool:
    """LIFReset: whether u, v are zeroed at the start of 1-based ``step``."""
    return step % interval == offset % interval


# --------------------------------------------------------------- synapse rules
def infer_sign_mode(weights) -> SignMode:
    """Lava's sign-mode inference over the *whole* matrix (zeros included)."""
    w = np.asarray(weights)
    if w.dtype.kind not in "iu":  # integers are their own truncation
        w = np.trunc(w.astype(np.float64))
    if w.size == 0 or w.min() >= 0:
        return SignMode.EXCITATORY
    if w.max() <= 0:
        return SignMode.INHIBITORY
    return SignMode.MIXED


def weight_clip_range(sign_mode: SignMode) -> tuple[int, int]:
    """8-bit weight clip range for a sign mode."""
    if sign_mode == SignMode.MIXED:
        return -256, 255
    if sign_mode == SignMode.INHIBITORY:
        return -255, 0
    return 0, 255


def dropped_lsbs(num_weight_bits: int, sign_mode: SignMode) -> int:
    """How many LSBs Lava floors away: ``8 - num_weight_bits + (1 if MIXED)``."""
    return WEIGHT_BITS - num_weight_bits + (1 if sign_mode == SignMode.MIXED else 0)


def lava_weights(weights, num_weight_bits: int = 8, sign_mode: SignMode | None = None):
    """The weights Lava's fixed-point Dense actually uses (done once at step 1).

    Truncates toward zero, infers the sign mode unless given, clips to 8 bits and
    floors away the dropped LSBs (on the magnitude for INHIBITORY).
    Works on float64 numpy arrays or torch tensors (straight-through), and on
    integer numpy arrays in their own dtype (`_lava_weights_int`).
    """
    if isinstance(weights, np.ndarray) and weights.dtype.kind in "iu":
        return _lava_weights_int(weights, num_weight_bits, sign_mode)
    w = trunc(weights)
    mode = SignMode(sign_mode) if sign_mode is not None else infer_sign_mode(
        w.detach().cpu().numpy() if _is_torch(w) else w)
    lo, hi = weight_clip_range(mode)
    w = _clip(w, lo, hi)
    step = float(1 << dropped_lsbs(num_weight_bits, mode))
    if mode == SignMode.INHIBITORY:
        return -floor(-w / step) * step
    return floor(w / step) * step


def _lava_weights_int(w: np.ndarray, num_weight_bits: int, sign_mode) -> np.ndarray:
    """`lava_weights` of an integer array by integer clip and shifts, in its dtype: the same
    integers without the float passes (the emulator's 10-million-weight layers). An
    arithmetic right shift floors, as ``floor(w / 2**s)`` does."""
    mode = SignMode(sign_mode) if sign_mode is not None else infer_sign_mode(w)
    w = _clip(w, *weight_clip_range(mode))
    lsbs = dropped_lsbs(num_weight_bits, mode)
    if not lsbs:
        return w
    if mode == SignMode.INHIBITORY:
        return -((-w >> lsbs) << lsbs)
    return (w >> lsbs) << lsbs


def shift_by_weight_exp(acc, weight_exp: int, *, out=None, may_wrap: bool = True):
    """``acc << weight_exp`` or ``acc >> -weight_exp`` (flooring) in int32.

    ``acc`` holds exact integers, so a left shift needs no rounding. ``out``: a
    float64 numpy array to hold the result; ``may_wrap=False`` when the caller
    has proven ``|result| <= 2**31 - 1`` (the int32 wrap is then skipped).
    """
    if out is not None:
        shifted = np.multiply(acc, 2.0 ** weight_exp, out=out)
        if weight_exp < 0:
            np.floor(shifted, out=shifted)
    elif weight_exp >= 0:
        shifted = acc * float(1 << weight_exp) if weight_exp else acc
    else:
        shifted = floor(acc * 2.0 ** weight_exp)
    return _into(wrap_int32(shifted), out) if may_wrap else shifted


def exact_matmul_bound(max_abs_weight: float, fan_in: int, max_abs_input: float) -> bool:
    """True when a float64 dot product of integers is exact (all partial sums < 2**53)."""
    return max_abs_weight * fan_in * max_abs_input < 2.0 ** 53


# ----------------------------------------------- float -> fixed parametrisation
def du_from_float(du_float: float) -> int:
    """Integer du for a float current decay: factor (4095-du)/4096 ~ 1-du_float.

    ``du_float = 0`` (no decay) gives ``du = -1``, Lava's "no current decay".
    """
    return int(round_half_away(np.float64(du_float) * DECAY_UNITY)) - 1


def dv_from_float(dv_float: float) -> int:
    """Integer dv for a float voltage decay: factor (4096-dv)/4096 ~ 1-dv_float."""
    return int(round_half_away(np.float64(dv_float) * DECAY_UNITY))


def split_bias(bias_scaled, exp_range=BIAS_EXP_RANGE, mant_range=BIAS_MANT_RANGE):
    """Write integer-scale biases as ``mant << exp`` with the smallest exponent that fits.

    Returns (mant, exp, error) per element, error = represented - wanted.
    A value too big even at the largest exponent keeps a ``mant`` outside
    ``mant_range``: the caller must report it (nothing is clipped here).
    """
    b = np.asarray(bias_scaled, dtype=np.float64)
    lowest = round_half_away(b / 2.0 ** exp_range[0])
    if not b.size or (mant_range[0] <= lowest.min() and lowest.max() <= mant_range[1]):
        # the usual case, all fit the smallest exponent (the loop below would end with these)
        return lowest, np.full(b.shape, exp_range[0], dtype=np.int64), lowest * 2.0 ** exp_range[0] - b
    top = exp_range[1]
    mant = round_half_away(b / 2.0 ** top)
    exp = np.full(b.shape, top, dtype=np.int64)
    for e in range(top - 1, exp_range[0] - 1, -1):
        m = round_half_away(b / 2.0 ** e)
        fits = (m >= mant_range[0]) & (m <= mant_range[1])
        mant = np.where(fits, m, mant)
        exp = np.where(fits, e, exp)
    return mant, exp, mant * 2.0 ** exp - b


def choose_weight_exp(max_abs_scaled_weight: float, limit: int = 254) -> int:
    """Smallest weight_exp so that ``max|W| / 2**e`` fits in ``limit``."""
    if max_abs_scaled_weight <= 0:
        return 0
    return max(WEIGHT_EXP_RANGE[0], math.ceil(math.log2(max_abs_scaled_weight / limit)))
