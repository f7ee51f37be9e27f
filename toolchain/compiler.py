"""Old home of SuperSpike compilation, kept for `toolchain.verify` (owned elsewhere), which imports
``compile_network`` from here; the code is `toolchain.methods.superspike.compile`."""
from toolchain.methods.superspike.compile import compile_network  # noqa: F401
