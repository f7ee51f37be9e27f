"""Numeric ranges of user values: command-line flags and config-file keys, checked in one place.

A `Range` states the allowed kind (integer or finite real) and interval of a
value and says, in one line, why a value is outside it. The CLI gives a
`Range` as an argparse ``type=``: argparse converts the text (a non-number is
its one-line usage error), and `check_flags` then refuses a number outside
the range as a `SpikeportError` (``spikeport: error: VERB FLAG: DEST=VALUE is
outside RANGE``, exit 2), before any command runs. The training-config schema
(`toolchain.methods.config`) uses `Range.problem` for config keys.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Optional

from models.errors import SpikeportError


@dataclass(frozen=True)
class Range:
    """Numbers of ``kind`` (int or float) in the interval from ``low`` to ``high`` (None: unbounded);
    ``open_low`` excludes ``low`` itself. Floats must be finite; bools are never numbers here."""

    kind: type
    low: Optional[float] = None
    high: Optional[float] = None
    open_low: bool = False

    def __str__(self) -> str:
        low = "-inf" if self.low is None else _num(self.low)
        high = "inf" if self.high is None else _num(self.high)
        left = "(" if self.open_low or self.low is None else "["
        right = ")" if self.high is None else "]"
        what = "an integer" if self.kind is int else "a finite number"
        return f"{left}{low}, {high}{right} ({what})"

    def problem(self, value) -> Optional[str]:
        """None if ``value`` is allowed, else why not: ``"VALUE is outside RANGE"``."""
        ok_type = (isinstance(value, int) and not isinstance(value, bool)) if self.kind is int else \
            (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
        if not ok_type or not self.contains(value):
            return f"{value!r} is outside {self}"
        return None

    def contains(self, value: float) -> bool:
        """Whether a number of the right kind lies in the interval."""
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def parse(self, text: str):
        """argparse ``type=``: ``text`` as a number of `kind` (the range is `check_flags`' job),
        else `argparse.ArgumentTypeError` naming the range."""
        try:
            return int(text) if self.kind is int else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is outside {self}") from None

    def __call__(self, text: str):
        return self.parse(text)


def ranged_flags(parser: argparse.ArgumentParser) -> list:
    """(flag, dest, `Range`) of every option of ``parser`` whose ``type=`` is a `Range`."""
    return [(a.option_strings[0], a.dest, a.type) for a in parser._actions if isinstance(a.type, Range)]


def check_flags(verb: str, args: argparse.Namespace, ranged: list) -> None:
    """A one-line `SpikeportError` for the first given flag of ``ranged`` (`ranged_flags`) whose
    value lies outside its range: ``VERB FLAG: DEST=VALUE is outside RANGE``."""
    for flag, dest, bound in ranged:
        value = getattr(args, dest, None)
        why = None if value is None else bound.problem(value)
        if why:
            raise SpikeportError(f"{verb} {flag}: {dest}={why}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


COUNT = Range(int, 1)  # a number of things (epochs, samples, threads): 1, 2, ...
NON_NEGATIVE_INT = Range(int, 0)  # seeds, optional iteration counts: 0, 1, ...
FRACTION = Range(float, 0.0, 1.0)  # a share of something, 0..1
POSITIVE = Range(float, 0.0, open_low=True)  # rates and steps: > 0, finite
NON_NEGATIVE = Range(float, 0.0)  # errors and penalties: >= 0, finite
# a difference of two fractions (accuracy drop float - fixed); a negative tolerance demands a gain
FRACTION_DIFFERENCE = Range(float, -1.0, 1.0)

VERIFY_SAMPLES = 100  # `spikeport verify --samples` when not given (spike-transform: every pattern of the split)

# argparse ``type=`` functions (a `Range` is callable); names say what the flag accepts
positive_int = COUNT
non_negative_int = NON_NEGATIVE_INT
fraction = FRACTION
fraction_difference = FRACTION_DIFFERENCE
positive_float = POSITIVE
non_negative_float = NON_NEGATIVE
