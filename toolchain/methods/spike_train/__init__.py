"""Spike-train-to-spike-train learning on the spike-transform task (`toolchain.tasks.spike_transform`).

Two learning rules train a student to reproduce a teacher's output spike trains:

* ``exact`` (`exact`): the continuous-time student with exact spike-time gradients of
  Banerjee's (2016) error functional;
* ``surrogate`` (`surrogate`): the same initialisation discretised to Lava CUBA LIF
  (1 step = 1 ms), SuperSpike surrogate gradients on the van Rossum distance.

Deployment (`deploy`) discretises, quantizes and runs the student on the emulator and
on Lava; output spikes are scored in steps against ``ceil(t̂)``. Time unit: 1 ms = 1 step.
"""
from toolchain.methods import Method
from toolchain.methods.spike_train import commands
from toolchain.methods.spike_train.config import KIND, METHOD_DEFAULTS


METHOD = Method(
    name="spike_train",
    description="spike-train-to-spike-train learning (Banerjee 2016): exact spike-time gradients or surrogate",
    rules=("exact", "surrogate"), tasks=("spike-transform",), kind=KIND, label="spike-transform",
    add_options=commands.add_options, train=commands.train, compile=commands.compile, verify=commands.verify,
    epochs={"spike-transform": ", ".join(f"{rule} {d['iterations']}" for rule, d in METHOD_DEFAULTS.items())},
    epochs_unit="iterations")
