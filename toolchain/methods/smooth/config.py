"""Smooth-gradient (theta neuron) training defaults and the deployed step.

Times are the theta neuron's dimensionless time (trial ``T``; tau = 6/pi, so the
free period Theta = 6). MNIST is the reference setup of Klos & Memmesheimer's code
(784-100-100-10, binarised pixels spiking together, T = 2, AdaBelief lr 4e-3 decaying
by 1/e over 100 epochs, batch 1000, pixel flips p = 0.02, gamma = 0.01).
"""
from toolchain.flags import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, Range

TASK_DEFAULTS = {
    "mnist": dict(hidden=[100, 100], epochs=100, batch_size=1000, bins=1, p_flip=0.02),
    "digits": dict(hidden=[100, 100], epochs=60, batch_size=100, bins=1, p_flip=0.02),
    "yinyang": dict(hidden=[120], epochs=100, batch_size=100, bins=0, p_flip=0.0),
}
RUN_DEFAULTS = dict(T=2.0, tau=6.0 / 3.141592653589793, I0=1.25, w_scale=0.5, gamma=1e-2,
                    lr=4e-3, beta1=0.9, beta2=0.999, tau_lr=100.0, seed=0, threads=0,
                    latency_window=1.0, eval_batch=1000, max_train=None)
RANGES = dict(T=POSITIVE, tau=POSITIVE, I0=Range(float, 0.25, open_low=True), w_scale=POSITIVE,
              gamma=NON_NEGATIVE, beta1=FRACTION, beta2=FRACTION, tau_lr=POSITIVE, bins=Range(int, 0),
              p_flip=FRACTION, latency_window=POSITIVE, eval_batch=COUNT, max_train=COUNT,
              threads=Range(int, 0))

DEFAULT_K = 8  # deployed step h = dt / tau = 2**-k (dt = 0.0075 time units; 273 engine steps for T = 2, 3 layers)
KIND = "spikeport-smooth-checkpoint"  # the tag of this method's checkpoints (`toolchain.checkpoint`)
