"""Recurrent QIF networks with the gate synapse (Huh & Sejnowski 2018), time-stepped, for BPTT.

Continuous model (time in ms; state per neuron x, synaptic current c, readout trace r)::

    tau_v dx/dt = x**2 + I,     I = c + U i(t) + b
    dc/dt = -c / tau_s + W g(x) dx/dt          (the gate synapse: tau_s ds/dt = -s + g(v) dv/dt)
    dr/dt = -r / tau_s + g(x) dx/dt,           o(t) = O r(t) + o_b

The gate ``g >= 0`` is nonzero only in the zone [x_a, x_a + width] below the threshold and
integrates to one over it (``G(x) = int g``): a full passage delivers one unit of charge
whatever its speed, a partial one a graded amount. ``box``: g = 1/width (G a clipped ramp);
``smooth``: the raised cosine g = (1 - cos(2 pi z)) / width, z = (x - x_a) / width (g and g'
continuous, what the continuous adjoint `models.gate_adjoint` needs). x reaching ``x_th``
(the finite stand-in for +inf) is a spike: x restarts at ``x_reset`` (for -inf), below the zone.
W has no self-connections.

Discrete model (the one trained and deployed; step n = 1..T of dt ms, h = dt / tau_v,
``decay`` = the fraction of c and r lost per step, on Lava's 1/4096 grid)::

    c[n] = (1 - decay) c[n-1] + W q[n-1]            (the charge sent at step n-1 arrives at n)
    xh   = x[n-1] + h (x[n-1]**2 + c[n] + U i[n-1] + b)   (the input arrives one step late, i[0] = 0)
    q[n] = G(min(xh, x_a + width)) - G(x[n-1])       (the gate charge of step n)
    x[n] = x_reset if xh >= x_th else xh
    r[n] = (1 - decay) r[n-1] + q[n],   o[n] = O r[n] + o_b

Gradients: reverse-mode autodiff through these steps (`simulate`), the exact gradient of
the discrete model wherever it is differentiable (a reset moving by a step is a jump).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from models.errors import SpikeportError

GATES = ("box", "smooth")
DECAY_GRID = 4096  # Lava's current decay du is an integer in 1/4096


@dataclass(frozen=True)
class GateNeuron:
    """Neuron and synapse constants. Times in ms; x is dimensionless (the QIF voltage)."""

    dt: float = 1.0  # step (ms)
    tau_v: float = 8.0  # membrane time constant (ms)
    tau_s: float = 10.0  # synaptic time constant of c and r (ms)
    x_a: float = 2.0  # lower edge of the gate zone
    width: float = 16.0  # gate zone width (a power of two, so a fixed-point passage is exactly 2**P)
    x_th: float = 18.0  # threshold standing for +inf (>= x_a + width)
    x_reset: float = -4.0  # reset standing for -inf (< x_a)
    gate: str = "box"

    def __post_init__(self):
        if self.gate not in GATES:
            raise SpikeportError(f"gate: gate={self.gate!r} is not one of {', '.join(GATES)}")
        if not self.x_reset < self.x_a < self.x_a + self.width <= self.x_th:
            raise SpikeportError(f"gate: need x_reset < x_a < x_a + width <= x_th, got x_reset={self.x_reset}, "
                                 f"x_a={self.x_a}, width={self.width}, x_th={self.x_th}")
        if not 0 < self.dt <= self.tau_v:
            raise SpikeportError(f"gate: dt={self.dt} is outside (0, tau_v={self.tau_v}] ms")

    @property
    def h(self) -> float:
        return self.dt / self.tau_v

    @property
    def decay(self) -> float:
        """Fraction of c and r lost per step: dt / tau_s rounded to Lava's 1/4096 grid."""
        return decay_of(self.dt, self.tau_s)

    def as_dict(self) -> dict:
        return asdict(self)


def decay_of(dt: float, tau_s: float) -> float:
    """dt / tau_s on the 1/4096 grid (at least one grid step)."""
    return max(1, round(DECAY_GRID * dt / tau_s)) / DECAY_GRID


def gate_integral(x: torch.Tensor, n: GateNeuron) -> torch.Tensor:
    """G(x): the charge a passage from below the zone to x has delivered, in [0, 1]."""
    z = torch.clamp((x - n.x_a) / n.width, 0.0, 1.0)
    if n.gate == "box":
        return z
    return z - torch.sin(2 * math.pi * z) / (2 * math.pi)


def gate_density(x: torch.Tensor, n: GateNeuron) -> torch.Tensor:
    """g(x) = dG/dx."""
    z = (x - n.x_a) / n.width
    inside = ((z >= 0) & (z <= 1)).to(x.dtype)
    if n.gate == "box":
        return inside / n.width
    return inside * (1 - torch.cos(2 * math.pi * z)) / n.width


class GateNetwork(torch.nn.Module):
    """N recurrent gate-synapse QIF neurons, n_in input channels, n_out linear readouts.

    Initialisation (seeded): W ~ N(0, w_scale**2 / N) without its diagonal, U ~ N(0, u_scale**2),
    b ~ bias_mean + U(-bias_range, bias_range), O ~ N(0, o_scale**2 / N) (o_scale = 0: O = 0), o_b = 0.
    """

    def __init__(self, n_in: int, n_rec: int, n_out: int, neuron: GateNeuron = GateNeuron(),
                 w_scale: float = 1.0, u_scale: float = 1.0, bias_range: float = 0.5, bias_mean: float = 0.0,
                 o_scale: float = 0.0,
                 seed: int = 0, dtype=torch.float32):
        super().__init__()
        self.neuron, self.sizes = neuron, (n_in, n_rec, n_out)
        self.init = dict(w_scale=w_scale, u_scale=u_scale, bias_range=bias_range, bias_mean=bias_mean,
                         o_scale=o_scale, seed=seed)
        g = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(torch.randn(n_rec, n_rec, generator=g, dtype=dtype) * w_scale / math.sqrt(n_rec))
        self.U = torch.nn.Parameter(torch.randn(n_rec, n_in, generator=g, dtype=dtype) * u_scale)
        self.b = torch.nn.Parameter((torch.rand(n_rec, generator=g, dtype=dtype) * 2 - 1) * bias_range + bias_mean)
        self.O = torch.nn.Parameter(torch.randn(n_out, n_rec, generator=g, dtype=dtype) * o_scale / math.sqrt(n_rec))
        self.o_b = torch.nn.Parameter(torch.zeros(n_out, dtype=dtype))
        self.register_buffer("mask", 1 - torch.eye(n_rec, dtype=dtype))
        with torch.no_grad():
            self.W.mul_(self.mask)

    @property
    def config(self) -> dict:
        n_in, n_rec, n_out = self.sizes
        return dict(n_in=n_in, n_rec=n_rec, n_out=n_out, neuron=self.neuron.as_dict(), **self.init)

    @classmethod
    def from_config(cls, config: dict) -> "GateNetwork":
        c = dict(config)
        return cls(c.pop("n_in"), c.pop("n_rec"), c.pop("n_out"), GateNeuron(**c.pop("neuron")), **c)

    def recurrent(self) -> torch.Tensor:
        """W with its diagonal held at zero (no self-connections)."""
        return self.W * self.mask

    def forward(self, inputs: torch.Tensor) -> dict:
        """``inputs`` (B, T, n_in) -> `simulate`'s dict for these parameters."""
        return simulate(self.recurrent(), self.U, self.b, self.O, self.o_b, inputs, self.neuron)


def simulate(W, U, b, O, o_b, inputs: torch.Tensor, n: GateNeuron, x0=None) -> dict:
    """Run the discrete model (module docstring) on ``inputs`` (B, T, n_in).

    Returns {"o": (B, T, n_out) readout, "r": (B, T, N) readout trace, "q": (B, T, N) gate
    charge per step, "spikes": (B, T, N) bool, "x": (B, T, N) state after the step}. ``x0``:
    initial x, (N,) or (B, N), default ``x_reset``.
    """
    B, T, _ = inputs.shape
    N = W.shape[0]
    drive = delayed(inputs) @ U.T + b  # (B, T, N): U i[n-1] + b
    x = torch.full((B, N), n.x_reset, dtype=W.dtype) if x0 is None else x0.expand(B, N).clone()
    c = torch.zeros(B, N, dtype=W.dtype)
    r = torch.zeros(B, N, dtype=W.dtype)
    q = torch.zeros(B, N, dtype=W.dtype)
    G_prev = gate_integral(x, n)
    keep, top = 1.0 - n.decay, n.x_a + n.width
    rs, qs, spikes, xs = [], [], [], []
    for t in range(T):
        c = keep * c + q @ W.T
        xh = x + n.h * (x * x + c + drive[:, t])
        G = gate_integral(torch.minimum(xh, torch.full_like(xh, top)), n)
        q = G - G_prev
        spike = xh >= n.x_th
        x = torch.where(spike, torch.full_like(xh, n.x_reset), xh)
        G_prev = torch.where(spike, torch.zeros_like(G), G)
        r = keep * r + q
        rs.append(r)
        qs.append(q)
        spikes.append(spike)
        xs.append(x)
    R = torch.stack(rs, 1)
    return dict(o=R @ O.T + o_b, r=R, q=torch.stack(qs, 1), spikes=torch.stack(spikes, 1), x=torch.stack(xs, 1))


def delayed(inputs: torch.Tensor) -> torch.Tensor:
    """Inputs one step late (one synapse hop): step n sees i[n-1], step 1 sees 0. (B, T, n_in)."""
    return torch.nn.functional.pad(inputs, (0, 0, 1, 0))[:, :-1]


def drive_of(net: "GateNetwork", inputs: torch.Tensor) -> torch.Tensor:
    """The per-step drive U i[n-1] + b, (B, T, N)."""
    return delayed(inputs) @ net.U.T + net.b


def weighted_mse(o: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum_t w(t) |o - o*|**2 / sum_t w(t), averaged over the batch (weight (T,) or (B, T))."""
    w = weight.expand(o.shape[:2]).to(o.dtype)
    return ((o - target) ** 2).sum(-1).mul(w).sum() / w.sum()


def readout(net: GateNetwork, inputs: torch.Tensor) -> dict:
    """`GateNetwork.forward`'s readout through the compiled kernel (`models.gate_kernel`):
    {"o": (B, T, n_out), "r": (B, T, N)}, differentiable in every parameter."""
    from models.gate_kernel import GateRun

    drive = delayed(inputs) @ net.U.T + net.b
    R = GateRun.apply(net.recurrent(), drive, net.neuron)
    return dict(o=R @ net.O.T + net.o_b, r=R)
