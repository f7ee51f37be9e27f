"""Seconds per MNIST training epoch of the smooth method: layer by layer vs the reference's event loop.

Both run the same 784-100-100-10 theta network (forward, pseudospikes, loss, backward) on the
same batches of 1000 MNIST training images, in float32 on CPU threads given by --threads:

* spikeport: `models.theta_network.ThetaNetwork`, each layer run through the sorted spikes
  of the layer below (`models.theta.layer`);
* the port: `models.theta_events.simulate`, the reference code's loop, in which every event
  (the next input or network spike) updates all 210 neurons; K = 200 events as in the
  reference's MNIST configuration.

The network is the one in ``--checkpoint`` (a smooth MNIST checkpoint, so the activity is a
trained network's), else the reference initialisation (silent: a lower bound on the cost).
Per-batch time is the median of ``--batches`` batches after one warm-up; an epoch is 60 batches.
Run it on a quiet machine: it prints what else was running (load average).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch

from models import theta, theta_events
from models.theta_network import ThetaNetwork, bin_times
from toolchain.tasks import datasets

BATCHES_PER_EPOCH = 60


def layerwise_step(net: ThetaNetwork, t_in, labels) -> float:
    out = net(t_in)
    loss = theta.smooth_loss(out["t_out"], labels, net.T, 1e-2)
    loss.backward()
    return loss.item()


def reference_step(net: ThetaNetwork, t_in, labels, K: int = 200) -> float:
    """The reference's whole-network loop: block weight matrix, one virtual input per bin."""
    sizes = net.sizes
    N = sum(sizes[1:])
    offsets = [0]
    for n in sizes[1:]:
        offsets.append(offsets[-1] + n)
    w_net = torch.zeros(N, N)
    for l in range(1, len(sizes) - 1):
        w_net = w_net.index_put((torch.arange(offsets[l], offsets[l + 1])[:, None],
                                 torch.arange(offsets[l - 1], offsets[l])[None, :]), net.weights[l])
    level = net.levels[0]
    virtual = (t_in == level).float() @ net.weights[0].t()  # (B, n_hidden): the one input event's jumps
    w_in = torch.cat([virtual, torch.zeros(len(t_in), N - sizes[1])], 1)[:, :, None]
    times = torch.full((len(t_in), 1), float(level))
    phi0 = torch.cat(list(net.phases))
    ts, is_input, who, states = theta_events.simulate(phi0, w_net, w_in, times, torch.zeros_like(times).long(),
                                                      net.T, K, net.neuron)
    first = theta_events.first_spikes(ts, is_input, who, N)[:, offsets[-2]:]
    ends = theta_events.end_phases(who, states)
    t_out = theta.pseudo_times([ends[:, offsets[l]:offsets[l + 1]] for l in range(len(sizes) - 1)],
                               list(net.weights[1:]), first, net.neuron, net.T)
    loss = theta.smooth_loss(t_out, labels, net.T, 1e-2)
    loss.backward()
    return loss.item()


def timed(step, net, batches) -> float:
    times = []
    for i, (t_in, labels) in enumerate(batches):
        net.zero_grad()
        t0 = time.perf_counter()
        step(net, t_in, labels)
        if i:  # the first batch warms up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="smooth MNIST checkpoint whose network to time (default: initial)")
    ap.add_argument("--batches", type=int, default=4, help="timed batches per implementation (default 4)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} (other jobs on the machine)")
    if args.checkpoint:
        from toolchain.methods.smooth.train import load_checkpoint
        net, meta = load_checkpoint(args.checkpoint)
        print(f"network: {args.checkpoint} after {meta.get('epochs')} epochs")
    else:
        net = ThetaNetwork([784, 100, 100, 10], levels=bin_times(1, 2.0))
        print("network: reference initialisation (silent)")
    data = datasets.load_task("mnist")
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    level = float(net.levels[0])
    batches = [(torch.where(x[i:i + 1000] >= 0.5, level, math.inf), y[i:i + 1000])
               for i in range(0, 1000 * (args.batches + 1), 1000)]
    mine = timed(layerwise_step, net, batches)
    port = timed(reference_step, net, batches)
    print(f"per batch of 1000: spikeport {mine:.2f} s, reference event loop (K=200) {port:.2f} s")
    print(f"seconds per epoch ({BATCHES_PER_EPOCH} batches): spikeport {mine * BATCHES_PER_EPOCH:.0f} s, "
          f"reference loop {port * BATCHES_PER_EPOCH:.0f} s; spikeport is {port / mine:.1f}x faster "
          f"(targets: >= 10x, <= 120 s per epoch)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
