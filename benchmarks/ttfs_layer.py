"""Throughput of the exact TTFS layer (models.ttfs_layer) on MNIST-shaped batches, and the MNIST epoch it implies.

Prints training-step samples/s (forward, loss, backward and an Adam step) of a 784-800-10
network for a few batch sizes, through the compiled layer (`models.ttfs_kernel`, the default)
and the PyTorch reference (``compiled=False``), with the black-pixel tail merged into one event
(what training uses); and, for the compiled layer, without the merge (every one of the 784
inputs sorted and scanned). Then the CPU time of one MNIST epoch at the default batch of 32
(60,000 training samples plus the 10,000-sample test evaluation `train_ttfs` runs each epoch,
forward only at batch 256) and of the default 20 epochs. Synthetic MNIST-like inputs (about 19%
non-black pixels), so no data set is needed. Times are CPU seconds (``time.process_time``, all
threads of the process), best of ``--batches`` steps after one warm-up step that loads the
compiled code.

    nice -n 10 python benchmarks/ttfs_layer.py [--threads 1] [--batches 8]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models.ttfs_layer import TTFSNetwork, ttfs_layer, ttfs_loss  # noqa: E402

TRAIN, TEST, EPOCHS = 60000, 10000, 20  # MNIST's split and `spikeport train --method ttfs`'s default epochs
EVAL_BATCH = 256  # `toolchain.methods.ttfs.train.evaluate`'s batch


def synthetic_mnist(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=gen)
    return torch.where(torch.rand(n, 784, generator=gen) < 0.19, x, torch.zeros_like(x))


def _output(net: TTFSNetwork, x: torch.Tensor, compiled: bool, merge_tail: bool) -> torch.Tensor:
    z, tail, mask = net.encode(x), (math.exp(net.t_max_in) if merge_tail else None), (x == 0 if merge_tail else None)
    for w in net.weights:  # without the merge every input is its own event
        z = ttfs_layer(z, w, net.theta, tail, mask, compiled=compiled)
        tail = mask = None
    return z


def step_time(net: TTFSNetwork, opt, x: torch.Tensor, y: torch.Tensor, compiled: bool, merge_tail: bool) -> float:
    """CPU seconds of one training step: forward, loss, backward, Adam."""
    start = time.process_time()
    loss = ttfs_loss(_output(net, x, compiled, merge_tail), y, net.weight_sum_penalty(), 1.0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.process_time() - start


def train_rate(bs: int, batches: int, compiled: bool, merge_tail: bool = True) -> float:
    """Training samples per CPU second at batch ``bs``, best of ``batches`` steps after a warm-up."""
    net = TTFSNetwork(dict(n_in=784, sizes=[800, 10], t_max_in=2.0, init_mean=6.0))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    y = torch.arange(bs) % 10
    times = [step_time(net, opt, synthetic_mnist(bs, seed=i), y, compiled, merge_tail) for i in range(batches + 1)]
    return bs / min(times[1:])


@torch.no_grad()
def eval_seconds(n: int, compiled: bool) -> float:
    """CPU seconds of the forward pass over ``n`` samples at the evaluation batch."""
    net = TTFSNetwork(dict(n_in=784, sizes=[800, 10], t_max_in=2.0, init_mean=6.0))
    _output(net, synthetic_mnist(8, seed=99), compiled, True)  # warm-up
    start = time.process_time()
    for i in range(0, n, EVAL_BATCH):
        _output(net, synthetic_mnist(min(EVAL_BATCH, n - i), seed=1000 + i), compiled, True)
    return time.process_time() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--eval-samples", type=int, default=2048,
                   help="samples of the timed test evaluation (scaled to 10,000)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        import numba
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    print(f"784-800-10 TTFS training step (forward, loss, backward, Adam), {args.threads} thread(s), "
          f"CPU time, best of {args.batches} batches")
    rates = {}
    for bs in (16, 32, 64):
        rates[bs] = {c: train_rate(bs, args.batches, c) for c in (True, False)}
        unmerged = train_rate(bs, args.batches, True, merge_tail=False)
        print(f"  batch {bs:>3}: {rates[bs][True]:7.0f} samples/s compiled, {rates[bs][False]:7.0f} reference "
              f"({rates[bs][True] / rates[bs][False]:.1f}x); compiled without the tail merged {unmerged:7.0f}")
    scale = TEST / args.eval_samples
    epoch = {c: TRAIN / rates[32][c] + eval_seconds(args.eval_samples, c) * scale for c in (True, False)}
    print(f"one MNIST epoch at batch 32 ({TRAIN:,} training samples + the {TEST:,}-sample test evaluation): "
          f"~{epoch[True]:.0f} s compiled, ~{epoch[False]:.0f} s reference ({epoch[False] / epoch[True]:.1f}x)")
    print(f"{EPOCHS} epochs: ~{EPOCHS * epoch[True] / 60:.1f} min compiled, ~{EPOCHS * epoch[False] / 60:.1f} min "
          f"reference (target <= 20 min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
