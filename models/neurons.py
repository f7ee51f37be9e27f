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
tensor ops instead of an autograd graph of T * dozens of nodes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from models import fixed_point as fx
from models.surrogate import fast_sigmoid_grad


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
    def forward(ctx, a, alpha, beta, bias, vth, w_rec, u0, v0, fixed, rec_exp, slope):
        B, T, N = a.shape
        s_all, v_all, u_all = torch.empty_like(a), torch.empty_like(a), torch.empty_like(a)
        u, v = u0.expand(B, N).clone(), v0.expand(B, N).clone()
        s = torch.zeros_like(u)
        if fixed:
            cf, vf = alpha * fx.DECAY_UNITY, beta * fx.DECAY_UNITY
            vth_cmp = fx.effective_threshold(vth)
        w_rec_t = None if w_rec is None else w_rec.t()
        for t in range(T):
            a_t = a[:, t]
            if w_rec_t is not None:
                rec = s @ w_rec_t
                a_t = a_t + (fx.shift_by_weight_exp(rec, rec_exp) if fixed else rec)
            if fixed:
                u = fx.wrap_u(fx.decay(u, cf) + fx.scaled_input(a_t))
                v = fx.saturate_v(fx.decay(v, vf) + u + bias)
                s = (v > vth_cmp).to(a.dtype)
            else:
                u = u * alpha + a_t
                v = v * beta + u + bias
                s = (v > vth).to(a.dtype)
            u_all[:, t], v_all[:, t], s_all[:, t] = u, v, s
            v = v * (1 - s)
        ctx.save_for_backward(alpha, beta, vth, w_rec, u0, v0, s_all, v_all, u_all)
        ctx.fixed, ctx.rec_exp, ctx.slope = fixed, rec_exp, slope
        return s_all, v_all, u_all

    @staticmethod
    def backward(ctx, g_s, g_v, g_u):
        alpha, beta, vth, w_rec, u0, v0, s_all, v_all, u_all = ctx.saved_tensors
        B, T, N = s_all.shape
        in_scale = float(1 << fx.ACT_SHIFT) if ctx.fixed else 1.0
        rec_scale = 2.0 ** ctx.rec_exp if ctx.fixed else 1.0
        theta = fx.effective_threshold(vth) if ctx.fixed else vth
        norm = torch.where(theta.abs() > 0, theta.abs(), torch.ones_like(theta))
        sg = fast_sigmoid_grad((v_all - theta) / norm, ctx.slope) / norm  # ds/dv
        g_a, g_v_all = torch.empty_like(s_all), torch.empty_like(s_all)
        gu = torch.zeros(B, N, dtype=s_all.dtype)
        gv = torch.zeros_like(gu)
        g_rec_in = torch.zeros_like(gu)  # dL/da[t+1] from the recurrent path
        g_spike_total = torch.empty_like(s_all)
        for t in range(T - 1, -1, -1):
            gs = g_s[:, t]
            if w_rec is not None and t < T - 1:
                gs = gs + (g_rec_in @ w_rec) * rec_scale
            g_spike_total[:, t] = gs
            gv = g_v[:, t] + gs * sg[:, t] + gv * beta * (1 - s_all[:, t])
            gu = gv + alpha * gu
            g_rec_in = gu * in_scale
            g_a[:, t], g_v_all[:, t] = g_rec_in, gv
        grads = _parameter_grads(ctx, g_a, g_v_all, g_spike_total, sg, s_all, v_all, u_all,
                                 u0, v0, w_rec, rec_scale, in_scale)
        return (g_a, *grads, None, None, None, None, None, None)


def _parameter_grads(ctx, g_a, gv, g_spike, sg, s_all, v_all, u_all, u0, v0, w_rec,
                     rec_scale, in_scale):
    """Gradients for (alpha, beta, bias, vth, w_rec) from the per-step adjoints."""
    need = ctx.needs_input_grad
    gu = g_a / in_scale
    alpha, beta, vth = ctx.saved_tensors[:3]
    g_alpha = g_beta = g_bias = g_vth = g_w = None
    if need[1]:
        u_prev = torch.cat([u0.expand_as(u_all[:, :1]), u_all[:, :-1]], dim=1)
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
    zeros = torch.zeros(a.shape[-1], dtype=a.dtype)
    u0 = zeros if u0 is None else u0
    v0 = zeros if v0 is None else v0
    s, v, u = _LIFScan.apply(a, alpha, beta, bias, vth, w_rec, u0, v0, fixed, rec_exp, slope)
    return LIFTrace(s=s, v=v, u=u)
