"""Current-based LIF populations: Lava's equations as one fast torch scan.

Per step t = 1..T (float mode, Lava ``floating_pt``)::

    u[t] = u[t-1] * alpha + a[t]               alpha = 1 - du
    v[t] = v'[t-1] * beta + u[t] + bias        beta  = 1 - dv
    s[t] = v[t] > vth
    v'[t] = 0 where s[t] else v[t]             (u is not reset)

Fixed mode executes Lava ``fixed_pt`` bit for bit through `models.fixed_point`
(``alpha = (4095-du)/4096`` rounding toward zero, ``a << 6`` int32, the
single u wrap, v saturation, ``v > vth << 6``), on exact integers held in
float64 tensors.

``a[t]`` is the synaptic input that *arrives* at step t (the caller applies
the one-step synaptic latency). A recurrent weight adds ``W_rec s[t-1]``
(shifted by ``weight_exp`` in fixed mode) to ``a[t]``, the same one-step
latency as every synaptic hop.

The whole time loop runs inside one autograd Function with a hand-written
backward (SuperSpike surrogate, reset treated as a constant, integer
rounding straight-through), which keeps the per-step cost to a few fused
tensor ops instead of an autograd graph of T * dozens of nodes. Both forwards
write each step straight into the output buffers (float: 6 ops a step, the
same arithmetic in the same order as above, so results are bit-identical to
the plain loop; fixed: `fx.lif_fixed_update` with ``out=``); the backward precomputes every term that is not carried
through time, leaving 2 ops a step (first-order gradients only: the backward
is not itself differentiable). Where numba is installed, a float population
without recurrence runs its forward loop, and any population without
recurrence or threshold gradient its whole backward, as one compiled pass
(`models.lif_kernel`; forward bit-identical, gradients equal to float
rounding); ``COMPILED = False`` runs the torch loops, the reference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from models import fixed_point as fx


@dataclass
class LIFTrace:
    """What a population did: each (B, T, N). ``v`` is pre-reset; Lava records ``v_post``."""

    s: torch.Tensor
    v: torch.Tensor
    u: torch.Tensor

    @property
    def v_post(self) -> torch.Tensor:
        return self.v * (1 - self.s)


class _LIFScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, alpha, beta, bias, vth, w_rec, u0, v0, fixed, rec_exp, slope, fixed_kernel):
        B, T, N = a.shape
        # fixed mode: s and v are exact in any float dtype (0/1, |v| < 2**23); Lava's u spans int32
        s_all, v_all = torch.empty_like(a), torch.empty_like(a)
        u_all = torch.empty_like(a, dtype=torch.float64 if fixed else a.dtype)
        kernel = None if w_rec is not None or a.dtype not in _KERNEL_DTYPES else _kernel()
        if fixed and fixed_kernel:  # `_runs_the_kernel`, decided by `lif_scan`
            bias_i, u0_i, v0_i = (_np(x.expand(N)).astype(np.int32) for x in (bias, u0, v0))
            # v (an integer) > vth << 6 exactly when v > floor(vth << 6)
            theta = math.floor(fx.effective_threshold(float(vth)))
            kernel.forward_fixed(_np(a.contiguous()), np.int32(round(float(alpha) * fx.DECAY_UNITY)),
                                 np.int32(round(float(beta) * fx.DECAY_UNITY)), bias_i, theta, u0_i, v0_i,
                                 _np(s_all), _np(v_all), _np(u_all))
        elif fixed:
            _forward_fixed(a, alpha, beta, bias, vth, w_rec, u0, v0, rec_exp, s_all, v_all, u_all)
        elif kernel is not None:
            dtype = _numpy_scalar(a)
            kernel.forward(_np(a.contiguous()), dtype(alpha), dtype(beta), _np(bias.expand(N).contiguous()),
                           dtype(vth), _np(u0.expand(N).contiguous()), _np(v0.expand(N).contiguous()),
                           _np(s_all), _np(v_all), _np(u_all))
        else:
            _forward_float(a, alpha, beta, bias, vth, w_rec, u0, v0, s_all, v_all, u_all)
        ctx.save_for_backward(alpha, beta, vth, w_rec, u0, v0, s_all, v_all, u_all)
        ctx.fixed, ctx.rec_exp, ctx.slope = fixed, rec_exp, slope
        ctx.set_materialize_grads(False)  # unused outputs (usually v, u) cost no zero tensors
        return s_all, v_all, u_all

    @staticmethod
    def backward(ctx, g_s, g_v, g_u):
        alpha, beta, vth, w_rec, u0, v0, s_all, v_all, u_all = ctx.saved_tensors
        B, T, N = s_all.shape
        in_scale = float(1 << fx.ACT_SHIFT) if ctx.fixed else 1.0
        rec_scale = 2.0 ** ctx.rec_exp if ctx.fixed else 1.0
        theta = fx.effective_threshold(vth) if ctx.fixed else vth
        recurrent = w_rec is not None
        need_vth = ctx.needs_input_grad[4]
        kernel = None if recurrent or need_vth or s_all.dtype not in _KERNEL_DTYPES else _kernel()
        if kernel is not None:  # the kernel writes dL/da = in_scale dL/du itself
            gv_all, g_a = _fused_adjoints(kernel, ctx, g_s, g_v, g_u, s_all, v_all, theta, alpha, beta, in_scale)
            sg = g_spike = None
        else:
            gv_all, gu_all, sg, g_spike = _adjoints(ctx, g_s, g_v, g_u, alpha, beta, w_rec, s_all, v_all, theta,
                                                    in_scale * rec_scale)
            g_a = gu_all if in_scale == 1.0 else gu_all * in_scale
        grads = _parameter_grads(ctx, g_a, in_scale, gv_all, g_spike, sg, s_all, v_all, u_all,
                                 u0, v0, w_rec, rec_scale)
        return (g_a, *grads, None, None, None, None, None, None, None)


_KERNEL_DTYPES = (torch.float32, torch.float64)
COMPILED = True  # float, non-recurrent scans run `models.lif_kernel` when numba is installed (False: torch loops)


def _kernel():
    """`models.lif_kernel` when `COMPILED` and numba is installed, else None (the torch loops)."""
    if not COMPILED:
        return None
    try:
        from models import lif_kernel
    except ImportError:
        return None
    return lif_kernel


def _runs_the_kernel(a, w_rec, bias, u0, v0) -> bool:
    """Whether a fixed-mode scan of ``a`` runs `models.lif_kernel.forward_fixed`, which computes in
    integers whatever the dtype of ``a`` (s and v then come out in it, exactly: 0/1 and |v| < 2**23;
    u in float64); the torch loop's float rules need float64."""
    return (w_rec is None and a.dtype in _KERNEL_DTYPES and _kernel() is not None
            and _fits_the_kernel(a, bias, *(torch.zeros(()) if x is None else x for x in (u0, v0))))


def _fits_the_kernel(a, bias, u0, v0) -> bool:
    """Whether `models.lif_kernel.forward_fixed` takes these exact integers: the state and the
    bias within int32 (Lava's Vars), the input within int64."""
    return fx.max_abs(a) < 2.0 ** 62 and max(fx.max_abs(x) for x in (bias, u0, v0)) <= fx.INT32_MAX


def _np(x: torch.Tensor):
    """The numpy view of a CPU tensor (no copy, no gradient)."""
    return x.detach().numpy()


def _numpy_scalar(x: torch.Tensor):
    """The numpy scalar type of ``x``'s dtype (the kernels' scalars must match their arrays)."""
    return np.float32 if x.dtype == torch.float32 else np.float64


def _adjoints(ctx, g_s, g_v, g_u, alpha, beta, w_rec, s_all, v_all, theta, rec_gain):
    """The adjoints ``(dL/dv, dL/du, surrogate, dL/ds incl. the recurrent path or None)``, each
    ``(B, T, N)``, by torch ops per step: the reference, and the path for recurrent populations
    and a trained threshold."""
    B, T, N = s_all.shape
    recurrent = w_rec is not None
    need_vth = ctx.needs_input_grad[4]
    sg = _surrogate_grad(v_all, theta, ctx.slope)  # ds/dv, (B, T, N)
    # pre[t] = g_v[t] + g_s[t] * sg[t]: every adjoint term not carried through time
    # (plus, when recurrent, the spike's recurrent path, added in the loop)
    if g_s is None:
        pre = torch.zeros_like(s_all)
    elif recurrent or need_vth:
        pre = sg * g_s
    else:
        pre = sg.mul_(g_s)  # sg is not needed again
    if g_v is not None:
        pre.add_(g_v)
    g_spike = None  # dL/ds[t] including the recurrent path, for the threshold's gradient
    if need_vth:
        g_spike = torch.zeros_like(s_all) if g_s is None else g_s.expand_as(s_all).clone()
    keep = (1 - s_all).mul_(beta)  # dv[t+1]/dv[t]: beta, or 0 after a spike (reset = constant)
    gv_all, gu_all = torch.empty_like(s_all), torch.empty_like(s_all)
    gv = gu = torch.zeros(B, N, dtype=s_all.dtype)
    alpha_f = float(alpha)
    pre_t, keep_t, sg_t = pre.unbind(1), keep.unbind(1), sg.unbind(1)
    g_u_t = None if g_u is None else g_u.unbind(1)  # a loss on u itself
    gv_t, gu_t = gv_all.unbind(1), gu_all.unbind(1)
    for t in range(T - 1, -1, -1):
        if recurrent and t < T - 1:
            r = (gu @ w_rec).mul_(rec_gain)  # dL/ds[t] through W_rec into a[t+1]
            pre_t[t].addcmul_(r, sg_t[t])
            if g_spike is not None:
                g_spike[:, t].add_(r)
        torch.addcmul(pre_t[t], gv, keep_t[t], out=gv_t[t])
        torch.add(gv_t[t], gu, alpha=alpha_f, out=gu_t[t])
        if g_u_t is not None:
            gu_t[t].add_(g_u_t[t])
        gv, gu = gv_t[t], gu_t[t]
    return gv_all, gu_all, sg, g_spike


def _fused_adjoints(kernel, ctx, g_s, g_v, g_u, s_all, v_all, theta, alpha, beta, in_scale):
    """``(dL/dv, in_scale dL/du)`` for a population without recurrence and threshold gradient, in
    one compiled pass (`models.lif_kernel.backward`; ``in_scale`` a power of two: exact)."""
    scalar, empty = _numpy_scalar(s_all), _np(s_all[:0])
    norm = theta.abs() if float(theta.abs()) > 0 else torch.ones_like(theta)
    grads = [empty if g is None else _np(g.expand_as(s_all).contiguous()) for g in (g_s, g_v, g_u)]
    gv_all, gu_all = torch.empty_like(s_all), torch.empty_like(s_all)
    kernel.backward(_np(v_all), _np(s_all), *grads, scalar(theta), scalar(norm), scalar(ctx.slope), scalar(alpha),
                    scalar(beta), scalar(in_scale), _np(gv_all), _np(gu_all))
    return gv_all, gu_all


def _forward_float(a, alpha, beta, bias, vth, w_rec, u0, v0, s_all, v_all, u_all):
    """Float-mode scan written straight into the output buffers (no per-step allocation
    except the recurrent product); same operations, in the same order, as the docstring."""
    B, T, N = a.shape
    a_t, s_t, v_t, u_t = a.unbind(1), s_all.unbind(1), v_all.unbind(1), u_all.unbind(1)
    u, v = u0.expand(B, N), v0.expand(B, N)
    v_post = torch.empty(B, N, dtype=a.dtype)
    w_rec_t = None if w_rec is None else w_rec.t()
    add_bias = bool((bias != 0).any())  # adding exact zeros changes nothing
    for t in range(T):
        a_in = a_t[t]
        if w_rec is not None and t:
            # a[t] + W_rec s[t-1] (s[-1] = 0); contiguous: BLAS rounds strided operands differently
            a_in = (s_t[t - 1].contiguous() @ w_rec_t).add_(a_in)
        torch.mul(u, alpha, out=u_t[t])
        u_t[t].add_(a_in)
        u = u_t[t]
        torch.mul(v, beta, out=v_t[t])
        v_t[t].add_(u)
        if add_bias:
            v_t[t].add_(bias)
        torch.gt(v_t[t], vth, out=s_t[t])
        torch.addcmul(v_t[t], v_t[t], s_t[t], value=-1, out=v_post)  # v - v*s: exact, s in {0, 1}
        v = v_post


def _forward_fixed(a, alpha, beta, bias, vth, w_rec, u0, v0, rec_exp, s_all, v_all, u_all):
    """Lava ``fixed_pt``, bit for bit, on exact integers held in float64.

    Each step is `fx.lif_fixed_update` (the emulator's rule too). Its wraps
    (int32 sums, the 2**24 correction of u) are skipped when `fx.lif_scan_wraps`
    proves from bounds on the whole input that no step can need them (ordinary
    operation), and taken exactly otherwise. ``a << 6`` (int32) is taken over
    all steps at once unless a recurrent input must first be added (wrapping
    the sum or its parts is the same modulo 2**32).
    """
    B, T, N = a.shape
    u, v = u0.expand(B, N).clone(), v0.expand(B, N).clone()
    cf, vf = alpha * fx.DECAY_UNITY, beta * fx.DECAY_UNITY
    vth_cmp = fx.effective_threshold(vth)
    w_rec_t = None if w_rec is None else w_rec.t()
    if w_rec_t is None:
        scaled = fx.scaled_input(a)
        max_in = fx.max_abs(scaled)
    else:  # |W_rec s| <= the largest row sum of |W_rec|; the flooring shift adds at most 1
        rec_bound = float(w_rec.abs().sum(dim=1).max()) * 2.0 ** rec_exp + 1.0
        max_in = (fx.max_abs(a) + rec_bound) * float(1 << fx.ACT_SHIFT)
    wraps = fx.lif_scan_wraps(fx.max_abs(u0), fx.max_abs(v0), max_in, fx.max_abs(bias),
                              float(cf), float(vf), T)
    s_t, v_t, u_t = s_all.unbind(1), v_all.unbind(1), u_all.unbind(1)
    v_post = torch.empty(B, N, dtype=a.dtype)
    for t in range(T):
        if w_rec_t is None:
            a_t = scaled[:, t]
        else:
            rec = fx.shift_by_weight_exp(s_t[t - 1].contiguous() @ w_rec_t, rec_exp) if t else 0.0
            a_t = fx.scaled_input(a[:, t] + rec)
        u, v = fx.lif_fixed_update(u, v, a_t, cf, vf, bias, wraps=wraps, out=(u_t[t], v_t[t]))
        torch.gt(v, vth_cmp, out=s_t[t])
        v = torch.addcmul(v, v, s_t[t], value=-1, out=v_post)  # v - v*s: exact, s in {0, 1}


def _surrogate_grad(v_all, theta, slope):
    """ds/dv: ``models.surrogate.fast_sigmoid_grad((v - theta) / |theta|, slope) / |theta|``,
    computed in place in one buffer (the test against the autograd loop pins the two together)."""
    norm = torch.where(theta.abs() > 0, theta.abs(), torch.ones_like(theta))
    unit = bool(norm == 1)  # the usual float vth = 1: dividing by 1 changes nothing
    x = v_all - theta
    if not unit:
        x.div_(norm)
    x.abs_().mul_(slope).add_(1.0).square_().reciprocal_()
    return x if unit else x.div_(norm)


def _parameter_grads(ctx, g_a, in_scale, gv, g_spike, sg, s_all, v_all, u_all, u0, v0, w_rec, rec_scale):
    """Gradients for (alpha, beta, bias, vth, w_rec) from the per-step adjoints (``g_a = in_scale
    dL/du``, ``in_scale`` a power of two: dL/du is ``g_a / in_scale`` exactly)."""
    need = ctx.needs_input_grad
    alpha, beta, vth = ctx.saved_tensors[:3]
    g_alpha = g_beta = g_bias = g_vth = g_w = None
    if need[1]:
        u_prev = torch.cat([u0.expand_as(u_all[:, :1]), u_all[:, :-1]], dim=1)
        gu = g_a if in_scale == 1.0 else g_a / in_scale
        g_alpha = (gu * u_prev).sum().reshape(alpha.shape)
    if need[2]:
        v_prev = torch.cat([v0.expand_as(v_all[:, :1]), (v_all * (1 - s_all))[:, :-1]], dim=1)
        g_beta = (gv * v_prev).sum().reshape(beta.shape)
    if need[3]:
        g_bias = gv.sum(dim=(0, 1))
    if need[4]:
        scale = float(1 << fx.VTH_SHIFT) if ctx.fixed else 1.0
        g_vth = -(g_spike * sg).sum().reshape(vth.shape) * scale
    if need[5] and w_rec is not None:
        s_prev = s_all[:, :-1].reshape(-1, s_all.shape[-1])
        g_w = g_a[:, 1:].reshape(-1, s_all.shape[-1]).t() @ s_prev * rec_scale
    return g_alpha, g_beta, g_bias, g_vth, g_w


def lif_scan(a: torch.Tensor, *, alpha, beta, bias, vth, w_rec: Optional[torch.Tensor] = None,
             u0=None, v0=None, fixed: bool = False, rec_exp: int = 0,
             slope: float = 10.0) -> LIFTrace:
    """Run a LIF population over all steps of ``a`` (B, T, N).

    alpha, beta: decay factors as 0-d tensors (fixed mode: ``(4095-du)/4096``,
    ``(4096-dv)/4096``); bias: (N,) (fixed mode: effective integer bias);
    vth: 0-d (fixed mode: the mantissa, compared as ``vth << 6``);
    w_rec: optional (N, N) recurrent weights (fixed mode: Lava-quantized ints,
    with ``rec_exp`` their weight_exp); slope: surrogate steepness.
    """
    fixed_kernel = fixed and _runs_the_kernel(a, w_rec, bias, u0, v0)
    if fixed and not fixed_kernel:
        a = a.double()  # the torch loop's integer rules are exact in float64 only
    zeros = torch.zeros(a.shape[-1], dtype=a.dtype)
    u0 = zeros if u0 is None else u0
    v0 = zeros if v0 is None else v0
    s, v, u = _LIFScan.apply(a, alpha, beta, bias, vth, w_rec, u0, v0, fixed, rec_exp, slope, fixed_kernel)
    return LIFTrace(s=s, v=v, u=u)
