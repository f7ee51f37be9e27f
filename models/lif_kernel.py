"""The float LIF scan's time loops as numba kernels (`models.lif._LIFScan`'s fast path).

`models.lif` runs a float-mode, non-recurrent LIF population's T steps with a
few torch ops per step (forward) and two per step (backward); at the 700-256-20
training benchmark's shapes each op is a few microseconds of dispatch for a
(64, 256) array. These kernels run the same loops per sample, every neuron's
arithmetic in the order `models.lif` states (IEEE float32 or float64, no
fast-math contraction), so the forward is bit-identical to the torch loop,
which stays the reference (``models.lif.COMPILED = False``). The backward (for a
population without recurrence whose threshold takes no gradient) fuses the
surrogate, the adjoint terms and the time loop into one pass; torch may fuse a
multiply-add where it rounds twice (or the reverse), so its float32 gradients
agree with the torch loops to float rounding, not bit for bit (the tests: float32 to
1e-5, float64 to 1e-12).

Time: steps t = 1..T are rows 0..T-1 of the ``(B, T, N)`` arrays.
"""
from __future__ import annotations

import numba
import numpy as np

from models import fixed_kernel, fixed_point, kernel_cache
from models.fixed_kernel import lif_int


@numba.njit(cache=True, nogil=True, parallel=True)
def forward(a, alpha, beta, bias, vth, u0, v0, s, v, u):
    """``u[t] = u[t-1] alpha + a[t]``, ``v[t] = v'[t-1] beta + u[t] + bias``, ``s[t] = v[t] > vth``,
    ``v'[t] = v[t] - v[t] s[t]`` into ``s``, ``v`` (pre-reset), ``u``; all ``(B, T, N)``, C order.
    ``u0``, ``v0``, ``bias``: ``(N,)``; ``alpha``, ``beta``, ``vth`` scalars of the arrays' dtype."""
    B, T, N = a.shape
    for b in numba.prange(B):
        up, vp = u0.copy(), v0.copy()
        for t in range(T):
            _forward_row(a[b, t], alpha, beta, bias, vth, up, vp, s[b, t], v[b, t], u[b, t])


@numba.njit(cache=True, nogil=True, inline="always")  # inlined: no reference counts on its views
def _forward_row(a, alpha, beta, bias, vth, up, vp, s, v, u):
    """One step of `forward` for one sample (``up``, ``vp``: u and post-reset v, in place)."""
    one = s.dtype.type(1)
    zero = s.dtype.type(0)
    for j in range(a.shape[0]):
        uu = up[j] * alpha + a[j]
        vv = vp[j] * beta + uu + bias[j]
        sj = one if vv > vth else zero
        u[j], v[j], s[j] = uu, vv, sj
        up[j] = uu
        vp[j] = vv - vv * sj


@numba.njit(cache=True, nogil=True, parallel=True)
def forward_fixed(a, cur, volt, bias, theta, u0, v0, s, v, u):
    """Lava ``fixed_pt`` over all steps (`models.lif._forward_fixed` without recurrence): the
    exact integers ``a`` (float64 ``(B, T, N)``, Lava's units before ``<< 6``) enter as int32
    wrapped (only ``a`` modulo 2**26 reaches u), each step is `models.fixed_kernel.lif_int`;
    writes ``s``, ``v`` (pre-reset) and ``u`` in their arrays' dtypes (``a``, ``s``, ``v``: float32
    or float64, all exact for s and v; ``u`` float64: Lava's u spans int32). ``bias``, ``u0``, ``v0``: int32 ``(N,)``;
    ``cur``, ``volt``: the decay factors; ``theta``: vth << 6."""
    B, T, N = a.shape
    for b in numba.prange(B):
        ub, vb = u0.copy(), v0.copy()
        ab = np.empty(N, np.int32)
        for t in range(T):
            at, ut = a[b, t], u[b, t]
            for j in range(N):
                ab[j] = np.int32(np.int64(at[j]))
            lif_int(ub, vb, ab, bias, cur, volt, theta, s[b, t], v[b, t])  # s and pre-reset v written in place
            for j in range(N):  # (a loop storing s, v, u together from scratch did not vectorise: 3x the scan)
                ut[j] = ub[j]


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def backward(v_all, s_all, g_s, g_v, g_u, theta, norm, slope, alpha, beta, gu_scale, gv_all, gu_all):
    """`models.lif._LIFScan.backward` without recurrence or threshold gradient, fused: per element
    the surrogate ``sg = 1 / (1 + slope |(v - theta) / norm|)^2 / norm`` (`models.lif._surrogate_grad`;
    ``norm`` 1 skips both divisions), ``pre = sg g_s + g_v``, ``keep = (1 - s) beta``, then
    from t = T-1 down ``gv[t] = pre[t] + gv[t+1] keep[t]``, ``gu[t] = gv[t] + alpha gu[t+1]
    (+ g_u[t])`` into ``gv_all`` and ``gu_scale * gu`` into ``gu_all`` ``(B, T, N)`` (fixed mode's
    ``dL/da = 64 dL/du``: a power of two, exact; 1 in float mode). ``g_s``, ``g_v``, ``g_u``: the
    loss's gradients ``(B, T, N)``, or of size 0 where the loss does not use that output."""
    B, T, N = v_all.shape
    has_s, has_v, has_u = g_s.size > 0, g_v.size > 0, g_u.size > 0
    for b in numba.prange(B):
        gv, gu, pre = np.zeros(N, v_all.dtype), np.zeros(N, v_all.dtype), np.zeros(N, v_all.dtype)
        for t in range(T - 1, -1, -1):
            if has_s:
                _surrogate_times(v_all[b, t], g_s[b, t], theta, norm, slope, pre)
            if has_v:
                _add(pre, g_v[b, t], has_s)
            _carry(pre, s_all[b, t], alpha, beta, gu_scale, gv, gu, gv_all[b, t], gu_all[b, t])
            if has_u:
                _add(gu, g_u[b, t], True)
                out = gu_all[b, t]
                for j in range(N):
                    out[j] = gu[j] * gu_scale


# error_model "numpy": IEEE division, no zero check, so it vectorises; inlined: no reference counts on views
@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _surrogate_times(v, g, theta, norm, slope, out):
    """``out = sg(v) * g``, the surrogate's expression in `models.lif._surrogate_grad`'s order (one
    branch-free loop per case, so that it vectorises)."""
    one = v.dtype.type(1)
    if norm == 1:
        for j in range(v.shape[0]):
            d = abs(v[j] - theta) * slope + one
            out[j] = one / (d * d) * g[j]
    else:
        for j in range(v.shape[0]):
            d = abs((v[j] - theta) / norm) * slope + one
            out[j] = one / (d * d) / norm * g[j]


@numba.njit(cache=True, nogil=True, inline="always")
def _add(out, x, accumulate):
    """``out += x``, or ``out = x`` when not ``accumulate``."""
    for j in range(out.shape[0]):
        out[j] = out[j] + x[j] if accumulate else x[j]


@numba.njit(cache=True, nogil=True, inline="always")
def _carry(pre, s, alpha, beta, gu_scale, gv, gu, gv_out, gu_out):
    """One step back in time: ``gv = pre + gv (1 - s) beta``, ``gu = gv + alpha gu`` (in place),
    also written to ``gv_out`` and, times ``gu_scale``, to ``gu_out``."""
    one = pre.dtype.type(1)
    for j in range(pre.shape[0]):
        x = pre[j] + gv[j] * ((one - s[j]) * beta)
        y = x + alpha * gu[j]
        gv[j], gu[j], gv_out[j], gu_out[j] = x, y, x, y * gu_scale


kernel_cache.depend_on(globals(), fixed_kernel.__file__, fixed_point.__file__)  # lif_int is inlined
