"""The torch fixed mode of a deployed theta network: the fixed-point QIF IR, run in torch.

Computes exactly the integers the emulator and Lava ``fixed_pt`` compute (every ``s``,
``u`` and ``x`` of every step; `tests/test_smooth_qat.py` pins it), for the IR that
`toolchain.methods.smooth.lower` builds: ``input -> dense -> QIF -> dense -> QIF ...``.
The step rule is `models.qif_fixed` (the emulator's own); the synapses are Lava's fixed
Dense (``a_in[t] = (W_int . s[t-1]) << weight_exp`` in int32, the weights as
`backends.emulator.arith.FixedArith.weights` reads them). Steps are 1-based; recordings
are keyed and shaped as every engine's (``"l1/s"``: (B, steps, n), `toolchain.engines`).

The whole batch and a layer's whole time axis go through one matrix product per layer
(layer l needs only layer l-1's spikes), then the neuron steps run elementwise: a batch
of 1000 MNIST images takes about a second, so QAT (`toolchain.methods.smooth.qat`) can
run it in every training step. No gradient flows through it.
"""
from __future__ import annotations

import numpy as np
import torch

from backends.emulator.arith import FixedArith
from models import fixed_point as fx
from models import qif_fixed
from models.errors import SpikeportError
from toolchain.ir.ops.qif import check_current, check_state


def layers_of(ir) -> list:
    """``[(dense op, QIF op, node name)]`` in order; a one-line refusal for any other IR shape."""
    meta = ir.meta.get("smooth")
    if meta is None:
        raise SpikeportError(f"torch-fixed: IR {ir.name!r} is not a deployed theta network (no 'smooth' metadata)")
    chain = [(ir.op(f"l{l}.dense"), ir.op(f"l{l}"), f"l{l}") for l in range(1, meta["layers"] + 1)]
    for dense, op, name in chain:
        if dense.fixed is None or op.fixed is None:
            raise SpikeportError(f"torch-fixed: {name} has no fixed-point record; quantize the IR first")
    return chain


@torch.no_grad()
def run(ir, x, record_state: bool = True) -> dict:
    """Run the IR's integers on inputs ``x`` (B, steps, n_in): ``{"l<l>/s"|"/u"|"/x": (B, steps, n)}``
    (``s`` int8, ``u`` and ``x`` int32, as the emulator records them); with ``record_state=False``
    only every ``s`` and the last layer's ``x``."""
    s = torch.as_tensor(np.asarray(x) != 0, dtype=torch.float64).transpose(0, 1)  # (steps, B, n)
    chain, out = layers_of(ir), {}
    for i, (dense, op, name) in enumerate(chain):
        kept = ("s", "u", "x") if record_state else ("s", "x") if i == len(chain) - 1 else ("s",)
        trace = _layer(_synapse(dense, s), op, name, kept)
        s = trace["s"]
        for var in kept:
            out[f"{name}/{var}"] = trace[var].transpose(0, 1).numpy().astype(np.int8 if var == "s" else np.int32)
    return out


def _synapse(dense, s: torch.Tensor) -> torch.Tensor:
    """(steps, B, n_out) input of each step: the source's spikes one step earlier, weighted and
    shifted as Lava's fixed Dense does."""
    w = torch.as_tensor(FixedArith.weights(dense), dtype=torch.float64)
    acc = torch.zeros(s.shape[0], s.shape[1], w.shape[0], dtype=torch.float64)
    acc[1:] = s[:-1] @ w.t()  # exact: |W| < 2**8, fan-in < 2**20
    return fx.shift_by_weight_exp(acc, int(dense.fixed.weight_exp))


def _layer(a: torch.Tensor, op, name: str, kept=("s", "u", "x")) -> dict:
    """Step the QIF population through every step of ``a`` (steps, B, n); the ``kept`` traces."""
    f = op.fixed
    steps, B, n = a.shape
    bias = torch.as_tensor(f.bias, dtype=torch.float64)
    u = torch.as_tensor(f.u, dtype=torch.float64).expand(B, n).clone()
    x = torch.as_tensor(f.x, dtype=torch.float64).expand(B, n).clone()
    trace = {var: torch.empty(steps, B, n, dtype=torch.float64) for var in kept}
    for t in range(steps):
        u = qif_fixed.current(u, a[t], f.du)
        check_current(name, u, t + 1)
        x = qif_fixed.voltage(x, u, bias, f.k, f.frac, f.u_shift)
        check_state(name, x, t + 1)
        s, x = qif_fixed.fire(x, f.x_th, f.x_reset)
        for var, value in (("s", s), ("u", u), ("x", x)):
            if var in kept:
                trace[var][t] = value
    return trace
