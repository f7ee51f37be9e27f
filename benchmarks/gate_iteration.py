"""Seconds per gate training iteration (forward, hand-written BPTT, Adam step) for the default tasks.

    PYTHONPATH=. python benchmarks/gate_iteration.py [--repeats 3] [--task xor|predictive-coding]

Prints one line per task: its network size, trial steps, batch and the mean seconds per
iteration over ``--repeats`` iterations (after one warm-up that compiles the numba kernels).
Single-threaded (torch, numba, BLAS). Timing depends on the machine's load; say so when quoting it.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import torch  # noqa: E402

from toolchain.methods.gate.train import gate_config, new_network, seconds_per_iteration  # noqa: E402
from toolchain.tasks.gate_tasks import TASKS, make_trials  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="timed iterations per task (default 3)")
    p.add_argument("--task", choices=TASKS, action="append", help="task to time (default: both)")
    args = p.parse_args()
    torch.set_num_threads(1)
    for task in args.task or TASKS:
        cfg = gate_config(task)
        trials = make_trials(task, cfg["batch_size"], 0, cfg["dt"], cfg)
        net = new_network(cfg, trials)
        seconds_per_iteration(net, trials, cfg, repeats=1)  # warm-up: numba compilation
        s = seconds_per_iteration(net, trials, cfg, repeats=args.repeats)
        print(f"{task}: N={cfg['n_rec']}, {trials.inputs.shape[1]} steps, batch {cfg['batch_size']}: "
              f"{s:.3f} s per iteration ({cfg['iterations']} iterations ~ {s * cfg['iterations'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
