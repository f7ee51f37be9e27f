"""Quantization-aware fine-tuning of a theta network against its deployed fixed-point QIF network.

Each training step runs the batch twice: the continuous network (float, exact gradients,
pseudospikes) and the deployed network at step h = 2**-k in the torch fixed mode
(`toolchain.methods.smooth.fixed`: the emulator's and Lava's integers, bit for bit, with
the weights quantized from the current float weights). The loss is the training loss
(`models.theta.smooth_loss`) of the **deployed** first output spike times, with the
straight-through rule on times::

    t = t_continuous + (t_deployed - t_continuous).detach()     (output neurons that fire deployed)
    t = t_continuous                                            (the others: their pseudospike time)

so the value is the deployed network's and the gradient the continuous network's, as the
straight-through estimator does for weight rounding in LIF QAT. Times are the theta
neuron's time units; deployed times follow `toolchain.methods.smooth.lower`'s step
convention. The result is an ordinary smooth checkpoint (its ``meta["qat"]`` says what was
done), so `spikeport compile|verify` take it unchanged.
"""
from __future__ import annotations

import copy
import time

import torch
from tqdm import tqdm

from models import theta
from models.theta_network import predict
from toolchain import checkpoint
from toolchain.methods.smooth import deploy, fixed
from toolchain.methods.smooth.config import KIND
from toolchain.methods.smooth.lower import calibrate_thresholds, lower_smooth, quantize_smooth
from toolchain.methods.smooth.optim import AdaBelief
from toolchain.methods.smooth.train import input_index, input_times, load_checkpoint, training_times
from toolchain.tasks import datasets


class Deployment:
    """The deployed network of a (changing) theta network at step 2**-k: thresholds fixed once."""

    def __init__(self, net, k: int):
        self.k = k
        self.x_th, self.x_reset = calibrate_thresholds(k, net.neuron.tau, net.neuron.I0 - 0.25, net.T)

    def ir(self, net):
        """The fixed IR of ``net``'s current weights and phases."""
        return quantize_smooth(lower_smooth(net, self.k, self.x_th, self.x_reset))[0]

    def first_times(self, net, t_in: torch.Tensor) -> tuple:
        """(deployed first output spike times (B, n_out), ``inf`` if none; predicted class) on the
        torch fixed mode."""
        ir = self.ir(net)
        meta = ir.meta["smooth"]
        rec = fixed.run(ir, deploy.encode(t_in.detach().double().numpy(), meta), record_state=False)
        L = meta["layers"]
        pred, _ = deploy.readout(rec[f"l{L}/s"], rec[f"l{L}/x"], meta)
        return torch.as_tensor(deploy.first_times(rec[f"l{L}/s"], L, meta)), pred


def straight_through_times(t_cont: torch.Tensor, t_dep: torch.Tensor) -> torch.Tensor:
    """The module docstring's rule: deployed value, continuous gradient; pseudospike where silent."""
    t_dep = t_dep.to(t_cont.dtype)
    fired = torch.isfinite(t_dep)
    return torch.where(fired, t_cont + (torch.where(fired, t_dep, t_cont) - t_cont).detach(), t_cont)


def finetune(source, out, epochs: int, k: int, lr: float = 1e-3, progress: bool = True, log=print,
             max_train=None, eval_samples=None) -> dict:
    """Fine-tune the smooth checkpoint ``source`` for ``epochs`` epochs; write ``out`` after each
    epoch with the deployed (torch fixed) test accuracy; returns its meta. ``max_train``: the
    first training samples to use (default: the checkpoint's own, i.e. the data it trained on)."""
    net, meta = load_checkpoint(source)
    cfg = dict(meta["run_config"])
    data = datasets.load_task(cfg["task"])
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    max_train = max_train or cfg.get("max_train")
    if max_train:
        x, y = x[:max_train], y[:max_train]
    dep = Deployment(net, k)
    opt = AdaBelief(net.parameters(), lr=lr, betas=(cfg["beta1"], cfg["beta2"]))
    gen = torch.Generator().manual_seed(cfg["seed"])
    history = [dict(epoch=0, **evaluate(net, dep, data, cfg, eval_samples))]
    if log:
        log(_line(history[-1]))
    wall = 0.0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        loss = _epoch(net, dep, opt, gen, x, y, cfg, epoch, epochs, progress)
        wall += time.perf_counter() - t0
        history.append(dict(epoch=epoch, train_loss=loss, epoch_s=time.perf_counter() - t0,
                            **evaluate(net, dep, data, cfg, eval_samples)))
        if log:
            log(_line(history[-1]))
        _write(out, net, source, meta, cfg, history, k, lr, wall)
    return checkpoint.read(out, KIND)["meta"]


def _epoch(net, dep, opt, gen, x, y, cfg, epoch: int, epochs: int, progress: bool) -> float:
    order, total = torch.randperm(len(x), generator=gen), 0.0
    bar = tqdm(range(0, len(x), cfg["batch_size"]), desc=f"QAT epoch {epoch}/{epochs}", leave=False,
               disable=not progress, unit="batch")
    for i in bar:
        idx = order[i:i + cfg["batch_size"]]
        t_in = training_times(x[idx], net, cfg, gen)
        out = net(t_in)
        t_dep, _ = dep.first_times(net, t_in)
        loss = theta.smooth_loss(straight_through_times(out["t_out"], t_dep), y[idx], net.T, cfg["gamma"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        net.clamp_phases()
        total += loss.item() * len(idx)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total / len(x)


@torch.no_grad()
def evaluate(net, dep: Deployment, data, cfg: dict, samples=None) -> dict:
    """Continuous accuracy (pseudospikes) and deployed accuracy (torch fixed mode, fallback readout)
    on the first ``samples`` test samples (None: all)."""
    n = len(data.x_test) if samples is None else min(samples, len(data.x_test))
    x, y = torch.as_tensor(data.x_test[:n]), torch.as_tensor(data.y_test[:n])
    cont = dep_correct = 0
    for i in range(0, n, cfg["eval_batch"]):
        t_in = input_times(input_index(x[i:i + cfg["eval_batch"]], cfg), net, cfg)
        cont += int((predict(net(t_in)["t_out"]) == y[i:i + cfg["eval_batch"]]).sum())
        dep_correct += int((torch.as_tensor(dep.first_times(net, t_in)[1]) == y[i:i + cfg["eval_batch"]]).sum())
    return dict(accuracy=cont / n, accuracy_deployed=dep_correct / n, samples=n)


def _write(out, net, source, meta, cfg, history, k, lr, wall) -> None:
    new_meta = copy.deepcopy(meta)
    new_meta["qat"] = dict(source=str(source), k=k, lr=lr, epochs=history[-1]["epoch"], history=history,
                           wall_time_s=wall)
    checkpoint.write(out, KIND, config=net.config, state_dict=net.state_dict(), epoch=meta.get("epochs", 0),
                     history=list(checkpoint.read(source, KIND).get("history", [])), meta=new_meta)


def _line(h: dict) -> str:
    return (f"QAT epoch {h['epoch']}: deployed (torch fixed) accuracy {h['accuracy_deployed']:.2%}, "
            f"continuous {h['accuracy']:.2%} on {h['samples']} test samples")

