"""spikeport's emulator vs netx-on-Lava, on the same imported Lava-DL netx file and the same inputs.

Run from the repository root::

    .venv/bin/python benchmarks/netx_vs_lava.py              # ~1 min
    .venv/bin/python benchmarks/netx_vs_lava.py --samples 4 --steps 50

1. **File**: a 64 -> 128 -> 10 network of SLAYER's own ``slayer.block.cuba.Dense``
   blocks (seeded random weights, integer delays 0..4 on the second layer), written
   by the blocks' ``export_hdf5`` (``tests/netx_lava.py``, kind ``bench``).
2. **Inputs**: ``--samples`` random spike rasters (T = ``--steps``, 30 % density, seed 0).
3. **netx-on-Lava**: for each sample, ``lava.lib.dl.netx.hdf5.Network`` loads the
   file, a RingBuffer feeds ``net.inp``, Monitors record every layer's s, v, u, and
   Lava runs ``Loihi2SimCfg(select_tag="fixed_pt")`` for T steps; wall time of the whole
   loop (load, compile, run, read back), as a netx user runs it.
4. **Emulator**: ``toolchain.formats.load`` of the same file (netx's rules), then
   ``backends.emulator.run`` on the whole batch recording every layer's s, v, u; the
   median wall time of 5 runs (load included in each).
5. Prints how many arrays are identical (every layer, variable, step, sample), both
   times and the ratio. The machine may be shared (the load average is printed):
   the ratio, not the absolute times, is the figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import netx_lava as nl  # noqa: E402
from backends import emulator  # noqa: E402
from toolchain import formats  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        path = nl.slayer_file(Path(tmp) / "bench.net", nl.BENCH)
        x = np.stack([nl.spikes(args.steps, 64, rate=0.3, seed=s) for s in range(args.samples)])
        print(f"load average {os.getloadavg()[0]:.2f}; {args.samples} samples x {args.steps} steps, 64-128-10")
        t0 = time.perf_counter()
        lava = [nl.run_netx(path, x[b]) for b in range(args.samples)]
        t_lava = time.perf_counter() - t0
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            emu = emulator.run(formats.load(path), x)
            times.append(time.perf_counter() - t0)
        t_emu = statistics.median(times)
    same = total = 0
    for b in range(args.samples):
        one = {k: v[b:b + 1] for k, v in emu.items()}
        s, t, _ = nl.compare(one, lava[b])
        same, total = same + s, total + t
    print(f"identical arrays (layer x s,v,u x sample): {same} / {total}")
    print(f"netx-on-Lava: {t_lava:.2f} s  emulator: {t_emu * 1e3:.1f} ms (median of {args.reps})")
    print(f"emulator is {t_lava / t_emu:.0f}x faster than netx-on-Lava on this file and these inputs")
    return 0 if same == total else 1


if __name__ == "__main__":
    sys.exit(main())
