"""`spikeport verify|compile` for spike-transform checkpoints (`train --task spike-transform`).

A checkpoint with format tag ``spikeport-spike-transform-checkpoint`` is
recognised by ``compile`` and ``verify`` without a flag. The task (teacher,
input patterns, desired trains) is rebuilt from the seed and task config the
checkpoint stores; 1 deployed step = 1 ms, so ``--dt`` does not apply.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from models.errors import SpikeportError

BACKENDS = ("float", "emulator", "lava")


def load(path):
    """(model, payload, task) of a spike-transform checkpoint; the task rebuilt from its stored config."""
    from toolchain.spike_transform import load_checkpoint, make_task

    model, payload = load_checkpoint(path)
    task_cfg = dict(payload["task"])
    task_cfg["weight_spread"] = tuple(task_cfg["weight_spread"])
    return model, payload, make_task(**task_cfg)


def compile_command(args) -> int:
    """`spikeport compile model.pt`: discretise, post-training quantize (calibrated on the training
    patterns), validate for ``--target`` and write the fixed-point IR."""
    from toolchain import formats
    from toolchain.ir import passes
    from toolchain.quantize import format_report
    from toolchain.spike_transform import compile_transform

    model, payload, task = load(args.model)
    _, fixed, reports = compile_transform(model, task.raster(task.x_times).numpy())
    passes.validate(fixed, args.target, require_fixed=True)
    fixed.meta.update(task="spike-transform", method=payload["method"], seed=payload["task"]["seed"],
                      target=args.target, quantization_mode=f"post-training ({task.x_times.shape[0]} training "
                                                            "patterns as calibration)")
    formats.save(fixed, args.out)
    print(fixed.meta["quantization_mode"])
    print(format_report(reports))
    print(f"wrote {args.out}")
    return 0


def verify_report(model, payload: dict, task, *, lava: bool = True, finetune_qat: int = 0,
                  qat_lr: float = 1e-3, split: str = "train") -> dict:
    """`deploy` the student on the ``split`` ("train" or "test") patterns and summarise it (JSON-ready).

    Per engine (``float``/``fixed`` emulator, ``lava``): output spike-time errors in steps
    against the target and against the learned output (`spike_time_errors` without the
    per-spike array; with ``finetune_qat``, ``fixed_ptq`` is the post-training network and
    ``fixed``/``lava`` the fine-tuned one); the Lava vs emulator identity count; the output trains
    (target, learned, deployed = emulator fixed point) for the raster plot.
    """
    from models.spike_train import raster_to_times
    from toolchain.spike_transform import _plain, deploy, score_summary, train_lists

    dep = deploy(model, task, lava=lava, finetune_qat=finetune_qat, qat_lr=qat_lr, split=split)
    deployed = raster_to_times(dep["runs"]["fixed"][f"{dep['output_node']}/s"])
    rep = dict(method=payload["method"], seed=payload["task"]["seed"], task=payload["task"],
               trained=payload.get("final", {}), split=split, patterns=int(len(dep["target"])), T=task.T,
               engines={name: {k: score_summary(v) for k, v in s.items()} for name, s in dep["scores"].items()},
               quantization=[dict(node=r.node, limited_by=r.limited_by, state_use=r.state_use,
                                  weights_clipped=sum(syn.clipped for syn in r.synapses),
                                  weights_rounded_to_zero=sum(syn.rounded_to_zero for syn in r.synapses))
                             for r in dep["reports"]],
               trains=dict(target=train_lists(dep["target"]), learned=train_lists(dep["learned"]),
                           deployed=train_lists(deployed)))
    if "qat" in dep:
        rep["qat"] = dep["qat"]
    if lava:
        rep["lava_vs_emulator"] = {k: v for k, v in dep["lava_vs_emulator"].items() if k != "keys"}
    return _plain(rep)


SPLIT_NAMES = {"train": "training", "test": "held-out test"}
ENGINE_NAMES = {"float": "emulator float", "fixed_ptq": "emulator PTQ", "fixed": "emulator fixed",
                "lava": "lava fixed"}


def format_report(rep: dict) -> str:
    """Human-readable summary of `verify_report`."""
    lines = [f"spike-transform ({rep['method']}, seed {rep['seed']}): {rep['patterns']} {SPLIT_NAMES[rep['split']]} patterns, "
             f"{rep['T']} steps (1 step = 1 ms); output spike-time errors in steps against ceil(desired time)"]
    q = rep.get("qat")
    if q is not None:
        lines.append(f"  quantization-aware fine-tuning: {q['iterations']} iterations (lr {q['lr']:g}), van Rossum "
                     f"loss {q['ptq_error']:.4g} after PTQ -> {q['error']:.4g} kept (iteration {q['best_iteration']}, "
                     f"{'converged' if q['converged'] else 'not converged'}); emulator/lava fixed = fine-tuned")
    for name, s in rep["engines"].items():
        t = s["vs_target"]
        w = t["within_steps"]
        lines.append(f"  {ENGINE_NAMES.get(name, name):<15} vs target: mean |error| {_f(t['mean_abs'])} steps "
                     f"(max {t['max_abs']:.0f}, mean signed {t['mean_signed']:+.3f}), matched {t['matched']}/"
                     f"{t['target_spikes']}, within 0/±1 steps {w.get('0', float('nan')):.3f}/"
                     f"{w.get('1', float('nan')):.3f}, missing {t['missing']}, extra {t['extra']}; vs learned: "
                     f"mean |error| {_f(s['vs_learned']['mean_abs'])}, missing {s['vs_learned']['missing']}, "
                     f"extra {s['vs_learned']['extra']}")
    lv = rep.get("lava_vs_emulator")
    if lv is not None:
        lines.append(f"  lava fixed vs emulator fixed: {lv['identical']}/{lv['total']} recorded s/v/u entries "
                     f"identical ({'identical' if lv['all_identical'] else 'DIFFERENT'})")
    else:
        lines.append("  lava: not run (--backends)")
    return "\n".join(lines)


def _f(x: float, fmt: str = ".3f") -> str:
    return format(x, fmt) if math.isfinite(x) else "n/a"


def write_report(rep: dict, out_dir) -> tuple[Path, Path]:
    """``deploy.json`` and ``rasters.png`` (target vs learned vs deployed) into ``out_dir`` (atomic)."""
    from toolchain.files import atomic_path
    from toolchain.spike_transform import _plain, plot_rasters

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    js, png = out_dir / "deploy.json", out_dir / "rasters.png"
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(_plain(rep, nan_to_none=True), indent=1))
    title = (f"spike-transform, {rep['method']} (seed {rep['seed']})\n"
             "target (black), learned (blue), deployed: emulator fixed point"
             f"{', QAT-fine-tuned' if 'qat' in rep else ''} (red)")
    plot_rasters([(title, rep["trains"])], png, rep["T"])
    return js, png


def verify_command(args) -> int:
    """`spikeport verify model.pt` for a spike-transform checkpoint. Exit 1 when Lava differs
    from the emulator (fixed point, any recorded s/v/u entry), else 0."""
    from toolchain.verify import backend_names

    backends = backend_names(args.backends, BACKENDS, "spike-transform")
    model, payload, task = load(args.model)
    if args.finetune_qat < 0:
        raise SpikeportError(f"verify: --finetune-qat {args.finetune_qat} must be >= 0")
    if not args.qat_lr > 0:
        raise SpikeportError(f"verify: --qat-lr {args.qat_lr} must be > 0")
    rep = verify_report(model, payload, task, lava="lava" in backends, finetune_qat=args.finetune_qat,
                        qat_lr=args.qat_lr, split=args.split or "train")
    print(format_report(rep))
    if not args.no_report:
        js, png = write_report(rep, args.report)
        print(f"report: {js}, {png}")
    lv = rep.get("lava_vs_emulator")
    if lv is not None and not lv["all_identical"]:
        print(f"FAILED: lava vs emulator: {lv['total'] - lv['identical']}/{lv['total']} recorded entries differ")
        return 1
    return 0
