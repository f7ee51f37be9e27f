"""TTFS training defaults (times in units of tau_syn) and the deployed step."""
from toolchain.flags import COUNT, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE

TASK_DEFAULTS = {
    "digits": dict(hidden=[100], epochs=40, lr=2e-3, batch_size=32),
    "mnist": dict(hidden=[800], epochs=20, lr=1e-3, batch_size=32),
    "yinyang": dict(hidden=[120], epochs=100, lr=5e-3, batch_size=32),  # Goltz et al. 2021: 4-120-3
}
RUN_DEFAULTS = dict(theta=1.0, t_max_in=2.0, init_mean=6.0, init_std=1.0, k_penalty=1.0,
                    lr_decay=0.1, clip=10.0, weight_decay=0.0, seed=0, threads=1,
                    max_train=None, bucket=16, log_every=0, loss_domain="z", loss_scale=1.0)
# Ranges of TTFS's own config keys (shared ones: `toolchain.methods.config.RANGES`)
RANGES = dict(theta=POSITIVE, t_max_in=POSITIVE, init_std=NON_NEGATIVE, k_penalty=NON_NEGATIVE,
              lr_decay=POSITIVE, clip=POSITIVE, bucket=COUNT, max_train=COUNT, log_every=NON_NEGATIVE_INT,
              loss_scale=POSITIVE)
DEFAULT_DT = 0.0625  # deployed step, units of tau_syn (the step examples/ttfs_mnist.py justifies)
# A task whose few inputs need a finer step: on Yin-Yang (4 inputs) rounding the input times to
# 1/16 tau_syn alone costs 1.6 pp; at 1/64 the grid costs nothing (docs/accuracy.md)
TASK_DT = {"yinyang": 0.015625}


def default_dt(task) -> float:
    """The deployed step (units of tau_syn) of a network trained on ``task`` when ``--dt`` is not given."""
    return TASK_DT.get(task, DEFAULT_DT)

KIND = "spikeport-ttfs-checkpoint"  # the tag of this method's checkpoints (`toolchain.checkpoint`)
