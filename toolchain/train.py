"""Old home of SuperSpike training, kept for `toolchain.verify` (owned elsewhere), which imports
``TASK_DEFAULTS`` and ``encode`` from here; the code is `toolchain.methods.superspike.train`."""
from toolchain.methods.superspike.config import TASK_DEFAULTS  # noqa: F401
from toolchain.methods.superspike.train import encode  # noqa: F401
