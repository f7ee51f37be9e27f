"""Gate-function exact gradients for recurrent QIF networks (Huh & Sejnowski 2018), deployed as graded spikes.

Training (`train`): BPTT through the time-stepped gate network of `models.gate` (compiled
kernel `models.gate_kernel`) on the delayed-memory XOR or predictive coding
(`toolchain.tasks.gate_tasks`). Deployment (`lower`, `deploy`): the fixed-point gate QIF op
(`toolchain.ir.ops.gate_qif`) sending its gate charge as graded spikes through Lava Dense
processes with ``num_message_bits > 0``, on the emulator and on spikeport's Lava process
(`backends.lava.gate_qif`). Time: step n (1-based engine step) of dt ms covers the model's
step n; the readout, one synapse hop away, reports at engine step n + 1 the model's o[n].
"""
from toolchain.methods import Method
from toolchain.methods.gate import commands
from toolchain.methods.gate.config import KIND, TASK_DEFAULTS

METHOD = Method(
    name="gate",
    description="gate-function exact gradients (BPTT) for recurrent QIF networks (Huh & Sejnowski 2018), "
                "deployed as fixed-point QIF neurons with graded gate spikes",
    rules=("gate",), tasks=tuple(TASK_DEFAULTS), kind=KIND, label="gate",
    add_options=commands.add_options, train=commands.train, compile=commands.compile, verify=commands.verify)
