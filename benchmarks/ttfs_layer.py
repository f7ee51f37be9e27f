"""Throughput of the exact TTFS layer (models.ttfs_layer) on MNIST-shaped batches.

Prints forward+backward samples/s of a 784-800-10 network for a few batch
sizes, with the black-pixel tail merged into one event (what training uses)
and without (every one of the 784 inputs sorted and scanned). Synthetic
MNIST-like inputs (about 19% non-black pixels), so no data set is needed.

    nice -n 10 python benchmarks/ttfs_layer.py [--threads 1] [--batches 8]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from models.ttfs_layer import TTFSNetwork, ttfs_layer, ttfs_loss  # noqa: E402


def synthetic_mnist(n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 784, generator=gen)
    return torch.where(torch.rand(n, 784, generator=gen) < 0.19, x, torch.zeros_like(x))


def step_time(net: TTFSNetwork, x: torch.Tensor, y: torch.Tensor, merge_tail: bool) -> float:
    start = time.perf_counter()
    if merge_tail:
        z = net(x)[-1]
    else:  # every input as its own event
        z = ttfs_layer(ttfs_layer(net.encode(x), net.weights[0], net.theta), net.weights[1], net.theta)
    ttfs_loss(z, y, net.weight_sum_penalty(), 1.0).backward()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", type=int, default=8)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    net = TTFSNetwork(dict(n_in=784, sizes=[800, 10], t_max_in=2.0, init_mean=6.0))
    print(f"784-800-10 TTFS, forward+backward, {args.threads} thread(s), best of {args.batches} batches")
    for bs in (16, 32, 64):
        rates = {}
        for merge in (True, False):
            times = []
            for i in range(args.batches):
                x = synthetic_mnist(bs, seed=i)
                y = torch.arange(bs) % 10
                times.append(step_time(net, x, y, merge))
                net.zero_grad(set_to_none=True)
            rates[merge] = bs / min(times)
        print(f"  batch {bs:>3}: {rates[True]:7.0f} samples/s with the black-pixel tail merged, "
              f"{rates[False]:7.0f} without ({rates[True] / rates[False]:.1f}x); "
              f"one MNIST epoch ~{60000 / rates[True] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
