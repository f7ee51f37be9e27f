"""AdaBelief with optax's exact update rule (the optimiser of the reference code).

torch ships no AdaBelief; optax's ``adabelief`` (used by Klos & Memmesheimer) computes,
per parameter and step n (1-based), with gradient g::

    e     = g - m_(n-1)                      (prediction error against the previous mean)
    m_n   = b1 m_(n-1) + (1 - b1) g
    s_n   = b2 s_(n-1) + (1 - b2) e**2 + eps_root
    p    -= lr_n * (m_n / (1 - b1**n)) / (sqrt(s_n / (1 - b2**n)) + eps)

with eps = eps_root = 1e-16. The schedule is optax's ``exponential_decay(lr, steps, 1/e)``:
``lr_n = lr exp(-n / steps)`` (`exponential_decay`).
"""
from __future__ import annotations

import math

import torch


class AdaBelief(torch.optim.Optimizer):
    """The update in the module docstring (state: ``step``, ``mean``, ``belief`` per parameter)."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-16, eps_root: float = 1e-16):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, eps_root=eps_root))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(step=0, mean=torch.zeros_like(p), belief=torch.zeros_like(p))
                state["step"] += 1
                n, m, s = state["step"], state["mean"], state["belief"]
                error = p.grad - m
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                s.mul_(b2).addcmul_(error, error, value=1 - b2).add_(group["eps_root"])
                denom = (s / (1 - b2 ** n)).sqrt_().add_(group["eps"])
                p.addcdiv_(m, denom, value=-group["lr"] / (1 - b1 ** n))


def exponential_decay(optimizer: torch.optim.Optimizer, steps: float) -> torch.optim.lr_scheduler.LambdaLR:
    """``lr_n = lr exp(-n / steps)``, stepped once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda n: math.exp(-n / steps))
