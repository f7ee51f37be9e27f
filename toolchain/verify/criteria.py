"""What verify requires: the tolerances and the PASS/FAIL criterion of each check.

Every fixed-point neighbour pair must be bit-identical; the float-vs-fixed pair
that timing compares (``pair``, "float vs <engine>") must match enough output
spikes within +-1 step, keep the first-spike error and the accuracy drop small.
Times are in steps.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from models.errors import SpikeportError
from toolchain.flags import FRACTION, FRACTION_DIFFERENCE, NON_NEGATIVE

# The allowed values of each tolerance (the CLI flags of the same names take the same ranges).
TOLERANCE_RANGES = dict(min_match_1=FRACTION, max_accuracy_drop=FRACTION_DIFFERENCE, max_timing_error=NON_NEGATIVE)


@dataclass
class Tolerances:
    """Pass criteria besides bit-identity (None disables a criterion).

    ``min_match_1``: fraction of the float reference's output-layer spikes
    that the fixed engine matches within +-1 step. ``max_accuracy_drop``:
    float accuracy minus fixed accuracy (absolute fraction). ``max_timing_error``:
    mean |first-spike-time error| of the output layer, in steps.
    """

    min_match_1: Optional[float] = 0.9
    max_accuracy_drop: Optional[float] = 0.05
    max_timing_error: Optional[float] = None

    def __post_init__(self):
        """A tolerance outside `TOLERANCE_RANGES` (NaN, say) is a one-line `SpikeportError`."""
        for f in fields(self):
            value = getattr(self, f.name)
            why = None if value is None else TOLERANCE_RANGES[f.name].problem(value)
            if why:
                raise SpikeportError(f"verify: {f.name}={why}")

    @classmethod
    def from_args(cls, args) -> "Tolerances":
        """The CLI flags of the same names; an absent flag keeps its default."""
        given = {name: getattr(args, name, None) for name in cls.__dataclass_fields__}
        return cls(**{name: value for name, value in given.items() if value is not None})


@dataclass
class Criterion:
    name: str
    passed: bool
    detail: str


def criteria(comparisons: list, timing_result: dict, pair: Optional[str], output_node: str, correct: dict,
             tol: Tolerances) -> list:
    """Pass/fail of every check.

    ``comparisons``: (`BitIdentity`, text naming its compared variables) per fixed-point
    pair; ``timing_result``: pair -> node -> `toolchain.verify.timing.compare`; ``correct``:
    engine -> per-sample correctness of its prediction.
    """
    crit = [bit_identity(c, variables) for c, variables in comparisons]
    if pair is None:
        return crit
    out = timing_result[pair][output_node]
    if tol.min_match_1 is not None:
        frac = out["matched"][1]["ref"]
        crit.append(Criterion(f"{output_node} spikes matched within +-1 step ({pair})",
                              frac >= tol.min_match_1, f"{frac:.1%} (minimum {tol.min_match_1:.1%})"))
    if tol.max_timing_error is not None:
        err = out["first_spike"]["mean_abs"]
        crit.append(Criterion(f"{output_node} mean |first-spike error| ({pair})",
                              err <= tol.max_timing_error, f"{err:.3f} steps (maximum {tol.max_timing_error})"))
    if tol.max_accuracy_drop is not None:
        crit.append(accuracy_drop(pair, correct, tol.max_accuracy_drop))
    return crit


def bit_identity(comparison, variables: str) -> Criterion:
    """Every common sample identical in ``variables`` (e.g. "s, v, u") of every node."""
    c = comparison
    return Criterion(f"bit-identical {c.label}", c.identical,
                     f"{c.identical_samples}/{c.samples} samples identical ({variables}, every node)"
                     + (f"; {c.first_divergence.describe()}" if c.first_divergence else ""))


def accuracy_drop(pair: str, correct: dict, maximum: float) -> Criterion:
    """Accuracy of the test engine of ``pair`` against the reference's, on their common samples
    (`accuracy_change`: fails when it falls more than ``maximum``)."""
    ref, test = pair.split(" vs ")
    n = min(len(correct[ref]), len(correct[test]))
    return accuracy_change(ref, test, float(correct[ref][:n].mean()), float(correct[test][:n].mean()), maximum)


def at_least(name: str, value: float, minimum: Optional[float], what: str = "") -> Optional[Criterion]:
    """``value >= minimum`` (fractions, shown as percentages); None when ``minimum`` is None (disabled)."""
    if minimum is None:
        return None
    return Criterion(name, value >= minimum - 1e-12, f"{value:.1%}{what} (minimum {minimum:.1%})")


def accuracy_change(ref: str, test: str, ref_value: float, test_value: float, max_drop: float,
                    measure: str = "accuracy") -> Criterion:
    """``measure`` (a fraction) may fall at most ``max_drop`` from ``ref`` to ``test``: the detail is
    the signed change test minus ref (a gain is positive), the name says "change", never "drop"."""
    change = test_value - ref_value
    return Criterion(f"{measure} change {ref} -> {test}", change >= -max_drop - 1e-12,
                     f"{change:+.1%} ({ref_value:.1%} -> {test_value:.1%}; minimum {-max_drop:+.1%})")


def identical(label: str, identical_samples: int, samples: int, what: str, first: Optional[str] = None) -> Criterion:
    """Every one of ``samples`` identical in ``what`` (e.g. "s, v, u of every node")."""
    return Criterion(f"bit-identical {label}", identical_samples == samples,
                     f"{identical_samples}/{samples} samples identical ({what})" + (f"; {first}" if first else ""))
