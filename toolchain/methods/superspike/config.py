"""SuperSpike training defaults: per task, for fine-tuning, and for every run."""

TASK_DEFAULTS = {
    "digits": dict(encoding=dict(name="regular", T=20, max_rate=0.5), hidden=[128], du=0.2, dv=0.05,
                   weight_gain=3.0, epochs=30, lr=3e-3, weight_decay=0.05, batch_size=64, loss="count"),
    "yinyang": dict(encoding=dict(name="regular", T=30, max_rate=0.5), hidden=[64], du=0.2, dv=0.05,
                    weight_gain=3.0, epochs=30, lr=3e-3, weight_decay=0.01, batch_size=64, loss="count"),
    "mnist": dict(encoding=dict(name="regular", T=20, max_rate=0.5), hidden=[256], du=0.2, dv=0.05,
                  weight_gain=3.0, epochs=5, lr=2e-3, weight_decay=0.01, batch_size=128, loss="count"),
}
FINETUNE_DEFAULTS = dict(epochs=10, lr=3e-4)  # a short, gentle run from a trained network
RUN_DEFAULTS = dict(seed=0, feedback="symmetric", slope=10.0, mode="float", threads=None,
                    max_delay=0, recurrent=False)
