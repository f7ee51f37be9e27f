"""Hand-built probe networks for the engine tests: one LIF population behind one synapse.

`single` builds Input -> Dense -> LIF ("n") -> Output ("out") from integer parameters in
Lava's units; `lif` and `dense` give the fixed-point records together with float
parameters in the same units; `impulse` is a one-step input; `trace` runs the emulator
and returns the probe population's s, v, u as lists (index i is step i + 1).
"""
import numpy as np

from backends.emulator import run
from models import fixed_point as fx
from toolchain import ir as irm

MIXED, EXC, INH = int(fx.SignMode.MIXED), int(fx.SignMode.EXCITATORY), int(fx.SignMode.INHIBITORY)


def lif(n=1, du=-1, dv=0, vth=(1 << 17) - 1, bias_mant=0, bias_exp=0, u=0, v=0, reset=None):
    """A LIF (or LIFReset) with fixed parameters; float parameters in the same units."""
    full = lambda a: np.broadcast_to(np.asarray(a, dtype=np.int64), (n,))  # noqa: E731
    fixed = irm.LIFFixed(du=du, dv=dv, vth=vth, bias_mant=full(bias_mant), bias_exp=full(bias_exp),
                         u=full(u), v=full(v))
    kw = dict(du=(du + 1) / 4096, dv=dv / 4096, vth=vth * 64.0,
              bias=fx.effective_bias(full(bias_mant).astype(float), full(bias_exp)), fixed=fixed)
    if reset is None:
        return irm.LIF(n, **kw)
    return irm.LIFReset(n, reset_interval=reset[0], reset_offset=reset[1], **kw)


def dense(weights, weight_exp=0, bits=0, sign_mode=0, num_weight_bits=8, delay=None, cls=irm.Dense):
    w = np.atleast_2d(np.asarray(weights, dtype=np.int64))
    fixed = irm.SynapseFixed(w, weight_exp=weight_exp, num_weight_bits=num_weight_bits, sign_mode=sign_mode)
    kw = {} if delay is None else dict(delay=np.asarray(delay))
    return cls(w * 2.0 ** weight_exp, num_message_bits=bits, fixed=fixed, **kw)


def single(neuron=None, weights=((1,),), graded=False, **syn):
    """Input -> Dense -> LIF ("n") -> Output ("out")."""
    neuron = neuron or lif()
    w = np.atleast_2d(weights)
    ir = irm.IR("probe")
    ir.add("in", irm.Input(w.shape[1], num_message_bits=16 if graded else 0))
    ir.add("syn", dense(w, bits=16 if graded else 0, **syn), ["in"])
    ir.add("n", neuron, ["syn"])
    ir.add("out", irm.Output(neuron.n), ["n"])
    return ir


def impulse(steps, n_in=1, at=0, value=1):
    x = np.zeros((steps, n_in), dtype=np.int64)
    x[at] = value
    return x


def trace(ir, x, key="n", mode="fixed", check=True):
    """``check=False``: a probe of Lava's arithmetic outside Loihi's ranges (`backends.emulator.prepare`)."""
    out = run(ir, x, mode=mode, check=check)
    return {f: out[f"{key}/{f}"][0, :, 0].tolist() for f in "svu"}
