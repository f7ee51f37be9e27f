"""Gate-method training defaults (spikeport's protocol after Huh & Sejnowski; every number a setting).

Times in ms. The neuron keys are `models.gate.GateNeuron`'s; the task keys those of
`toolchain.tasks.gate_tasks` (XOR_DEFAULTS, PC_DEFAULTS). ``iterations`` are optimiser
steps, each on a fresh batch of ``batch_size`` trials (XOR: equally many of each condition);
learning rates decay as exp(-iteration / tau_lr); ``eval_every`` iterations the run scores ``eval_trials`` fresh validation trials and writes
its checkpoint.
"""
from toolchain.flags import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, Range
from toolchain.tasks.gate_tasks import PC_DEFAULTS, XOR_DEFAULTS

NEURON_KEYS = ("dt", "tau_v", "tau_s", "x_a", "width", "x_th", "x_reset", "gate")
RUN_DEFAULTS = dict(dt=1.0, tau_v=8.0, tau_s=10.0, x_a=2.0, width=16.0, x_th=18.0, x_reset=1.0, gate="box",
                    w_scale=0.5, u_scale=1.0, bias_range=0.3, bias_mean=-0.4, o_scale=0.0, lr=3e-4, lr_readout=1e-2, tau_lr=300.0, beta1=0.9, beta2=0.999, clip=1.0,
                    batch_size=16, eval_every=50, eval_trials=200, seed=0, threads=1)
TASK_DEFAULTS = {
    "xor": dict(n_rec=64, iterations=500, activity=1e-4, lr=3e-5, tau_lr=200.0, **XOR_DEFAULTS),
    # a fast task: a 2 ms synapse (the readout trace's filter alone costs NMSE 1 - tau_in / (tau_in + tau_s))
    # and ~180 spikes/s per neuron (b ~ U(15, 25)) so that 120 neurons' spikes resolve the input (docs/gate.md)
    "predictive-coding": dict(n_rec=120, iterations=300, activity=1e-3, x_reset=-4.0, tau_s=2.0, bias_mean=20.0,
                              bias_range=5.0, w_scale=1.0, u_scale=12.0, lr=1e-2, tau_lr=400.0, **PC_DEFAULTS),
}
RANGES = dict(dt=POSITIVE, tau_v=POSITIVE, tau_s=POSITIVE, width=POSITIVE, w_scale=NON_NEGATIVE,
              u_scale=NON_NEGATIVE, o_scale=NON_NEGATIVE, bias_range=NON_NEGATIVE, bias_mean=Range(float), lr_readout=POSITIVE, tau_lr=POSITIVE, beta1=FRACTION, beta2=FRACTION, clip=POSITIVE,
              eval_every=COUNT, eval_trials=COUNT, n_rec=Range(int, 2), activity=NON_NEGATIVE,
              duration=POSITIVE, pre_cue_weight=NON_NEGATIVE, jitter=NON_NEGATIVE, noise=NON_NEGATIVE,
              channels=COUNT, tau_in=POSITIVE, washout=NON_NEGATIVE)
SOLVED = 0.95  # XOR: fraction of test trials with the right sign (the criterion)
CONFIDENT = 0.5  # XOR, information only (spikeport's own figure, not a criterion): |mean readout| >= 0.5
MAX_NMSE = 0.1  # predictive coding: normalised MSE on held-out trials
VERIFY_TRIALS, VERIFY_LAVA_TRIALS = 1000, 50  # verify's --samples, --lava-samples when not given
VERIFY_SEED_OFFSET = 1_000_003  # verify's default seed: far from any training batch's seed
KIND = "spikeport-gate-checkpoint"  # the tag of this method's checkpoints (`toolchain.checkpoint`)
