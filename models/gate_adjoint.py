"""The continuous adjoint of the gate network (Huh & Sejnowski's exact gradient), a test oracle.

For the continuous model of `models.gate` without resets (a network that never reaches
x_th) and a differentiable gate (``smooth``), with ``a = dx/dt = (x**2 + I) / tau_v``,
``k = g'(x) a + 2 g(x) x / tau_v`` and the loss ``L = int w |o - o*|**2 dt / int w dt``,
the costates run backwards from zero at T::

    -dlam_x/dt = (2 x / tau_v) lam_x + k * (W^T lam_c + lam_r)
    -dlam_c/dt = mu - lam_c / tau_s,       mu = (lam_x + g * (W^T lam_c + lam_r)) / tau_v
    -dlam_r/dt = -lam_r / tau_s + O^T dl/do

and dL/db = int mu dt, dL/dU = int mu i^T dt, dL/dW = int lam_c (g a)^T dt (off the
diagonal), dL/dO = int dl/do r^T dt, dL/do_b = int dl/do dt. Forward and backward are
integrated by Euler on a fine grid of ``dt`` (ms); tau_s is the one the discrete model's
decay stands for (dt / decay). Independent of `models.gate.simulate` and its BPTT: the
gradients agree to O(dt) as dt -> 0 (tests/test_gate_model.py).
"""
from __future__ import annotations

import numpy as np


def _gate(x, n):
    z = (x - n.x_a) / n.width
    inside = (z >= 0) & (z <= 1)
    g = np.where(inside, (1 - np.cos(2 * np.pi * z)) / n.width, 0.0)
    dg = np.where(inside, 2 * np.pi * np.sin(2 * np.pi * z) / n.width ** 2, 0.0)
    return g, dg


def adjoint_gradients(W, U, b, O, o_b, inputs, target, weight, n, x0) -> dict:
    """Gradients of the continuous loss for one trial: ``inputs`` (T, n_in), ``target`` (T, n_out),
    ``weight`` (T,) sampled on the grid t_m = m dt (m = 0..T-1), ``n`` a `GateNeuron` with
    gate='smooth' (its ``dt`` is the grid step), ``x0`` (N,) the initial x. Returns numpy arrays
    keyed W, U, b, O, o_b, and "x" (T, N), the forward trajectory."""
    if n.gate != "smooth":
        raise ValueError("adjoint_gradients: the adjoint needs the smooth gate (g' exists)")
    dt, tau_v = n.dt, n.tau_v
    tau_s = dt / n.decay
    T, N = len(inputs), W.shape[0]
    xs, rs, cs = np.zeros((T, N)), np.zeros((T, N)), np.zeros((T, N))
    x, c, r = x0.astype(np.float64).copy(), np.zeros(N), np.zeros(N)
    for m in range(T):
        xs[m], cs[m], rs[m] = x, c, r
        a = (x * x + c + U @ inputs[m] + b) / tau_v
        g, _ = _gate(x, n)
        x, c, r = x + dt * a, c + dt * (-c / tau_s + W @ (g * a)), r + dt * (-r / tau_s + g * a)
    wsum = weight.sum() * dt
    err = 2 * weight[:, None] * (rs @ O.T + o_b - target) / wsum  # dl/do (T, n_out)
    lam_x, lam_c, lam_r = np.zeros(N), np.zeros(N), np.zeros(N)
    grads = dict(W=np.zeros_like(W), U=np.zeros_like(U), b=np.zeros_like(b), O=err.T @ rs * dt,
                 o_b=err.sum(0) * dt)
    for m in range(T - 1, -1, -1):
        x, c = xs[m], cs[m]
        a = (x * x + c + U @ inputs[m] + b) / tau_v
        g, dg = _gate(x, n)
        back = W.T @ lam_c + lam_r
        mu = (lam_x + g * back) / tau_v
        k = dg * a + 2 * g * x / tau_v
        grads["b"] += mu * dt
        grads["U"] += np.outer(mu, inputs[m]) * dt
        grads["W"] += np.outer(lam_c, g * a) * dt
        lam_x, lam_c, lam_r = (lam_x + dt * ((2 * x / tau_v) * lam_x + k * back),
                               lam_c + dt * (mu - lam_c / tau_s),
                               lam_r + dt * (-lam_r / tau_s + O.T @ err[m]))
    grads["W"] *= 1 - np.eye(N)
    grads["x"] = xs
    return grads
