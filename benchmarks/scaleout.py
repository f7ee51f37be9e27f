"""Scale-out speed-up: 2 local workers vs 1, for per-sample Lava verification and a 4-seed digits sweep.

Run from the repository root::

    .venv/bin/python benchmarks/scaleout.py            # ~5-10 min on 2 quiet cores
    .venv/bin/python benchmarks/scaleout.py --quick    # ~2 min: 6 Lava samples, 2 seeds, 2 epochs

Both measurements are made in this one run on this machine, 1 worker then 2
workers, with the same pool machinery (`toolchain.scaleout.local.LocalPool`:
exec'd worker processes; each pool is started and every worker has imported
the engines before the clock starts, so worker start-up is not counted):

1. **Per-sample Lava verification**: the digits network (``--model PATH.pt``,
   or 64-16-10, T=12, trained here in a few seconds), `toolchain.verify.verify`
   with ``backends="emulator,lava"``, ``lava_batching="per-sample"`` (one Lava
   network per sample, as the issue's ~1.8 samples/s baseline) on
   ``--samples`` held-out samples, all of them on Lava. Printed: wall time of
   the Lava engine and of the whole verify, samples/s, speed-up, and whether
   s, v, u of every node are identical between the two runs (they must be).
2. **Sweep**: `toolchain.sweep.sweep` of ``--seeds`` seeds x 1 setting on
   digits (``--epochs`` epochs, hidden 64, T=20; verify on 100 samples with 20
   on Lava), each run train + verify on one torch thread; wall time of the
   whole sweep and speed-up, and whether the two sweeps' numbers are equal.

The machine has 2 cores and may be shared: the load average is printed
before and after; a loaded machine lowers the speed-up (the ideal is 2x).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolchain import scaleout  # noqa: E402
from toolchain.cli import main as spikeport  # noqa: E402
from toolchain.scaleout.calls import Call  # noqa: E402
from toolchain.scaleout.local import LocalPool  # noqa: E402
from toolchain.sweep import Run, sweep  # noqa: E402
from toolchain.verify import verify  # noqa: E402


def warm_pool(workers: int) -> LocalPool:
    """A pool whose ``workers`` processes are started and have each imported the engines."""
    pool = LocalPool(workers)
    warm = "import time, backends.emulator, backends.lava.runner, toolchain.verify; time.sleep(0.5)"
    pool.map([Call(f"warm {i}", exec, (warm,)) for i in range(workers)])
    return pool


def tiny_model(folder: Path) -> Path:
    from toolchain.methods.superspike import checkpoint
    from toolchain.methods.superspike.train import train

    result = train("digits", seed=0, progress=False, threads=1, epochs=4, hidden=[16], lr=2e-2,
                   encoding=dict(name="regular", T=12, max_rate=0.5))
    path = folder / "tiny.pt"
    checkpoint.save(path, result.model, result.meta)
    return path


def lava_verify(model: Path, samples: int) -> None:
    print(f"\n1. per-sample Lava verification, {samples} samples ({model})")
    results, seconds = {}, {}
    for workers in (1, 2):
        with warm_pool(workers) as pool, scaleout.using(pool):
            start = time.perf_counter()
            results[workers] = verify(model, samples=samples, lava_samples=samples,
                                      backends="emulator,lava", lava_batching="per-sample")
            seconds[workers] = time.perf_counter() - start
        lava = results[workers].engines["lava"]["seconds"]
        print(f"   {workers} worker(s): Lava {lava:.1f} s ({samples / lava:.2f} samples/s), verify {seconds[workers]:.1f} s")
    a, b = results[1].outputs["lava"], results[2].outputs["lava"]
    same = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    speedup = results[1].engines["lava"]["seconds"] / results[2].engines["lava"]["seconds"]
    print(f"   speed-up with 2 workers: {speedup:.2f}x (Lava engine), {seconds[1] / seconds[2]:.2f}x (whole verify); "
          f"s, v, u identical: {same}")


def seed_sweep(seeds: int, epochs: int, folder: Path) -> None:
    print(f"\n2. digits sweep, {seeds} seeds x 1 setting, {epochs} epochs each")
    config = dict(hidden=[64], epochs=epochs)
    check = dict(samples=100, lava_samples=20, backends="float,emulator,lava")
    runs = [Run(f"h64-seed{s}", "h64", s, "digits", "surrogate", config, check) for s in range(seeds)]
    tables, seconds = {}, {}
    for workers in (1, 2):
        out = folder / f"sweep{workers}"
        with warm_pool(workers) as pool:
            start = time.perf_counter()
            tables[workers] = sweep(runs, out, spikeport, pool, log=lambda *_: None)
            seconds[workers] = time.perf_counter() - start
        print(f"   {workers} worker(s): {seconds[workers]:.1f} s")
    keys = ("float_accuracy", "emulator_accuracy", "lava_accuracy", "lava_identical_samples", "passed")
    same = [[r[k] for k in keys] for r in tables[1]] == [[r[k] for k in keys] for r in tables[2]]
    print(f"   speed-up with 2 workers: {seconds[1] / seconds[2]:.2f}x; same numbers: {same}")
    for row in tables[2]:
        print(f"     {row['run']}: float {row['float_accuracy']:.1%}, lava {row['lava_accuracy']:.1%}, "
              f"lava = emulator {row['lava_identical_samples']}/{row['lava_samples']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, help="digits .pt checkpoint (default: a tiny one trained here)")
    p.add_argument("--samples", type=int, default=20, help="Lava samples of part 1 (default 20)")
    p.add_argument("--seeds", type=int, default=4, help="seeds of part 2 (default 4)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs per run of part 2 (default 5)")
    p.add_argument("--quick", action="store_true", help="6 Lava samples, 2 seeds, 2 epochs")
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--skip-lava", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.samples, args.seeds, args.epochs = 6, 2, 2
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    folder = Path(tempfile.mkdtemp(prefix="spikeport-bench-"))
    try:
        if not args.skip_lava:
            lava_verify(args.model or tiny_model(folder), args.samples)
        if not args.skip_sweep:
            seed_sweep(args.seeds, args.epochs, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
