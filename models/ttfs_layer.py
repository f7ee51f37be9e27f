"""Exact time-to-first-spike (TTFS) networks (Mostafa 2018).

H. Mostafa, "Supervised learning based on temporal coding in spiking neural
networks", IEEE TNNLS 29(7), 2018 (arXiv:1606.08165).

Neuron model (continuous time, event based)
-------------------------------------------
Non-leaky integrate-and-fire neurons with exponentially decaying synaptic
current. An input spike at time ``t_i`` through weight ``w_i`` adds ``w_i`` to
the synaptic current, which decays with time constant ``tau_syn``; the
membrane integrates the current (no leak)::

    tau_syn dI/dt = -I + tau_syn * sum_i w_i delta(t - t_i)     (I jumps by w_i)
    tau_syn dV/dt = I        =>   V(t) = sum_{t_i < t} w_i (1 - exp(-(t - t_i)/tau_syn))

A neuron spikes when V crosses the threshold ``theta`` and then never again
(each neuron spikes at most once). **Units: every time in this module is in
units of tau_syn** (dimensionless; multiply by tau_syn in ms for ms). In the
variable ``z = exp(t / tau_syn)`` the output spike time has the closed form

    z_out = sum_{i in C} w_i z_i / (sum_{i in C} w_i - theta)

over the causal set ``C`` of inputs that arrive before the output spike.
`ttfs_layer` computes it exactly and batched: sort the input times once per
sample, take cumulative sums of ``w`` and ``w z`` along the sorted order, and
pick the first prefix ``k`` whose candidate is valid (``sum w > theta`` and the
candidate lies before the next input, ``z_out < z_(k+1)``). Because V is
continuous and, between inputs, ``V = A - B/z`` is monotone, the first prefix
with a crossing before the next input is the first crossing; the paper's
other condition ``z_out >= z_(k)`` then holds automatically (a candidate
before ``z_(k)`` would mean an earlier prefix had already crossed). No valid
prefix means no spike: ``z = inf``.

Inputs that all spike at one common time ``tail_z`` (here: the black pixels,
all at the end of the encoding window) are merged into one event whose
weight is their weight sum (a matrix product), so only the other inputs are
sorted. That is exact and makes MNIST ~5x cheaper (about 150 of 784 pixels
are not black).

Gradients are the exact derivatives of the selected closed form, written as
a custom backward (no 3-D autograd graph)::

    dz_out/dw_i = (z_i - z_out) / (A - theta),   dz_out/dz_i = w_i / (A - theta)   for i in C,

and 0 for inputs outside C and for neurons that do not spike (no NaN: every
inf is masked before it is multiplied).

The validity test used is "V just before the next input exceeds theta",
``A_k - B_k / z_(k+1) > theta``: the first prefix where it holds contains the
first crossing, and there ``A_k > theta`` and ``z_(k) <= z_out < z_(k+1)``.

Silent neurons are handled as in the paper: a penalty
``K * sum_j relu(theta - sum_i w_ji)`` keeps each neuron's input weight sum
above threshold, which guarantees a spike once all its inputs have arrived
(every input pixel spikes, black ones last). In the loss, an output neuron
that never spikes gets the logit ``-(largest finite z of its sample + 1)``
with no gradient, so cross-entropy stays finite.

Loss: cross-entropy over ``-z_out`` (the paper's softmax over negated output
spike times in the z domain; the earliest spike wins), plus the penalty.

Input encoding: pixel intensity ``x`` in [0, 1] spikes at
``t = t_max_in * (1 - x)`` (units of tau_syn), i.e. ``z_in = exp(t_max_in (1 - x))``:
the brightest pixel at t = 0 (z = 1), black pixels last, all at ``t_max_in`` (default
2 tau_syn). As in the paper, brighter pixels spike earlier and every pixel spikes; the
linear intensity-to-time map and the window are our choice.
"""
from __future__ import annotations

import copy
import math
from typing import Optional

import numpy as np
import torch
from torch import nn

from models.errors import SpikeportError, out_of_range

TTFS_DEFAULTS = dict(theta=1.0, t_max_in=2.0, init_mean=6.0, init_std=1.0, seed=0)


# ------------------------------------------------------------------ the layer
def _events(z_in, dtype, tail_z: Optional[float], tail_mask: Optional[torch.Tensor]):
    """``(z_in, events, tail_mask, beyond)``: the inputs in ``dtype``, the mask of the inputs
    scanned one by one (finite and outside the tail), the tail mask (default: within a relative
    1e-6 of ``tail_z``; None without a tail) and the z after the last event (``tail_z`` or inf)."""
    z_in = z_in.to(dtype)
    finite = torch.isfinite(z_in)
    if tail_z is not None and tail_mask is None:
        tail_mask = finite & (z_in >= tail_z * (1 - 1e-6))
    events = finite & ~tail_mask if tail_mask is not None else finite
    beyond = math.inf if tail_z is None else float(tail_z)
    if tail_mask is not None and bool((events & (z_in > tail_z)).any()):
        raise SpikeportError(f"ttfs_layer: inputs later than tail_z={tail_z} (the tail must be the last event)")
    return z_in, events, tail_mask, beyond


def _save(ctx, z_in, tail_z, tail_mask, *tensors) -> None:
    """Keep ``tensors`` then the tail mask (empty without a tail) for the backward pass, with
    ``tail_z`` and the input dtype (the dtype of d loss / d z_in)."""
    ctx.save_for_backward(*tensors, tail_mask if tail_mask is not None else torch.empty(0))
    ctx.tail_z = tail_z
    ctx.in_dtype = z_in.dtype


def _tail_grads(G, zo, used_tail, tail_mask, tail_z, weight, needs_w: bool, needs_z: bool):
    """The merged tail's gradient terms ``(d weight, d z_in)`` (None where not needed): the
    tail is causal only for the neurons that spike on it (``used_tail``); ``G`` is the output
    gradient over ``A - theta`` (0 where no spike), ``zo`` the spike z (0 where none)."""
    g_w = g_z = None
    if needs_w:
        g_tail = torch.where(used_tail, G * (tail_z - zo), torch.zeros_like(G))
        g_w = g_tail.t() @ tail_mask.to(weight.dtype)
    if needs_z:
        g_t = (G * used_tail) @ weight
        g_z = torch.where(tail_mask, g_t, torch.zeros_like(g_t))
    return g_w, g_z


class _TTFSLayer(torch.autograd.Function):
    """``z_out = ttfs_layer(z_in, weight, theta, tail_z)``, the PyTorch reference; see `ttfs_layer`."""

    @staticmethod
    def forward(ctx, z_in, weight, theta: float, tail_z: Optional[float], tail_mask: Optional[torch.Tensor]):
        B, n_in = z_in.shape
        n_out = weight.shape[0]
        dtype, device = weight.dtype, weight.device
        z_in, events, tail_mask, beyond = _events(z_in, dtype, tail_z, tail_mask)

        # sort the events once per sample; padding points at an all-zero weight row.
        # Work in arrival-major layout (K, B, n_out): every prefix step is a contiguous slice.
        K = int(events.sum(1).max()) if B else 0
        key = torch.where(events, z_in, torch.full_like(z_in, math.inf))
        zs, perm = torch.sort(key, dim=1)
        zs, perm = zs[:, :K].t().contiguous(), perm[:, :K].t().contiguous()    # (K, B)
        real = torch.isfinite(zs)
        perm = torch.where(real, perm, torch.full_like(perm, n_in))
        zs_prod = torch.where(real, zs, torch.zeros_like(zs))                  # z of each event, 0 on padding
        nxt = torch.cat([zs[1:], zs.new_full((1, B), math.inf)], dim=0)
        zs_next = torch.where(torch.isfinite(nxt), nxt, torch.full_like(nxt, beyond))  # time of the next event

        wt = torch.cat([weight.t(), weight.new_zeros(1, n_out)], dim=0)       # (n_in + 1, n_out)
        shape = (K, B, n_out)
        ws = _buffer("ws", shape, dtype, device)
        torch.index_select(wt, 0, perm.reshape(-1), out=ws.view(K * B, n_out))  # weights in arrival order
        A, Bz = _prefix_sums(ws, zs_prod)                                      # sums of w and w z per prefix
        # V just before the next event: V(z_next) = A - Bz / z_next (= A after the last event).
        # The first prefix whose V(z_next) exceeds theta holds the first crossing.
        v_next = torch.addcmul(A, Bz, (1.0 / zs_next)[:, :, None].expand(shape), value=-1.0, out=ws)
        valid = torch.gt(v_next, theta, out=_buffer("mask", shape, torch.bool, device))
        if K:
            has, k = valid.max(dim=0)                                          # first valid prefix (B, n_out)
            A_k = A.gather(0, k[None]).squeeze(0)
            B_k = Bz.gather(0, k[None]).squeeze(0)
            A_all, B_all = A[-1], Bz[-1]
        else:
            has = torch.zeros(B, n_out, dtype=torch.bool, device=device)
            k = torch.zeros(B, n_out, dtype=torch.long, device=device)
            A_k = B_k = A_all = B_all = weight.new_zeros(B, n_out)
        del A, Bz, valid, ws, v_next
        if tail_mask is not None:                                              # the merged last event
            w_tail = tail_mask.to(dtype) @ weight.t()
            A_t, B_t = A_all + w_tail, B_all + w_tail * tail_z
            used_tail = ~has & (A_t > theta)
            A_sel, B_sel = torch.where(has, A_k, A_t), torch.where(has, B_k, B_t)
        else:
            used_tail = torch.zeros_like(has)
            A_sel, B_sel = A_k, B_k
        spiked = has | used_tail
        k = torch.where(has, k, torch.full_like(k, K - 1))                     # last causal event index
        denom_sel = torch.where(spiked, A_sel - theta, torch.ones_like(A_sel))
        z_out = torch.where(spiked, B_sel / denom_sel, torch.full_like(A_sel, math.inf))
        _save(ctx, z_in, tail_z, tail_mask, weight, perm, zs_prod, k, spiked, used_tail, z_out, denom_sel)
        return z_out

    @staticmethod
    def backward(ctx, grad):
        weight, perm, zs_prod, k, spiked, used_tail, z_out, denom, tail_mask = ctx.saved_tensors
        tail_z = ctx.tail_z
        n_out, n_in = weight.shape
        G, zo = _output_terms(grad, spiked, denom, z_out)
        K, B = perm.shape
        shape = (K, B, n_out)
        acausal = torch.gt(torch.arange(K, device=perm.device)[:, None, None].expand(shape), k[None].expand(shape),
                           out=_buffer("mask", shape, torch.bool, perm.device))
        G3 = G[None].expand(shape)
        grad_z = grad_w = None
        if ctx.needs_input_grad[1]:
            src = torch.sub(zs_prod[:, :, None].expand(shape), zo[None].expand(shape),
                            out=_buffer("A", shape, weight.dtype, weight.device))
            src.mul_(G3).masked_fill_(acausal, 0.0)
            gwt = weight.new_zeros(n_in + 1, n_out).index_add_(0, perm.reshape(-1), src.reshape(K * B, n_out))
            grad_w = gwt[:n_in].t()
            if tail_z is not None:
                grad_w = grad_w + _tail_grads(G, zo, used_tail, tail_mask, tail_z, weight, True, False)[0]
        if ctx.needs_input_grad[0]:
            wt = torch.cat([weight.t(), weight.new_zeros(1, n_out)], dim=0)
            ws = _buffer("ws", shape, weight.dtype, weight.device)
            torch.index_select(wt, 0, perm.reshape(-1), out=ws.view(K * B, n_out))
            g_ev = ws.mul_(G3).masked_fill_(acausal, 0.0).sum(-1)              # (K, B)
            grad_z = weight.new_zeros(B, n_in + 1).scatter_add_(1, perm.t(), g_ev.t())[:, :n_in]
            if tail_z is not None:
                grad_z = grad_z + _tail_grads(G, zo, used_tail, tail_mask, tail_z, weight, False, True)[1]
            grad_z = grad_z.to(ctx.in_dtype)
        return grad_z, grad_w, None, None, None


def _output_terms(grad, spiked, denom, z_out):
    """``(G, zo)``: the output gradient over ``A - theta`` (d loss / d numerator) and the spike z,
    both 0 where a neuron does not spike (so no inf is ever multiplied)."""
    return (torch.where(spiked, grad / denom, torch.zeros_like(grad)),
            torch.where(spiked, z_out, torch.zeros_like(z_out)))


class _CompiledTTFSLayer(torch.autograd.Function):
    """The same layer as `_TTFSLayer` through the numba kernels of `models.ttfs_kernel` (CPU,
    float32 or float64): one sort and one scan per sample for all output neurons, no
    (K, B, n_out) intermediates."""

    @staticmethod
    def forward(ctx, z_in, weight, theta: float, tail_z: Optional[float], tail_mask: Optional[torch.Tensor]):
        kernel = _kernel()
        dtype = weight.dtype
        z_in, events, tail_mask, beyond = _events(z_in, dtype, tail_z, tail_mask)
        scalar = np.dtype(str(dtype).removeprefix("torch.")).type
        wt = weight.detach().t().contiguous()
        w_tail = (tail_mask.to(dtype) @ weight.detach().t() if tail_mask is not None
                  else weight.new_zeros(0, 0))
        out = kernel.forward(z_in.detach().contiguous().numpy(), events.contiguous().numpy(), wt.numpy(),
                             scalar(theta), scalar(beyond), w_tail.contiguous().numpy(),
                             scalar(0.0 if tail_z is None else tail_z))
        z_out, denom, count, spiked, used_tail, perm, zs, n = (torch.from_numpy(a) for a in out)
        _save(ctx, z_in, tail_z, tail_mask, weight, wt, z_out, denom, count, spiked, used_tail, perm, zs, n)
        return z_out

    @staticmethod
    def backward(ctx, grad):
        kernel = _kernel()
        weight, wt, z_out, denom, count, spiked, used_tail, perm, zs, n, tail_mask = ctx.saved_tensors
        n_in = weight.shape[1]
        G, zo = _output_terms(grad.to(weight.dtype), spiked, denom, z_out)
        G_np = G.contiguous().numpy()
        needs_z, needs_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_z = grad_w = None
        if needs_w:
            grad_w = torch.from_numpy(kernel.backward_weight(G_np, zo.contiguous().numpy(), count.numpy(),
                                                             perm.numpy(), zs.numpy(), n.numpy(), n_in)).t()
        if needs_z:
            grad_z = torch.from_numpy(kernel.backward_input(G_np, count.numpy(), perm.numpy(), n.numpy(),
                                                            wt.numpy(), n_in))
        if ctx.tail_z is not None:
            g_w, g_z = _tail_grads(G, zo, used_tail, tail_mask, ctx.tail_z, weight.detach(), needs_w, needs_z)
            grad_w = grad_w + g_w if needs_w else None
            grad_z = grad_z + g_z if needs_z else None
        if needs_z:
            grad_z = grad_z.to(ctx.in_dtype)
        return grad_z, grad_w, None, None, None


COMPILED = True  # CPU float32/float64 layers run `models.ttfs_kernel` when numba is installed (False: torch)


def _kernel():
    """`models.ttfs_kernel` if numba is installed, else None."""
    try:
        from models import ttfs_kernel
    except ImportError:
        return None
    return ttfs_kernel


def _use_kernel(z_in: torch.Tensor, weight: torch.Tensor, compiled: Optional[bool]) -> bool:
    """Whether this call runs the compiled layer: ``compiled`` if given (True needs numba, the
    CPU and float32/float64 weights), else `COMPILED` where the kernel can run."""
    fits = (weight.device.type == "cpu" and z_in.device.type == "cpu"
            and weight.dtype in (torch.float32, torch.float64))
    if compiled:
        if not fits or _kernel() is None:
            raise SpikeportError("ttfs_layer: the compiled layer needs numba, the CPU and float32/float64 weights")
        return True
    return compiled is None and COMPILED and fits and _kernel() is not None


_WORKSPACE: dict = {}


def _buffer(name: str, shape, dtype, device) -> torch.Tensor:
    """A reusable scratch tensor (contents undefined).

    The layer's (K, B, n_out) intermediates are tens of MB; allocating them
    fresh every call costs more than the arithmetic (page faults on memory the
    allocator returned to the OS), so they live in a per-process workspace
    that only grows. Nothing in it outlives one forward or backward call.
    """
    n = math.prod(shape)
    key = (name, dtype, str(device))
    buf = _WORKSPACE.get(key)
    if buf is None or buf.numel() < n:
        buf = _WORKSPACE[key] = torch.empty(max(n, 1), dtype=dtype, device=device)
    return buf[:n].view(shape)


def _prefix_sums(ws: torch.Tensor, z: torch.Tensor):
    """Running sums over axis 0 of ``ws`` and ``ws * z``: (K, B, n) each.

    A loop of contiguous slice additions; on the CPU this is several times
    faster than ``torch.cumsum`` along a non-innermost axis.
    """
    A = _buffer("A", ws.shape, ws.dtype, ws.device)
    Bz = _buffer("Bz", ws.shape, ws.dtype, ws.device)
    if len(ws):
        torch.mul(ws, z[:, :, None].expand(ws.shape), out=Bz)
        A[0] = ws[0]
        for i in range(1, len(ws)):
            torch.add(A[i - 1], ws[i], out=A[i])
            Bz[i].add_(Bz[i - 1])
    return A, Bz


def ttfs_layer(z_in: torch.Tensor, weight: torch.Tensor, theta: float = 1.0,
               tail_z: Optional[float] = None, tail_mask: Optional[torch.Tensor] = None,
               compiled: Optional[bool] = None) -> torch.Tensor:
    """Exact first-spike times ``z_out`` (B, n_out) of one TTFS layer.

    ``z_in``: (B, n_in) input spike times as ``z = exp(t / tau_syn)``; ``inf``
    means no spike. ``weight``: (n_out, n_in). ``tail_z``: optional common time
    of a block of inputs that spike last (merged into one event; every other
    finite input must be earlier); the block is ``tail_mask`` (B, n_in) bool,
    by default the inputs within a relative 1e-6 of ``tail_z`` (their ``z_in``
    is then taken to be exactly ``tail_z``). Returns ``inf`` for neurons that
    never spike.
    Differentiable in ``z_in`` and ``weight`` (exact gradients, see module doc).
    ``compiled``: run the numba kernels (`models.ttfs_kernel`; by default when numba is installed,
    `COMPILED` is set and the weights are float32/float64 on the CPU) or the PyTorch reference
    (False); both compute the same spike times and gradients.
    """
    if z_in.dim() != 2 or weight.dim() != 2 or z_in.shape[1] != weight.shape[1]:
        raise SpikeportError(f"ttfs_layer: z_in {tuple(z_in.shape)} does not match weight {tuple(weight.shape)}")
    if tail_mask is not None and tail_z is None:
        raise SpikeportError("ttfs_layer: tail_mask needs tail_z")
    layer = _CompiledTTFSLayer if _use_kernel(z_in, weight, compiled) else _TTFSLayer
    return layer.apply(z_in, weight, float(theta), None if tail_z is None else float(tail_z), tail_mask)


# ------------------------------------------------------------------ encoding
def encode_times(x: torch.Tensor, t_max_in: float) -> torch.Tensor:
    """Input spike times (units of tau_syn): ``t = t_max_in * (1 - x)``, brighter earlier."""
    return t_max_in * (1.0 - x)


def encode_z(x: torch.Tensor, t_max_in: float) -> torch.Tensor:
    """``z_in = exp(t_max_in * (1 - x))``; black pixels (x = 0) all get ``exp(t_max_in)``."""
    return torch.exp(encode_times(x, t_max_in))


# ------------------------------------------------------------------ network
class TTFSNetwork(nn.Module):
    """Feed-forward stack of TTFS layers, rebuilt from a plain config dict.

    Config: ``n_in``, ``sizes`` (hidden sizes then the number of classes),
    ``theta`` (threshold, shared), ``t_max_in`` (input window, units of
    tau_syn), ``init_mean``/``init_std`` (weights ~ N(init_mean / fan_in,
    init_std / sqrt(fan_in)) times theta), ``seed``.
    """

    def __init__(self, config: dict):
        super().__init__()
        cfg = {**TTFS_DEFAULTS, **copy.deepcopy(config)}
        if int(cfg.get("n_in", 0)) < 1:
            raise out_of_range("ttfs", "n_in", cfg.get("n_in"), "[1, inf)")
        if not cfg.get("sizes"):
            raise SpikeportError("ttfs: config has no layer sizes")
        if not float(cfg["theta"]) > 0:
            raise out_of_range("ttfs", "theta", cfg["theta"], "(0, inf)")
        if not float(cfg["t_max_in"]) > 0:
            raise out_of_range("ttfs", "t_max_in", cfg["t_max_in"], "(0, inf)")
        self.config = cfg
        gen = torch.Generator().manual_seed(int(cfg["seed"]))
        fan_ins = [int(cfg["n_in"])] + [int(n) for n in cfg["sizes"][:-1]]
        self.weights = nn.ParameterList()
        for fan_in, n in zip(fan_ins, cfg["sizes"]):
            w = (cfg["init_mean"] / fan_in + cfg["init_std"] / math.sqrt(fan_in) * torch.randn(n, fan_in, generator=gen))
            self.weights.append(nn.Parameter(w * cfg["theta"]))

    @property
    def theta(self) -> float:
        return float(self.config["theta"])

    @property
    def t_max_in(self) -> float:
        return float(self.config["t_max_in"])

    @property
    def sizes(self) -> list:
        return [int(n) for n in self.config["sizes"]]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return encode_z(x.to(self.weights[0].dtype), self.t_max_in)

    def forward(self, x: torch.Tensor, weights=None) -> list:
        """First-spike times ``z`` of every layer for features ``x`` (B, n_in) in [0, 1].

        ``weights`` replaces the parameters (e.g. quantized copies) if given.
        """
        z = self.encode(x)
        out, tail, mask = [], math.exp(self.t_max_in), x == 0
        for w in (weights if weights is not None else self.weights):
            z = ttfs_layer(z, w, self.theta, tail, mask)
            tail = mask = None
            out.append(z)
        return out

    def weight_sum_penalty(self, weights=None) -> torch.Tensor:
        """``sum_layers sum_j relu(theta - sum_i w_ji)`` (times K in the loss)."""
        ws = weights if weights is not None else self.weights
        return sum(torch.relu(self.theta - w.sum(1)).sum() for w in ws)


def output_logits(z_out: torch.Tensor, domain: str = "z", scale: float = 1.0) -> torch.Tensor:
    """``-scale * z_out`` (``domain="z"``, the paper) or ``-scale * t_out = -scale * ln z_out``
    (``domain="t"``), with silent neurons at the value of (largest finite z of the sample + 1),
    without gradient."""
    finite = torch.isfinite(z_out)
    zf = torch.where(finite, z_out, torch.ones_like(z_out))
    cap = (torch.where(finite, z_out, torch.zeros_like(z_out)).detach().max(dim=1, keepdim=True).values + 1.0)
    z = torch.where(finite, zf, cap.expand_as(zf))
    if domain == "t":
        return -scale * torch.log(z)
    if domain != "z":
        raise SpikeportError(f"ttfs: loss domain {domain!r} is not 'z' or 't'")
    return -scale * z


def ttfs_loss(z_out: torch.Tensor, target: torch.Tensor, penalty: torch.Tensor | float = 0.0,
              k_penalty: float = 0.0, domain: str = "z", scale: float = 1.0) -> torch.Tensor:
    """Cross-entropy over ``-z_out`` (earliest spike wins; or over ``-scale * t_out``)
    + ``k_penalty * penalty``."""
    return nn.functional.cross_entropy(output_logits(z_out, domain, scale), target) + k_penalty * penalty


def predict(z_out: torch.Tensor) -> torch.Tensor:
    """The class of the earliest output spike (index 0 when no output spikes)."""
    return torch.argmin(z_out, dim=1)
