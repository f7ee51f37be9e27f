"""How each IR op type becomes a Lava process: one registered `LavaOp` per op type.

=============  ====================================  =================================
IR op          one network per sample (tiles=1)       "tile" batch of B samples
=============  ====================================  =================================
Input          ``io.source.RingBuffer`` (n, T)         RingBuffer (B·n, T)
Dense          ``dense.Dense``                         ``sparse.Sparse``, block-diagonal
Sparse         ``sparse.Sparse`` (scipy csr)           Sparse, block-diagonal
DelayDense     ``dense.DelayDense`` (delays matrix)    ``sparse.DelaySparse``, block-diag
LIF/LIFReset   ``lif.LIF`` / ``lif.LIFReset``          the same, arrays tiled B times
Output         (no process: marks its predecessor)
=============  ====================================  =================================

A `LavaOp` says how to build the process for one node (``build(name, op, ctx)``),
what Lava would silently misread (``check(name, op, mode)``), and, for a process
Lava does not ship, which process model runs it in each mode (``models(mode)``:
``{Process: ProcessModel}``, handed to Lava's run config). `register` adds one
for an op type, so a neuron with its own Lava process is one module that edits
nothing here. Port convention, by role: sources and neurons send spikes on
``s_out``; synapses take ``s_in`` and send ``a_out``; neurons take ``a_in``;
a neuron's state variable ``x`` is a Lava Var named ``x``.

Tiling puts the B samples side by side: sample b owns the neuron indices
``[b·n, (b+1)·n)`` of every population, and every synapse is the
block-diagonal matrix ``diag(W, ..., W)`` handed to Lava with the *same
explicit* ``sign_mode``/``num_weight_bits``/``weight_exp``, so Lava quantises
each block exactly as it would quantise ``W`` alone (Lava's Sparse is
bit-identical to Dense). Scalars shared by a population (du, dv, vth) stay
scalars. (In float mode Lava's Sparse sums in another order than Dense: equal
up to float rounding.)

Units: fixed mode holds Lava's integers (weights are 8-bit mantissas scaled by
``2**weight_exp``, state on the ``<<6`` scale); float mode Lava's
``floating_pt`` floats. Lava is imported inside the builders only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import scipy.sparse as sp

from models import fixed_point as fx
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.ir.ops import check_range


@dataclass(frozen=True)
class Context:
    """What every builder needs: mode ("fixed" | "float"), tile count, input data by node."""

    mode: str
    tiles: int
    data: dict  # Input node name -> (tiles * n, T) array


@dataclass(frozen=True)
class LavaOp:
    """The Lava mapping of one op type (see the module docstring). ``build`` None: no process."""

    build: Optional[Callable]
    check: Optional[Callable] = None
    models: Optional[Callable] = None


_LAVA_OPS: dict[type, LavaOp] = {}


def register(op_type: type, build: Optional[Callable], check: Optional[Callable] = None,
             models: Optional[Callable] = None) -> LavaOp:
    """Map ``op_type`` (and its subclasses without a mapping of their own) onto Lava."""
    entry = LavaOp(build, check, models)
    _LAVA_OPS[op_type] = entry
    return entry


def lava_op(name: str, op: irm.Op) -> LavaOp:
    """The mapping registered for ``op``'s type or nearest base; a one-line error otherwise."""
    for cls in type(op).__mro__:
        if cls in _LAVA_OPS:
            return _LAVA_OPS[cls]
    raise SpikeportError(f"{name}: op {op.kind} has no Lava mapping (known: "
                         f"{', '.join(t.__name__ for t in _LAVA_OPS)})")


def tile_neuron(kw: dict, tiles: int) -> dict:
    """Per-neuron arrays repeated ``tiles`` times; population scalars unchanged."""
    return {k: np.tile(v, tiles) if np.ndim(v) == 1 else v for k, v in kw.items()}


def require_fixed(name: str, op: irm.Op) -> None:
    if op.fixed is None:
        raise SpikeportError(f"{name}: IR is float; compile/quantize first (no fixed-point parameters)")


def integer(node: str, param: str, value, why: str) -> None:
    if not float(value).is_integer():
        raise SpikeportError(f"{node}: {param}={value} is not an integer ({why})")


INT16 = (-(1 << 15), (1 << 15) - 1)
INT32 = (fx.INT32_MIN, fx.INT32_MAX)
SHIFT32 = (-31, 31)  # numpy shifts of int32 by 32 or more are undefined
BIAS_LIMIT = 1 << 30  # v = vd + u + bias is summed in int32 before saturation


# ---------------------------------------------------------------------- Input
def _input(name: str, op: irm.Input, ctx: Context):
    from lava.proc.io.source import RingBuffer

    return RingBuffer(data=ctx.data[name])


# ------------------------------------------------------------------- synapses
def synapse_kwargs(name: str, op: irm.Dense, mode: str) -> dict:
    """Keyword arguments for a Lava Dense/Sparse process (weights as an (n_out, n_in) array).

    Fixed: ``op.lava_kwargs()``, with a NULL sign mode resolved the way Lava
    resolves it for the untiled matrix (so tiling cannot change it). Float:
    the float weights; Lava's float models ignore the quantisation kwargs.
    """
    if mode == "fixed":
        require_fixed(name, op)
        kw = op.lava_kwargs()
        if kw["sign_mode"] == fx.SignMode.NULL:
            kw["sign_mode"] = int(fx.infer_sign_mode(kw["weights"]))
        return kw
    kw = dict(weights=op.weight, num_message_bits=int(op.num_message_bits))
    if op.delays is not None:
        kw["delays"] = op.delays
    return kw


def _check_synapse(name: str, op: irm.Dense, mode: str) -> None:
    kw = synapse_kwargs(name, op, mode)
    check_range(name, "num_message_bits", kw["num_message_bits"], 0, 32)
    if "delays" in kw:
        check_range(name, "delay", kw["delays"], 0, fx.MAX_DELAY, " (Loihi 2: 6-bit delays)")
    if mode == "fixed":
        check_range(name, "weights", kw["weights"], *INT32, " (Lava stores weights as int32)")
        check_range(name, "num_weight_bits", kw["num_weight_bits"], 0, fx.WEIGHT_BITS)
        check_range(name, "weight_exp", kw["weight_exp"], *SHIFT32, " (int32 shift)")
        check_range(name, "sign_mode", kw["sign_mode"], min(fx.SignMode), max(fx.SignMode))


def _lava_synapse_kwargs(name: str, op: irm.Dense, ctx: Context) -> dict:
    """`synapse_kwargs` with ``sign_mode`` as Lava's own enum.

    Lava's ``SignMode`` is a plain ``Enum``: an int 1 or 3 compares unequal
    to MIXED/INHIBITORY, and Lava then silently treats the matrix as
    excitatory (negative weights clipped to 0).
    """
    from lava.utils.weightutils import SignMode

    kw = synapse_kwargs(name, op, ctx.mode)
    if "sign_mode" in kw:
        kw["sign_mode"] = SignMode(int(kw["sign_mode"]))
    return kw


def _block_diag(matrix: np.ndarray, tiles: int, dtype) -> sp.csr_matrix:
    return sp.block_diag([sp.csr_matrix(np.asarray(matrix, dtype=dtype))] * tiles, format="csr")


def _tile_synapse(kw: dict, tiles: int) -> dict:
    """Weights (and delays, masked to existing synapses) as block-diagonal csr matrices."""
    weights = np.asarray(kw["weights"])
    out = dict(kw, weights=_block_diag(weights, tiles, weights.dtype))
    if "delays" in kw:
        delays = np.where(weights != 0, np.asarray(kw["delays"], dtype=np.int64), 0)
        out["delays"] = _block_diag(delays, tiles, np.int64)
        out["max_delay"] = int(np.max(kw["delays"], initial=0))
    return out


def _dense(name: str, op: irm.Dense, ctx: Context):
    kw = _lava_synapse_kwargs(name, op, ctx)
    if ctx.tiles == 1 and type(op) is irm.Dense:
        from lava.proc.dense.process import Dense

        return Dense(name=name, **kw)
    from lava.proc.sparse.process import Sparse

    return Sparse(name=name, **_tile_synapse(kw, ctx.tiles))


def _delay_dense(name: str, op: irm.DelayDense, ctx: Context):
    kw = _lava_synapse_kwargs(name, op, ctx)
    if ctx.tiles == 1:
        from lava.proc.dense.process import DelayDense

        return DelayDense(name=name, max_delay=int(np.max(kw["delays"], initial=0)), **kw)
    from lava.proc.sparse.process import DelaySparse

    return DelaySparse(name=name, **_tile_synapse(kw, ctx.tiles))


# ------------------------------------------------------------------------ LIF
def neuron_kwargs(name: str, op: irm.LIF, mode: str) -> dict:
    """Keyword arguments for a Lava LIF/LIFReset process.

    Fixed: ``op.lava_kwargs()``. Float: ``du, dv, vth`` as given,
    ``bias_mant = bias``, ``bias_exp = 0`` (ignored by Lava's float model).
    """
    if mode == "fixed":
        require_fixed(name, op)
        return op.lava_kwargs()
    kw = dict(du=op.du, dv=op.dv, vth=op.vth, bias_mant=op.bias, bias_exp=0)
    if isinstance(op, irm.LIFReset):
        kw.update(reset_interval=int(op.reset_interval), reset_offset=int(op.reset_offset))
    return kw


def _check_lif(name: str, op: irm.LIF, mode: str) -> None:
    """Lava's storage and arithmetic limits of its LIF (int16 ``bias_mant``, int32 state,
    integer ``du/dv/vth``: its fixed_pt model hangs on a non-integer)."""
    kw = neuron_kwargs(name, op, mode)
    if "reset_interval" in kw:
        check_range(name, "reset_interval", kw["reset_interval"], 1, np.inf)
    if mode != "fixed":
        return
    for param in ("du", "dv", "vth"):
        integer(name, param, kw[param], "Lava's fixed_pt LIF hangs on a non-integer value")
    check_range(name, "du", kw["du"], *fx.DU_RANGE, " (12 bits; -1 = no current decay)")
    check_range(name, "dv", kw["dv"], *fx.DV_RANGE, " (12 bits)")
    check_range(name, "bias_mant", kw["bias_mant"], *INT16, " (Lava stores it as int16)")
    check_range(name, "bias_exp", kw["bias_exp"], *SHIFT32, " (int32 shift)")
    bias = fx.effective_bias(np.asarray(kw["bias_mant"], np.float64), kw["bias_exp"])
    check_range(name, "bias_mant << bias_exp", bias, -BIAS_LIMIT, BIAS_LIMIT, " (int32 voltage sum)")
    for state in ("u", "v"):
        check_range(name, state, kw[state], *INT32, " (Lava stores it as int32)")


def _lif(name: str, op: irm.LIF, ctx: Context):
    from lava.proc.lif.process import LIF, LIFReset

    cls = LIFReset if isinstance(op, irm.LIFReset) else LIF
    return cls(name=name, shape=(op.n * ctx.tiles,), **tile_neuron(neuron_kwargs(name, op, ctx.mode), ctx.tiles))


register(irm.Input, _input)
register(irm.Dense, _dense, _check_synapse)
register(irm.DelayDense, _delay_dense, _check_synapse)
register(irm.LIF, _lif, _check_lif)
register(irm.Output, None)  # no process: an Output marks its predecessor's spikes
