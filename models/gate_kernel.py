"""Compiled forward and backward passes of the discrete gate network (`models.gate`), as one autograd op.

`GateRun.apply(W, drive, neuron)` returns the readout traces R (B, T, N) of `models.gate.simulate`
for recurrent weights W (N, N; self-connections already masked) and per-step drive
``U i[n] + b`` (B, T, N), and differentiates them by hand-written BPTT through the same steps
(numba loops: eager torch spends ~10 us per op per step, this ~1 us per step in all). It is
tested against autograd through `models.gate.simulate` (equal to rounding in float64). The
adjoint recursion, for step n from T down to 1 (lam_* = dL/d*; ``k = 1 - decay``)::

    lam_r[n]  = dL/dr[n] + k lam_r[n+1]
    g_q[n]    = lam_r[n] + W^T lam_c[n+1]
    g_G[n]    = g_q[n] - (1 - s[n]) g_q[n+1]                (q[n+1] = G[n+1] - G(x[n]))
    g_x[n]    = g_xh[n+1] (1 + 2 h x[n])
    g_xh[n]   = (1 - s[n]) g_x[n] + g_G[n] G'(xh[n])        (G' = 0 above the zone top)
    lam_c[n]  = k lam_c[n+1] + h g_xh[n];   dL/d drive[n] = h g_xh[n];   dL/dW += lam_c[n+1] q[n]^T
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

BOX, SMOOTH = 0, 1


@numba.njit(cache=True)
def _G(x, x_a, width, kind):
    z = (x - x_a) / width
    if z <= 0.0:
        return 0.0
    if z >= 1.0:
        return 1.0
    if kind == BOX:
        return z
    return z - math.sin(2 * math.pi * z) / (2 * math.pi)


@numba.njit(cache=True)
def _dG(x, x_a, width, kind):
    """dG/dx at a value below the zone top (clamp passes the gradient on the closed zone)."""
    z = (x - x_a) / width
    if z < 0.0 or z > 1.0:
        return 0.0
    if kind == BOX:
        return 1.0 / width
    return (1.0 - math.cos(2 * math.pi * z)) / width


@numba.njit(cache=True)
def forward(W, drive, h, keep, x_a, width, x_th, x_reset, kind):
    """(R, Q, XH, X, S) of the discrete model, each (B, T, N); S as float 0/1."""
    B, T, N = drive.shape
    R = np.zeros((B, T, N))
    Q = np.zeros((B, T, N))
    XH = np.zeros((B, T, N))
    X = np.zeros((B, T, N))
    S = np.zeros((B, T, N))
    top = x_a + width
    c = np.zeros(N)
    for b in range(B):
        x = np.full(N, x_reset)
        r = np.zeros(N)
        q = np.zeros(N)
        c[:] = 0.0
        Gp = np.full(N, _G(x_reset, x_a, width, kind))
        for t in range(T):
            for i in range(N):
                c[i] *= keep
            for j in range(N):  # q is zero outside the gate zone: add only the active columns
                if q[j] != 0.0:
                    for i in range(N):
                        c[i] += W[i, j] * q[j]
            for i in range(N):
                xh = x[i] + h * (x[i] * x[i] + c[i] + drive[b, t, i])
                G = _G(min(xh, top), x_a, width, kind)
                q[i] = G - Gp[i]
                if xh >= x_th:
                    x[i] = x_reset
                    Gp[i] = 0.0
                    S[b, t, i] = 1.0
                else:
                    x[i] = xh
                    Gp[i] = G
                r[i] = keep * r[i] + q[i]
                R[b, t, i] = r[i]
                Q[b, t, i] = q[i]
                XH[b, t, i] = xh
                X[b, t, i] = x[i]
    return R, Q, XH, X, S


@numba.njit(cache=True)
def backward(W, gR, Q, XH, X, S, h, keep, x_a, width, kind):
    """(dL/dW, dL/d drive) from dL/dR by the recursion of the module docstring."""
    B, T, N = gR.shape
    gW = np.zeros((N, N))
    gD = np.zeros((B, T, N))
    top = x_a + width
    lam_r, lam_c, g_xh_next, g_q_next = np.zeros(N), np.zeros(N), np.zeros(N), np.zeros(N)
    g_q = np.zeros(N)
    for b in range(B):
        lam_r[:] = 0.0
        lam_c[:] = 0.0
        g_xh_next[:] = 0.0
        g_q_next[:] = 0.0
        for t in range(T - 1, -1, -1):
            for i in range(N):
                lam_r[i] = gR[b, t, i] + keep * lam_r[i]
            for j in range(N):
                acc = 0.0
                for i in range(N):
                    acc += W[i, j] * lam_c[i]
                g_q[j] = lam_r[j] + acc
            for j in range(N):  # dL/dW += lam_c[t+1] q[t]^T (lam_c still holds step t+1)
                if Q[b, t, j] != 0.0:
                    for i in range(N):
                        gW[i, j] += lam_c[i] * Q[b, t, j]
            for i in range(N):
                alive = 1.0 - S[b, t, i]
                g_G = g_q[i] - alive * g_q_next[i]
                g_x = g_xh_next[i] * (1.0 + 2.0 * h * X[b, t, i])
                xh = XH[b, t, i]
                slope = _dG(xh, x_a, width, kind) if xh < top else 0.0
                g_xh = alive * g_x + g_G * slope
                lam_c[i] = keep * lam_c[i] + h * g_xh
                gD[b, t, i] = h * g_xh
                g_xh_next[i] = g_xh
                g_q_next[i] = g_q[i]
    return gW, gD


def constants(neuron) -> tuple:
    """The kernel's scalar arguments for a `models.gate.GateNeuron`."""
    return (neuron.h, 1.0 - neuron.decay, neuron.x_a, neuron.width, neuron.x_th, neuron.x_reset,
            BOX if neuron.gate == "box" else SMOOTH)


class GateRun(torch.autograd.Function):
    """R = GateRun.apply(W, drive, neuron): the readout traces, with the hand-written backward."""

    @staticmethod
    def forward(ctx, W, drive, neuron):
        h, keep, x_a, width, x_th, x_reset, kind = constants(neuron)
        Wn = W.detach().double().numpy()
        R, Q, XH, X, S = forward(Wn, drive.detach().double().numpy(), h, keep, x_a, width, x_th, x_reset, kind)
        ctx.save_for_backward(W)
        ctx.arrays, ctx.neuron = (Wn, Q, XH, X, S), neuron
        return torch.from_numpy(R).to(W.dtype)

    @staticmethod
    def backward(ctx, gR):
        (W,) = ctx.saved_tensors
        Wn, Q, XH, X, S = ctx.arrays
        h, keep, x_a, width, _, _, kind = constants(ctx.neuron)
        gW, gD = backward(Wn, gR.detach().double().contiguous().numpy(), Q, XH, X, S, h, keep, x_a, width, kind)
        return torch.from_numpy(gW).to(W.dtype), torch.from_numpy(gD).to(W.dtype), None


def run(W: torch.Tensor, drive: torch.Tensor, neuron) -> dict:
    """The forward arrays (numpy, no gradient): R, Q, XH, X, S as in `forward`."""
    R, Q, XH, X, S = forward(W.detach().double().numpy(), drive.detach().double().numpy(), *constants(neuron))
    return dict(r=R, q=Q, xh=XH, x=X, spikes=S.astype(bool))
