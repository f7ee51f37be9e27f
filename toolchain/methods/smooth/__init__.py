"""Smooth exact gradients with theta neurons and pseudospikes (Klos & Memmesheimer), deployed as QIF.

Training (`train`) runs the exact event-based theta network of `models.theta_network`
(layer by layer, autograd through the closed-form phase transfer, pseudospikes for
neurons that did not fire); deployment (`lower`, `deploy`) discretises it to the
fixed-point QIF op (`toolchain.ir.ops.qif`) on the emulator and on spikeport's own Lava
process (`backends.lava.qif`). Time is the theta neuron's dimensionless time (trial T);
the deployed step is dt = tau 2**-k, and layer l's engine step n stands for time
(n - l - 1) dt.
"""
from toolchain.methods import Method
from toolchain.methods.smooth import commands
from toolchain.methods.smooth.config import KIND, TASK_DEFAULTS

METHOD = Method(
    name="smooth",
    description="smooth exact gradients of theta neurons with pseudospikes (Klos & Memmesheimer 2023), "
                "deployed as fixed-point QIF neurons",
    rules=("smooth",), tasks=tuple(TASK_DEFAULTS), kind=KIND, label="smooth",
    add_options=commands.add_options, train=commands.train, compile=commands.compile, verify=commands.verify,
    epochs={t: d["epochs"] for t, d in TASK_DEFAULTS.items()})
