"""The emulator backend: Lava's LIF networks on numpy, batched, bit-identical.

``run(ir, x, record=None, *, mode="fixed")`` executes an IR for a batch of
inputs and returns ``{"<node>/s|<state var>": (B, T, n)}``; ``prepare(ir, mode)``
prepares it once for many runs (``program.run(x, record)``). ``mode="fixed"`` is Lava
``fixed_pt`` bit for bit, ``mode="float"`` is Lava ``floating_pt`` (float64).
See `backends.emulator.engine` for the time convention and how it runs, and
`backends.emulator.arith` for the two arithmetic variants.
"""
from backends.emulator.engine import Program, implementation, prepare, run

__all__ = ["Program", "implementation", "prepare", "run"]
