"""Training options of the two spike-transform learning rules (times in ms)."""
from __future__ import annotations

from models.errors import SpikeportError
from toolchain.methods.config import resolve

METHOD_DEFAULTS = {
    "exact": dict(iterations=1000, lr=3e-3, kernel=("dexp", 10.0, 2.5), min_slope=0.02, clip=10.0,
                  count_weight=10.0, reach=5.0, silent_weight=10.0, stop_error=1e-4),
    "surrogate": dict(iterations=3000, lr=1e-2, tau=5.0, slope=2.0, clip=10.0, stop_error=1e-4),
}


def method_config(method: str, **overrides) -> dict:
    """Training options of ``method`` (`METHOD_DEFAULTS`) with ``overrides``; unknown names are an error."""
    if method not in METHOD_DEFAULTS:
        raise SpikeportError(f"spike-transform: method {method!r} is not one of {sorted(METHOD_DEFAULTS)}")
    cfg = resolve(METHOD_DEFAULTS[method], what=f"spike-transform ({method})",
                  **{k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()})
    if int(cfg["iterations"]) < 1:
        raise SpikeportError(f"spike-transform ({method}): iterations={cfg['iterations']} is outside [1, inf)")
    return cfg

KIND = "spikeport-spike-transform-checkpoint"  # the tag of this method's checkpoints (`toolchain.checkpoint`)
