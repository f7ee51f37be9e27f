"""Running a deployed TTFS IR and reading its first spikes out (emulator or Lava), and the
continuous-time reference. Step index ``i`` (0-based) stands for time ``i * dt`` (units of tau_syn).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from models import fixed_point as fx
from models.errors import SpikeportError
from models.ttfs_layer import TTFSNetwork
from toolchain import engines, scaleout
from toolchain.methods.ttfs.lower import encode_input, layer_nodes


def first_spike_index(s: np.ndarray) -> np.ndarray:
    """(B, T, n) spikes -> (B, n) index of the first spike, ``inf`` if none."""
    s = np.asarray(s) != 0
    idx = np.argmax(s, axis=1).astype(np.float64)
    idx[~s.any(axis=1)] = np.inf
    return idx


def output_readout(s, v, u, vth_eff: float):
    """Earliest output spike, ties broken by the interpolated crossing time.

    With dv = 0 and no bias the pre-reset membrane at the spike step i is
    ``v[i-1] + u[i]``, so the threshold crossing lies at fraction
    ``f = (vth - v[i-1]) / u[i]`` of the step: time ``(i - 1 + f) dt``. Returns
    (prediction (B,), first index (B, n) with inf, interpolated time in steps (B, n),
    whether any output spiked (B,)). Without any output spike the prediction is the
    neuron with the largest final membrane.
    """
    s, v, u = (np.asarray(a, dtype=np.float64) for a in (s, v, u))
    first = first_spike_index(s)
    B, T, n = s.shape
    i = np.where(np.isfinite(first), first, 0).astype(np.int64)
    bi, ni = np.meshgrid(np.arange(B), np.arange(n), indexing="ij")
    v_prev = np.where(i > 0, v[bi, np.maximum(i - 1, 0), ni], 0.0)
    u_i = u[bi, i, ni]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((vth_eff - v_prev) / u_i, 0.0, 1.0)
    frac = np.where(np.isfinite(frac), frac, 1.0)
    t_interp = np.where(np.isfinite(first), i - 1 + frac, np.inf)
    any_spike = np.isfinite(first).any(1)
    key = np.where(np.isfinite(first), first + frac * 0.999, np.inf)   # sorts by step, then by fraction
    pred = np.where(any_spike, np.argmin(key, axis=1), np.argmax(v[:, -1], axis=1))
    return pred, first, t_interp, any_spike


def vth_effective(ir, node: str, mode: str) -> float:
    """The value v must exceed to spike, in the engine's units (fixed: vth << 6)."""
    op = ir.op(node)
    return float(fx.effective_threshold(op.fixed.vth)) if mode == "fixed" else float(op.vth)


def run_deployed(ir, x, *, engine: str = "emulator", mode: str = "fixed", batch_size: int = 250,
                 record_hidden_state: bool = False, progress: bool = False) -> dict:
    """Run the deployed IR on features ``x`` (B, n_in) and read it out.

    Returns ``pred`` (B,), ``first`` {layer node: (B, n) first-spike index, inf if none},
    ``t_out_interp`` (B, n_out) interpolated output times in steps, ``any_output`` (B,),
    ``spike_counts`` {node: (B, n)} (to see re-firing), and ``raw`` (the engine's
    arrays for the output population, and all populations if ``record_hidden_state``).
    """
    neurons = layer_nodes(ir)
    out_node = neurons[-1]
    if engine not in ("emulator", "lava"):
        raise SpikeportError(f"ttfs: engine={engine!r} is not 'emulator' or 'lava'")
    name = engines.named(engine, mode)
    x = np.asarray(x)
    res = dict(pred=[], t_out_interp=[], any_output=[], first={n: [] for n in neurons},
               spike_counts={n: [] for n in neurons}, raw={})
    vth = vth_effective(ir, out_node, mode)
    bar = tqdm(range(0, len(x), batch_size), disable=not progress, desc=f"{engine} {mode}", leave=False)
    for i in bar:
        xin = encode_input(x[i:i + batch_size], ir.meta)
        record = [f"{n}/s" for n in neurons] + [f"{out_node}/v", f"{out_node}/u"]
        if record_hidden_state:
            record = [f"{n}/{f}" for n in neurons for f in ("s", "v", "u")]
        out = scaleout.run(name, ir, xin, record)
        pred, _, t_int, any_out = output_readout(out[f"{out_node}/s"], out[f"{out_node}/v"],
                                                 out[f"{out_node}/u"], vth)
        res["pred"].append(pred)
        res["t_out_interp"].append(t_int)
        res["any_output"].append(any_out)
        for n in neurons:
            res["first"][n].append(first_spike_index(out[f"{n}/s"]))
            res["spike_counts"][n].append((np.asarray(out[f"{n}/s"]) != 0).sum(1).astype(np.int32))
        for key, arr in out.items():
            if record_hidden_state or key.startswith(out_node + "/"):
                res["raw"].setdefault(key, []).append(arr)
    cat = lambda a: np.concatenate(a) if a else np.empty(0)  # noqa: E731
    res["pred"], res["t_out_interp"], res["any_output"] = (cat(res[k]) for k in ("pred", "t_out_interp", "any_output"))
    res["first"] = {n: cat(v) for n, v in res["first"].items()}
    res["spike_counts"] = {n: cat(v) for n, v in res["spike_counts"].items()}
    res["raw"] = {k: cat(v) for k, v in res["raw"].items()}
    return res


@torch.no_grad()
def continuous_times(model: TTFSNetwork, x, batch_size: int = 500) -> list:
    """Exact continuous first-spike times (units of tau_syn, inf = none) of every layer: [(B, n)]."""
    outs = None
    for i in range(0, len(x), batch_size):
        zs = model(torch.as_tensor(np.asarray(x[i:i + batch_size])))
        ts = [torch.log(z).double().numpy() for z in zs]
        outs = [[t] for t in ts] if outs is None else [o + [t] for o, t in zip(outs, ts)]
    return [np.concatenate(o) for o in outs]

