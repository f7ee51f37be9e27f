"""`make demo` / `spikeport demo`: the README's main job, end to end.

    train on digits (seed 0) ──► out/model.pt ──compile──► out/model.onnx
        ──► verify 100 held-out samples (float, torch-fixed, emulator; Lava on 20)
        ──► out/report/ (report.json, report.html, PNGs)

Prints each stage, the verify summary (accuracy of every engine, the
emulator-vs-Lava identity counts, float-vs-fixed spike timing) and where the
report is. Returns verify's exit status (0 = every check passed).
"""
from __future__ import annotations

import time
from pathlib import Path

from toolchain import formats
from toolchain.methods.superspike import checkpoint
from toolchain.methods.superspike.compile import compile_network
from toolchain.methods.superspike.train import train
from toolchain.quantize import LayerReport, format_report
from toolchain.verify import format_summary, verify, write_verify_report

TASK, SEED, SAMPLES, LAVA_SAMPLES = "digits", 0, 100, 20


def run_demo(out_dir) -> int:
    """Train, compile, verify and report into ``out_dir``; returns 0 when verify passes, else 1."""
    out, start = Path(out_dir), time.perf_counter()
    model_path, ir_path = out / "model.pt", out / "model.onnx"

    _stage(1, f"train on {TASK} with SuperSpike surrogate gradients (--method surrogate, seed {SEED})")
    trained = train(TASK, seed=SEED, progress=True)
    checkpoint.save(model_path, trained.model, trained.meta)
    acc = trained.meta["accuracy"]
    print(f"    train accuracy {acc['train']:.1%}, test accuracy {acc['test']:.1%} -> {model_path}")

    _stage(2, "compile: lower, calibrate, quantize to Loihi integers, validate")
    ir = compile_network(trained.model, trained.meta)
    formats.save(ir, ir_path)
    print(f"    {ir.meta['quantization_mode']} -> {ir_path}")
    if "quantization" in ir.meta:
        print(_indent(format_report([LayerReport(**r) for r in ir.meta["quantization"].values()])))

    _stage(3, f"verify {SAMPLES} held-out samples: float, torch-fixed, emulator; Lava on {LAVA_SAMPLES}")
    result = verify(model_path, ir=ir_path, samples=SAMPLES, lava_samples=LAVA_SAMPLES, seed=SEED)
    print(_indent(format_summary(result)))

    _stage(4, "report")
    folder = write_verify_report(result, out / "report")
    print(f"    {folder / 'report.html'}")
    print(f"demo {'passed' if result.passed else 'FAILED'} in {time.perf_counter() - start:.0f} s")
    return result.exit_status


def _stage(k: int, text: str) -> None:
    print(f"[{k}/4] {text}", flush=True)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else line for line in text.splitlines())
