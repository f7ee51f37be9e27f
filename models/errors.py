"""The one error type a user can cause, shared by every spikeport package.

It lives in `models` because `models` is the bottom of the dependency order
(`toolchain` and `backends` both import it; it imports nothing of theirs).
The CLI prints ``str(error)`` on one line and exits with code 2.
"""
from __future__ import annotations


class SpikeportError(ValueError):
    """A failure the user caused: bad file, bad parameter, unsupported op.

    The message names what is wrong and where: node (or file), parameter,
    value and the limit it broke.
    """


def out_of_range(where: str, param: str, value, limit: str) -> SpikeportError:
    """Build the standard one-line range error: ``where: param=value outside limit``."""
    return SpikeportError(f"{where}: {param}={value} is outside {limit}")
