"""Write a fixed-point IR as a Lava-DL netx ``.net`` file that netx loads into exactly
the integers spikeport runs, or refuse in one line naming the layer and the reason.

The network must be a chain ``Input -> [Feed ->] LIF -> Dense -> LIF -> ...``
(each LIF one layer; a Dense from a LIF to itself makes it a ``dense_rec``).
Per layer (`toolchain.netx.rules` has netx's rules):

* neuron: a plain LIF (no periodic reset: netx takes that from
  ``Network(reset_interval=...)``), initial u = v = 0, written as CUBA with
  ``iDecay = du + 1``, ``vDecay = dv``, ``vThMant = vth``, ``refDelay`` 1,
  ``gradedSpike`` False; its bias ``bias_mant << bias_exp`` must be a multiple
  of 64 (netx hands Lava ``bias_exp`` 6), written as ``bias = that / 64``;
* weights: every synapse's contribution ``W_lava * 2**weight_exp`` must be an
  integer (netx sums integer weights and shifts nothing away), and netx's
  ``optimize_weight_bits`` followed by Lava's clip and truncation must give it back
  exactly, for ``weight`` and ``weight_rec`` optimised together (so no weight of
  255 beside negative ones, lava-dl issue 170; no all-zero matrix);
* delays: per-output (every nonzero synapse into a neuron shares its delay; netx
  broadcasts an ``(out,)`` vector) or per-input (``(in,)``, when out != in), at
  most 62 (netx clamps above); none in a recurrent layer;
* binary spikes only (no graded synapse or Input: netx reads none from the file);
* a float network lowered from a checkpoint (``meta`` names its task and encoding)
  is first quantized onto netx's grid (`toolchain.netx.grid`); a compiled ``.onnx``
  whose integers netx cannot hold is refused, never requantized;
* a `Feed` (a netx input layer's a_in feed) becomes an ``input`` layer with its
  gain as ``weight`` and offset as ``bias``; its LIF must have no bias.

Units as in the IR: integers of Lava's fixed_pt models.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from models import fixed_point as fx
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.files import atomic_path
from toolchain.ir import passes
from toolchain.netx import rules


@dataclass
class Layer:
    """One netx layer: its LIF node, forward synapse (or Feed) node, optional recurrent synapse."""

    neuron: str
    synapse: str
    recurrent: Optional[str] = None
    fields: dict = field(default_factory=dict)


def write(ir: irm.IR, path) -> None:
    """Check ``ir`` (module docstring) and write it to ``path`` atomically.

    A float network that names its task (a lowered checkpoint) is first quantized onto
    netx's grid (`toolchain.netx.grid`), calibrated on the task's training inputs.
    """
    if not ir.is_fixed and "task" in ir.meta and "encoding" in ir.meta:
        ir = _quantized_for_netx(ir)
    layers = chain(ir)
    passes.validate(ir, require_fixed=True)  # Loihi 2 ranges: the file reads back into a network spikeport runs
    layers = [_fields(ir, layer, i) for i, layer in enumerate(layers)]
    import h5py  # lazy: only this format needs it

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            group = f.create_group("layer")
            for i, layer in enumerate(layers):
                _write_group(group.create_group(str(i)), layer.fields)


CALIBRATION_SAMPLES = 256  # training inputs, as `spikeport compile` takes by default


def _quantized_for_netx(ir: irm.IR) -> irm.IR:
    from toolchain.methods.superspike.compile import calibration_inputs  # lazy: task data
    from toolchain.netx.grid import quantize_for_netx

    fixed, lines = quantize_for_netx(ir, calibration_inputs(ir.meta, CALIBRATION_SAMPLES))
    warnings.warn(f"{ir.name}: quantized onto netx's grid (weight_exp 0, bias_exp 6; {CALIBRATION_SAMPLES} "
                  f"calibration inputs): " + "; ".join(lines), UserWarning, stacklevel=2)
    return fixed


def _write_group(g, fields: dict) -> None:
    for key, value in fields.items():
        if isinstance(value, dict):
            _write_group(g.create_group(key), value)
        else:
            g.create_dataset(key, data=value)


# ------------------------------------------------------------------ structure
def chain(ir: irm.IR) -> list[Layer]:
    """The IR as netx layers, first to last; one-line refusal for any other graph."""
    if not ir.is_fixed:
        raise SpikeportError(f"{ir.name}: float parameters and no task to calibrate on; a netx file holds "
                             "integers (export the training checkpoint, which is quantized onto netx's grid)")
    inputs = ir.names(irm.Input)
    if len(inputs) != 1:
        raise SpikeportError(f"{ir.name}: netx networks have one input, this one has {len(inputs)} Input nodes")
    source, layers = inputs[0], []
    if ir.op(source).num_message_bits:
        raise SpikeportError(f"{source}: graded input (num_message_bits={ir.op(source).num_message_bits}); netx "
                             "reads input message bits from Network(input_message_bits=...), not the file")
    while True:
        forward = [s for s in ir.outputs(source) if isinstance(ir.op(s), irm.Synapse)
                   and not (source in ir.names(irm.Neuron) and ir.outputs(s) == [source])]
        if not forward:
            break
        if len(forward) > 1:
            raise SpikeportError(f"{source}: feeds {len(forward)} synapses {forward}; netx layers form a chain")
        layers.append(_layer(ir, forward[0], source))
        source = layers[-1].neuron
    if not layers:
        raise SpikeportError(f"{ir.name}: no neuron layer after the input")
    covered = {n for layer in layers for n in (layer.neuron, layer.synapse, layer.recurrent) if n} | {inputs[0]}
    extra = [n for n, op in ir.nodes() if n not in covered and not isinstance(op, irm.Sink)]
    if extra:
        raise SpikeportError(f"{extra[0]}: not part of the layer chain netx can express")
    return layers


def _layer(ir: irm.IR, synapse: str, source: str) -> Layer:
    targets = ir.outputs(synapse)
    if len(targets) != 1 or not isinstance(ir.op(targets[0]), irm.Neuron):
        raise SpikeportError(f"{synapse}: feeds {targets}; a netx layer's synapse feeds one neuron population")
    neuron = targets[0]
    others = [s for s in ir.inputs(neuron) if s != synapse]
    recurrent = [s for s in others if ir.inputs(s) == [neuron]]
    if len(others) > 1 or len(recurrent) != len(others):
        raise SpikeportError(f"{neuron}: has inputs {ir.inputs(neuron)}; a netx layer has one forward synapse "
                             "and at most one recurrent synapse from itself")
    return Layer(neuron, synapse, recurrent[0] if recurrent else None)


# ------------------------------------------------------------------ per layer
def _fields(ir: irm.IR, layer: Layer, i: int) -> Layer:
    lif, syn = ir.op(layer.neuron), ir.op(layer.synapse)
    where = f"layer {i} ({layer.neuron})"
    neuron, bias = _neuron(lif, where)
    if isinstance(syn, irm.Feed):
        if i != 0:
            raise SpikeportError(f"{where}: a Feed (netx input layer) must be the first layer")
        if bias.any():
            raise SpikeportError(f"{where}: an input layer's neuron has no bias in netx (bias [{bias.min()}, "
                                 f"{bias.max()}]); its file bias is the feed's offset")
        layer.fields = {"type": _text("input"), "shape": np.array([lif.n], np.int64),
                        "weight": np.int64(syn.fixed.gain), "bias": np.int64(syn.fixed.offset), "neuron": neuron}
        return layer
    if layer.recurrent and syn.delays is not None and np.any(syn.delays):
        raise SpikeportError(f"{where}: delays in a recurrent layer; netx reuses them for the recurrent synapse "
                             "and drops weight_exp")
    names = [layer.synapse] + ([layer.recurrent] if layer.recurrent else [])
    matrices = [_file_weights(n, ir.op(n), where) for n in names]
    _check_netx_reproduces(matrices, names, where)
    fields = {"type": _text("dense_rec" if layer.recurrent else "dense"), "shape": np.array([lif.n], np.int64),
              "inFeatures": np.int64(matrices[0].shape[1]), "outFeatures": np.int64(lif.n),
              "weight": matrices[0].astype(np.float32), "neuron": neuron}
    if layer.recurrent:
        fields["weight_rec"] = matrices[1].astype(np.float32)
    if bias.any():
        fields["bias"] = bias.astype(np.float32)
    delay = _delays(syn, matrices[0], where)
    if delay is not None:
        fields["delay"] = delay.astype(np.float32)
    layer.fields = fields
    return layer


def _text(s: str) -> np.ndarray:
    return np.array([s.encode("ascii")], dtype="S10")


def _neuron(op: irm.Neuron, where: str) -> tuple[dict, np.ndarray]:
    """The ``neuron`` group of a plain LIF, and its bias in netx's units (``<< 6``)."""
    if type(op) is not irm.LIF:
        raise SpikeportError(f"{where}: {op.kind} neurons cannot be written (netx builds LIF; a periodic reset "
                             "comes from Network(reset_interval=...), not the file)")
    f = op.fixed
    if f.u.any() or f.v.any():
        raise SpikeportError(f"{where}: nonzero initial u or v; netx starts every neuron at 0")
    scaled = f.bias_mant * 2.0 ** f.bias_exp
    bias = scaled / 2.0 ** rules.BIAS_EXP
    if np.any(bias != np.trunc(bias)):
        bad = int(np.flatnonzero(bias != np.trunc(bias))[0])
        raise SpikeportError(f"{where}: bias_mant {int(f.bias_mant[bad])} << bias_exp {int(f.bias_exp[bad])} (neuron {bad}) is "
                             f"not a multiple of 64; netx hands Lava every bias with bias_exp {rules.BIAS_EXP}")
    lo, hi = fx.BIAS_MANT_RANGE
    if bias.size and (bias.min() < lo or bias.max() > hi):
        raise SpikeportError(f"{where}: bias {bias.min() if bias.min() < lo else bias.max():g} << 6 is outside "
                             f"[{lo}, {hi}] (13-bit bias mantissa at bias_exp 6)")
    neuron = {"type": _text("CUBA"), "iDecay": np.int64(f.du + 1), "vDecay": np.int64(f.dv),
              "vThMant": np.int64(f.vth), "refDelay": np.int64(1), "gradedSpike": np.bool_(False)}
    return neuron, bias.astype(np.int64)


def _file_weights(name: str, op: irm.Op, where: str) -> np.ndarray:
    """Each synapse's exact current contribution ``W_lava * 2**weight_exp``: the file's integers."""
    if not isinstance(op, irm.Dense):
        raise SpikeportError(f"{where}: {name} is a {op.kind}; netx layers have dense synapses")
    if op.num_message_bits:
        raise SpikeportError(f"{where}: {name} takes graded spikes (num_message_bits={op.num_message_bits}); "
                             "netx neurons send binary spikes")
    f = op.fixed
    mode = fx.SignMode(int(f.sign_mode))
    if mode == fx.SignMode.NULL:
        mode = fx.infer_sign_mode(f.weights)
    kept = fx.lava_weights(f.weights.astype(np.float64), int(f.num_weight_bits), mode)
    current = kept * 2.0 ** int(f.weight_exp)
    if np.any(current != np.trunc(current)):
        bad = np.flatnonzero(current != np.trunc(current))[0]
        raise SpikeportError(f"{where}: {name} weight {int(kept.flat[bad])} with weight_exp {f.weight_exp} adds "
                             f"{current.flat[bad]:g} per spike, not an integer; netx sums integer weights "
                             "(recompile with weight_exp >= 0 or mantissas divisible by the shift)")
    return current.astype(np.int64)


def _check_netx_reproduces(matrices: list, names: list, where: str) -> None:
    """netx's optimize_weight_bits, then Lava's clip and truncation, must give ``matrices`` back."""
    if not any(m.any() for m in matrices):
        raise SpikeportError(f"{where}: all weights are zero; netx's optimize_weight_bits cannot load that")
    syns, opt = rules.lava_synapses(matrices)
    if opt.notes:
        raise SpikeportError(f"{where}: netx would change the weights: {opt.notes[0]}")
    for name, m, syn in zip(names, matrices, syns):
        back = rules.currents_per_spike(syn)
        if not np.array_equal(back, m):
            bad = np.flatnonzero(back != m)[0]
            raise SpikeportError(f"{where}: {name}: netx and Lava would turn weight {m.flat[bad]} into "
                                 f"{back.flat[bad]:g} per spike (num_weight_bits {syn.num_weight_bits}, "
                                 f"weight_exp {syn.weight_exp})")


def _delays(op: irm.Dense, current: np.ndarray, where: str) -> Optional[np.ndarray]:
    """The ``delay`` vector netx broadcasts back to the IR's delays on every nonzero synapse."""
    if op.delays is None or not np.any(op.delays[current != 0]):
        return None
    d = np.where(current != 0, op.delays, -1)
    for axis, label in ((1, "output"), (0, "input")):
        top = d.max(axis=axis)
        low = np.where(d >= 0, d, top.max() + 1).min(axis=axis)
        if np.all((low == top) | (top < 0)) and (axis == 1 or d.shape[0] != d.shape[1]):
            vector = np.maximum(top, 0)
            if vector.max() > rules.MAX_DELAY:
                raise SpikeportError(f"{where}: delay {vector.max()} exceeds netx's {rules.MAX_DELAY} (netx clamps "
                                     "it; lava-dl issues 214, 226)")
            return vector
    raise SpikeportError(f"{where}: per-synapse delays differ within a neuron's inputs; netx takes one delay "
                         "per output neuron (or per input)")
