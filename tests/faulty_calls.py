"""Calls that fail on purpose, for the scale-out fault tests.

Kept in a module of their own that imports next to nothing: a worker unpickles a call by importing
its function's module, so a worker started only to die or to raise pays for this file's imports,
not for a test module's (torch, training, Lava), at every start and retry.
"""
import os

from models.errors import SpikeportError


def raise_spikeport_error(value):
    """Raise the one-line user error ``bad value VALUE``."""
    raise SpikeportError(f"bad value {value}")


def die(code):
    """End this process at once with exit code ``code`` (no cleanup, as a kill would)."""
    os._exit(code)
