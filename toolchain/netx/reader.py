"""Read a Lava-DL netx ``.net`` file into the IR that netx-on-Lava runs.

netx (lava-dl 0.6.0, ``netx.hdf5.Network``) walks ``layer/0, layer/1, ...``;
spikeport applies the same rules (`toolchain.netx.rules`) and builds, per layer:

==============  ================================================================
netx layer      IR nodes (``i`` = the layer index)
==============  ================================================================
input + neuron  ``input`` (Input) -> ``layer<i>.feed`` (Feed: ``weight * x + bias``,
                same step) -> ``layer<i>`` (LIF)
input, no       nothing (the input size only)
neuron
flatten         nothing (only where it is the identity: a 1-D previous layer)
dense           ``layer<i>.dense`` (Dense, or DelayDense with ``delay``) -> ``layer<i>`` (LIF)
dense_rec       as dense, plus ``layer<i>.rec`` (Dense) from ``layer<i>`` to itself
==============  ================================================================

and an ``output`` (Output) on the last layer. Every neuron population is a
layer, in layer order, so ``spikeport simulate`` records ``layer<i>/s|v|u`` as
netx's ``net.layers[k].neuron`` holds them. Fed by ``input``: the first dense
layer's synapse takes ``net.inp``'s spikes (arriving one step later, like any
dense layer); an input layer's neuron takes them the same step.

Refused, one line naming the layer index: conv, pool, convT, unpool, average,
concat, dense_comp (RF) layers; SDNN and RF neurons; a flatten that would
reorder a 3-D layer; a delayed ``dense_rec`` (netx reuses the forward delays and
drops ``weight_exp``); weights or delays whose shape netx cannot broadcast.
What netx changes from what SLAYER trained (weights clipped or zeroed, delays
clamped, graded spikes run binary, weights truncated to integers) is kept as
netx does it and reported as a warning and in the IR's ``format_notes``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from models import fixed_point as fx
from models.errors import SpikeportError
from toolchain import ir as irm
from toolchain.netx import rules

UNSUPPORTED = {
    "conv": "convolution (spikeport's IR has no convolution op)",
    "pool": "pooling (netx 0.6.0 itself raises NotImplementedError)",
    "convT": "transposed convolution (netx 0.6.0 itself raises NotImplementedError)",
    "unpool": "unpooling (netx 0.6.0 itself raises NotImplementedError)",
    "average": "averaging (netx 0.6.0 itself raises NotImplementedError)",
    "concat": "concatenation (netx 0.6.0 itself raises NotImplementedError)",
    "dense_comp": "complex dense for resonate-and-fire neurons (not supported by spikeport)",
}


class NetxWarning(UserWarning):
    """netx-on-Lava runs something other than what SLAYER trained (a clip, a clamp, binary spikes)."""


def read(path) -> irm.IR:
    """The IR netx-on-Lava runs for the ``.net`` file ``path`` (module docstring)."""
    import h5py  # lazy: only this format needs it

    path = Path(path)
    if not path.is_file():
        raise SpikeportError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise SpikeportError(f"{path}: not a readable HDF5 (.net) file ({' '.join(str(exc).split())})") from None
    with handle:
        if "layer" not in handle:
            raise SpikeportError(f"{path}: no 'layer' group; not a Lava-DL netx network file")
        builder = _Builder(path)
        group = handle["layer"]
        expected = [str(i) for i in range(len(group))]
        if sorted(group.keys(), key=_as_int) != expected:
            raise SpikeportError(f"{path}: layers are {sorted(group.keys())}; netx reads layer/0 .. "
                                 f"layer/{len(group) - 1} in order")
        for i in range(len(group)):
            try:
                builder.layer(i, group[str(i)])
            except SpikeportError:
                raise
            except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:  # a malformed group
                raise SpikeportError(f"{path}: layer {i}: malformed ({type(exc).__name__}: "
                                     f"{' '.join(str(exc).split())})") from None
    return builder.finish()


def _as_int(key: str):
    return (0, int(key)) if key.isdigit() else (1, key)


# ------------------------------------------------------------------ fields
def _string(g, key: str, where: str) -> str:
    """A ``type`` field as NetDict reads it: element 0 of an array, or the scalar, as ascii."""
    if key not in g:
        raise SpikeportError(f"{where}: no {key!r} field")
    value = g[key]
    value = value[0] if value.shape else value[()]
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _array(g, key: str, where: str) -> np.ndarray:
    if key not in g:
        raise SpikeportError(f"{where}: no {key!r} field")
    value = np.asarray(g[key][()])
    if value.dtype.kind not in "biuf":
        raise SpikeportError(f"{where}: {key} has dtype {value.dtype}; expected numbers")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise SpikeportError(f"{where}: {key} holds NaN or infinite values")
    return value


def _integers(g, key: str, where: str, notes: list) -> np.ndarray:
    """A ``weight``/``bias`` field as netx reads it: ``astype(int)``, truncating toward zero."""
    value = _array(g, key, where)
    truncated = np.trunc(value)
    if np.any(truncated != value):
        bad = value[truncated != value].flat[0]
        notes.append(f"{where}: {key} holds non-integers (e.g. {bad:g}); netx truncates them toward zero")
    return truncated.astype(np.int64)


def _scalar_int(cfg: dict, key: str, where: str) -> int:
    value = np.asarray(cfg[key])
    if value.size != 1 or not float(value.reshape(-1)[0]).is_integer():
        raise SpikeportError(f"{where}: neuron {key}={value.tolist()} is not one integer "
                             "(netx hands it to Lava's fixed_pt LIF as is)")
    return int(value.reshape(-1)[0])


# ------------------------------------------------------------------ builder
class _Builder:
    """The IR under construction, layer by layer, as netx's ``Network._create`` walks the file."""

    def __init__(self, path: Path):
        self.path = path
        self.ir = irm.IR(path.stem, meta={"format": "netx"})
        self.notes, self.table = [], []
        self.prev = None  # the node the next layer reads: an Input or the previous layer's LIF
        self.prev_shape = None  # its netx shape (the input layer's is reversed, W, H, C)
        self.input_size = None  # an input layer without a neuron gives only the input size

    def where(self, i: int, kind: str) -> str:
        return f"{self.path}: layer {i} ({kind})"

    def layer(self, i: int, g) -> None:
        kind = _string(g, "type", f"{self.path}: layer {i}")
        where = self.where(i, kind)
        if kind in UNSUPPORTED:
            raise SpikeportError(f"{where}: {UNSUPPORTED[kind]} is not supported")
        if kind == "input":
            self._input(i, g, where)
        elif kind == "flatten":
            self._flatten(where)
        elif kind in ("dense", "dense_rec"):
            self._dense(i, g, where, recurrent=kind == "dense_rec")
        else:
            raise SpikeportError(f"{where}: unknown layer type {kind!r} (netx skips it; spikeport refuses it)")

    # ---------------------------------------------------------------- input
    def _input(self, i: int, g, where: str) -> None:
        shape = tuple(int(s) for s in np.atleast_1d(_array(g, "shape", where))[::-1])
        if self.prev is not None:
            raise SpikeportError(f"{where}: an input layer after other layers is not connected by netx")
        n = int(np.prod(shape))
        if "neuron" not in g:
            self.prev_shape, self.input_size = shape, n
            return
        cfg = self._neuron(g["neuron"], where)
        weight = self._scalar(g, "weight", where, rules.INPUT_WEIGHT)
        bias = self._scalar(g, "bias", where, rules.INPUT_BIAS)
        self.ir.add("input", irm.Input(n, source="net.inp"))
        feed = self.ir.add(f"layer{i}.feed", irm.Feed(n, gain=weight, offset=bias, fixed=irm.FeedFixed(weight, bias),
                                                       source=f"layer/{i}"), ["input"])
        self._lif(i, n, cfg, None, [feed])
        self.prev_shape = shape
        self.notes.append(f"{where}: netx drops spikes sent to net.inp at an input layer; its neuron runs as "
                          f"fed a_in = {weight} * x + {bias} in the same step (layer{i}.feed)")
        self.table.append(f"layer {i} input {n}: a_in = {weight} * x + {bias} (same step); {_neuron_text(cfg)}")

    def _scalar(self, g, key: str, where: str, default: int) -> int:
        """An input layer's ``weight``/``bias``: netx's ``int(...)`` of one number (truncated)."""
        if key not in g:
            return default
        value = _integers(g, key, where, self.notes)
        if value.size != 1:
            raise SpikeportError(f"{where}: {key} has {value.size} entries; netx takes one number")
        return int(value.reshape(-1)[0])

    def _flatten(self, where: str) -> None:
        """netx flattens the previous layer's (W, H, C) output in C, H, W order: the identity for 1-D."""
        shape = self.prev_shape or ()
        if sum(1 for s in shape if s != 1) > 1:
            raise SpikeportError(f"{where}: flattening shape {shape} (W, H, C) reorders neurons "
                                 "(netx's transpose); spikeport's populations are 1-D")

    # ---------------------------------------------------------------- dense
    def _dense(self, i: int, g, where: str, recurrent: bool) -> None:
        n = int(np.prod(_array(g, "shape", where)))
        weight = self._matrix(g, "weight", n, where)
        n_in = self._source_size() or weight.shape[1]
        if weight.shape[1] != n_in:
            raise SpikeportError(f"{where}: weight has {weight.shape[1]} inputs but its input has {n_in}")
        matrices = [weight]
        if recurrent:
            matrices.append(self._matrix(g, "weight_rec", n, where))
            if matrices[1].shape != (n, n):
                raise SpikeportError(f"{where}: weight_rec has shape {matrices[1].shape}, expected ({n}, {n})")
        delay = self._delay(g, weight.shape, where) if "delay" in g else None
        if recurrent and delay is not None:
            raise SpikeportError(f"{where}: a delayed recurrent layer is not supported (netx reuses the forward "
                                 "delays for the recurrent synapse and drops weight_exp)")
        if "neuron" in g:
            cfg = self._neuron(g["neuron"], where)
        else:
            cfg = dict(rules.DEFAULT_NEURON)
            self.notes.append(f"{where}: no neuron group: netx's default neuron (iDecay 0, vDecay 4096, "
                              f"vThMant {rules.DEFAULT_NEURON['vThMant']} = 1 << 18 - 1) is outside Loihi 2's "
                              "12-bit decay and 17-bit threshold; spikeport refuses to run it")
        bias = self._bias(g, n, where)
        try:
            synapses, opt = rules.lava_synapses(matrices)
        except ValueError as exc:
            raise SpikeportError(f"{where}: {exc}") from None
        self.notes.extend(f"{where}: {note}" for note in opt.notes)
        names = [self._add_synapse(f"layer{i}.dense", synapses[0], delay, self.prev, i, where)]
        layer = f"layer{i}"
        if recurrent:
            names.append(f"layer{i}.rec")
        self._lif(i, n, cfg, bias, names[:1])
        if recurrent:
            self._add_synapse(names[1], synapses[1], None, layer, i, where)
            self.ir.connect(names[1], layer)
        self.table.append(self._dense_text(i, "dense_rec" if recurrent else "dense", n, n_in, opt, synapses,
                                           delay, cfg, bias))
        self.prev_shape = (n,)

    def _source_size(self):
        """Channels of what the next layer reads: the previous layer, the input layer's shape, or None."""
        if self.prev is not None:
            return self.ir.op(self.prev).size
        return self.input_size

    def _matrix(self, g, key: str, n: int, where: str) -> np.ndarray:
        if key not in g:
            raise SpikeportError(f"{where}: no {key!r} field")
        w = _integers(g, key, where, self.notes)
        if w.ndim == 1:
            if w.size % n:
                raise SpikeportError(f"{where}: {key} has {w.size} entries, not a multiple of {n} neurons")
            w = w.reshape(n, -1)
        if w.ndim != 2 or w.shape[0] != n:
            raise SpikeportError(f"{where}: {key} has shape {w.shape}; expected ({n}, inputs)")
        return w

    def _delay(self, g, shape: tuple, where: str) -> np.ndarray:
        """netx's delay rule: clamp to [0, 62] when the largest exceeds 62, then broadcast an
        (out,) vector along rows, an (in,) one along columns, a scalar everywhere."""
        delay = _array(g, "delay", where).astype(np.float64)
        if delay.size and delay.max() > rules.MAX_DELAY:
            self.notes.append(f"{where}: delays up to {delay.max():g} clamped to {rules.MAX_DELAY} by netx "
                              "(lava-dl issues 214, 226)")
            delay = np.clip(delay, 0, rules.MAX_DELAY)
        if delay.size and delay.min() < 0:
            raise SpikeportError(f"{where}: delay={delay.min():g} is negative")
        if delay.ndim == 0:
            delay = np.full(shape, float(delay))
        elif delay.ndim == 1 and delay.size == shape[0]:
            delay = np.repeat(delay.reshape(-1, 1), shape[1], axis=1)
        elif delay.ndim == 1 and delay.size == shape[1]:
            delay = np.repeat(delay.reshape(1, -1), shape[0], axis=0)
        elif delay.shape != shape:
            raise SpikeportError(f"{where}: delay of shape {delay.shape} does not fit weight of shape {shape}")
        if np.any(np.trunc(delay) != delay):
            self.notes.append(f"{where}: non-integer delays truncated toward zero by netx")
        return np.trunc(delay).astype(np.int64)

    def _bias(self, g, n: int, where: str) -> np.ndarray:
        if "bias" not in g:
            return np.zeros(n, np.int64)
        bias = _integers(g, "bias", where, self.notes)
        if bias.size not in (1, n):
            raise SpikeportError(f"{where}: bias has {bias.size} entries for {n} neurons")
        return np.broadcast_to(bias.reshape(-1), (n,)).astype(np.int64)

    def _neuron(self, group, where: str) -> dict:
        cfg = {key: group[key][()] for key in group.keys()}
        kind = _string(group, "type", where + " neuron")
        if kind not in rules.NEURON_TYPES:
            raise SpikeportError(f"{where}: neuron type {kind!r} is not supported "
                                 f"(spikeport runs netx's {' and '.join(rules.NEURON_TYPES)} neurons, Lava LIF)")
        for key in ("iDecay", "vDecay", "vThMant"):
            if key not in cfg:
                raise SpikeportError(f"{where}: neuron has no {key!r} field")
            cfg[key] = _scalar_int(cfg, key, where)
        cfg["type"] = kind
        if bool(np.asarray(cfg.get("gradedSpike", False)).any()):
            self.notes.append(f"{where}: gradedSpike is set, but netx ignores it: Lava sends binary spikes "
                              "where SLAYER trained graded ones")
        if "refDelay" in cfg and int(np.asarray(cfg["refDelay"]).reshape(-1)[0]) > 1:
            self.notes.append(f"{where}: refDelay={cfg['refDelay']} is ignored by netx: Lava's LIF has no "
                              "refractory period")
        return cfg

    # ---------------------------------------------------------------- nodes
    def _ensure_input(self, n: int) -> str:
        if self.prev is None:
            self.prev = self.ir.add("input", irm.Input(n, source="net.inp"))
        return self.prev

    def _add_synapse(self, name: str, syn: rules.LavaSynapse, delay, src, i: int, where: str) -> str:
        if src is None:
            src = self._ensure_input(syn.weights.shape[1])
        fixed = _ir_fixed(syn, where)
        weight = syn.weights * 2.0 ** syn.weight_exp
        if delay is not None:
            op = irm.DelayDense(weight, delay=delay, fixed=fixed, source=f"layer/{i}")
        else:
            op = irm.Dense(weight, fixed=fixed, source=f"layer/{i}")
        return self.ir.add(name, op, [src])

    def _lif(self, i: int, n: int, cfg: dict, bias, inputs: list) -> str:
        ints = rules.neuron_integers(cfg)
        bias = np.zeros(n, np.int64) if bias is None else bias
        fixed = irm.LIFFixed(bias_mant=bias, bias_exp=np.full(n, rules.BIAS_EXP), u=np.zeros(n), v=np.zeros(n),
                             **ints)
        op = irm.LIF(n, du=cfg["iDecay"] / fx.DECAY_UNITY, dv=cfg["vDecay"] / fx.DECAY_UNITY,
                     vth=float(cfg["vThMant"]), bias=bias.astype(np.float64), fixed=fixed, source=f"layer/{i}")
        self.prev = self.ir.add(f"layer{i}", op, inputs)
        return self.prev

    def finish(self) -> irm.IR:
        if self.prev is None or not self.ir.names(irm.Neuron):
            raise SpikeportError(f"{self.path}: no layer with neurons (netx builds an empty network)")
        last = self.ir.names(irm.Neuron)[-1]
        self.ir.add("output", irm.Output(self.ir.op(last).n, source="net.out"), [last])
        for note in self.notes:
            warnings.warn(note, NetxWarning, stacklevel=3)
        self.ir.meta["format_notes"] = self.table + [f"warning: {n}" for n in self.notes]
        return self.ir

    @staticmethod
    def _dense_text(i, kind, n, n_in, opt, synapses, delay, cfg, bias) -> str:
        parts = []
        for label, syn in zip(("weight", "weight_rec"), synapses):
            parts.append(f"{label} [{syn.weights.min()}, {syn.weights.max()}] sign {rules.SIGN_NAMES[syn.sign_mode]}")
        text = (f"layer {i} {kind} {n_in}->{n}: num_weight_bits {opt.num_weight_bits} weight_exp "
                f"{synapses[0].weight_exp} (netx's sign mode {rules.SIGN_NAMES[opt.sign_mode]}); " + "; ".join(parts))
        if delay is not None:
            text += f"; delays {delay.min()}..{delay.max()} (after netx's clamp)"
        return text + f"; {_neuron_text(cfg)} bias [{bias.min()}, {bias.max()}] << 6"


def _neuron_text(cfg: dict) -> str:
    ints = rules.neuron_integers(cfg)
    return f"LIF du {ints['du']} dv {ints['dv']} vth {ints['vth']}"


def _ir_fixed(syn: rules.LavaSynapse, where: str) -> irm.SynapseFixed:
    """The IR record that runs ``syn`` exactly: as is for 1..8 weight bits; netx's 9-bit mixed
    case (odd weights, no bit truncated) as doubled weights with ``weight_exp - 1``."""
    w, exp, bits, mode = syn.weights, syn.weight_exp, syn.num_weight_bits, syn.sign_mode
    if not w.any():
        return irm.SynapseFixed(w, weight_exp=0, num_weight_bits=fx.WEIGHT_BITS, sign_mode=mode)
    if 1 <= bits <= fx.WEIGHT_BITS:
        return irm.SynapseFixed(w, weight_exp=exp, num_weight_bits=bits, sign_mode=mode)
    lo, hi = fx.weight_clip_range(fx.SignMode.MIXED)
    if mode == fx.SignMode.MIXED and bits == fx.WEIGHT_BITS + 1 and 2 * w.min() >= lo and 2 * w.max() <= hi \
            and exp - 1 >= fx.WEIGHT_EXP_RANGE[0]:
        return irm.SynapseFixed(2 * w, weight_exp=exp - 1, num_weight_bits=fx.WEIGHT_BITS, sign_mode=mode)
    raise SpikeportError(f"{where}: netx hands Lava {bits} weight bits with weights [{w.min()}, {w.max()}]; "
                         "Loihi 2 synapses have at most 8")
