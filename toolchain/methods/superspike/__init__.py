"""SuperSpike surrogate gradients (Zenke & Ganguli 2018) on spike-count classification.

Lava CUBA LIF networks trained in discrete time (one step per synaptic hop)
on encoded digits, MNIST or Yin-Yang; optionally quantization-aware in Lava's
integer arithmetic (``--qat``) or fine-tuned from a checkpoint
(``--finetune``). Compiled with calibrated post-training quantization, or
with the trained integers after quantization-aware training.
"""
from toolchain.methods import Method
from toolchain.methods.superspike import commands
from toolchain.methods.superspike.config import KIND, TASK_DEFAULTS


METHOD = Method(
    name="superspike",
    description="SuperSpike surrogate gradients, spike-count classification (optionally quantization-aware)",
    rules=("surrogate",), tasks=tuple(TASK_DEFAULTS), kind=KIND, label="SuperSpike",
    add_options=commands.add_options, train=commands.train, compile=commands.compile, verify=commands.verify,
    epochs={t: d["epochs"] for t, d in TASK_DEFAULTS.items()},
    default=True)
