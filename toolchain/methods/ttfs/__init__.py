"""Exact time-to-first-spike learning (Mostafa 2018) and its discrete deployment.

Training (`train`) runs the exact continuous-time model of `models.ttfs_layer`;
deployment discretises it to Lava CUBA LIF neurons (`lower`), quantizes it
(`quantize`) and runs it on the emulator and on Lava (`readout`, `deploy`,
`analysis`). Times are in units of tau_syn throughout; a deployed step is
``dt`` (units of tau_syn) and step index ``i`` (0-based, Lava step ``i + 1``)
stands for continuous time ``i * dt``.
"""
from toolchain.methods import Method
from toolchain.methods.ttfs import commands
from toolchain.methods.ttfs.config import KIND, TASK_DEFAULTS


METHOD = Method(
    name="ttfs",
    description="exact time-to-first-spike gradients in continuous time (Mostafa 2018), deployed at step --dt",
    rules=("ttfs",), tasks=tuple(TASK_DEFAULTS), kind=KIND, label="TTFS",
    add_options=commands.add_options, train=commands.train, compile=commands.compile, verify=commands.verify,
    epochs={t: d["epochs"] for t, d in TASK_DEFAULTS.items()})
