"""Training options of the two spike-transform learning rules (times in ms)."""
from __future__ import annotations

from models.errors import SpikeportError
from toolchain.flags import NON_NEGATIVE, POSITIVE
from toolchain.methods.config import resolve

METHOD_DEFAULTS = {
    "exact": dict(iterations=1000, lr=3e-3, kernel=("dexp", 10.0, 2.5), min_slope=0.02, clip=10.0,
                  count_weight=10.0, reach=5.0, silent_weight=10.0, stop_error=1e-4),
    "surrogate": dict(iterations=3000, lr=1e-2, tau=5.0, slope=2.0, clip=10.0, stop_error=1e-4),
}
# Ranges of the rules' own keys (shared ones, iterations and lr: `toolchain.methods.config.RANGES`)
RANGES = dict(min_slope=POSITIVE, clip=POSITIVE, count_weight=NON_NEGATIVE, reach=NON_NEGATIVE,
              silent_weight=NON_NEGATIVE, stop_error=NON_NEGATIVE, tau=POSITIVE, slope=POSITIVE)


def method_config(method: str, **overrides) -> dict:
    """Training options of ``method`` (`METHOD_DEFAULTS`) with ``overrides``; unknown names are an error."""
    if method not in METHOD_DEFAULTS:
        raise SpikeportError(f"spike-transform: method {method!r} is not one of {sorted(METHOD_DEFAULTS)}")
    return resolve(METHOD_DEFAULTS[method], what=f"spike-transform ({method})", ranges=RANGES,
                   **{k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items()})

KIND = "spikeport-spike-transform-checkpoint"  # the tag of this method's checkpoints (`toolchain.checkpoint`)
