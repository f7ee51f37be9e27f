"""Lava (lava-nc 0.10.0) backend: IR -> real Lava processes, run on Loihi2SimCfg.

Public API:

* `run_lava(ir, x, record=None, *, mode, batching, timeout, workers)`: run an
  IR on Lava's CPU simulator in stoppable child processes; returns
  ``{"<node>/s|v|u": (B, T, n)}`` like `backends.emulator.run`.
* `run_lava_many(runs, *, mode, batching, timeout, check)`: several ``(ir, x)``
  runs, each its own Lava network, in turn in one child process; one
  `run_lava` result a run.
* `check_lava_params(ir, mode)`: refuse parameters Lava would silently misread.
* `register` / `lava_op` (`backends.lava.ops`): how each op type becomes a Lava
  process (its own process and models where Lava has none);
* `build_network` / `run_network`: the process graph, tiled batching, Monitors;
  in-process, no isolation.
* `build_process_graph` / `run_process_graph` / `hardware_script`:
  the path to Loihi 2 (``Loihi2HwCfg`` needs Intel's closed lava-loihi).
* `backends.lava.feed`: the process of the zero-hop `Feed` op (netx input layers);
* `import_lava()`: the Python 3.11 shim; call it before any ``import lava``.

Importing this package does not import Lava.
"""
from backends.lava import feed  # noqa: F401  (registers the Feed mapping)
from backends.lava.builder import LavaNetwork, build_network, check_lava_params, run_network
from backends.lava.compat import import_lava
from backends.lava.hardware import (build_process_graph, hardware_script, loihi_extension_available,
                                    run_process_graph)
from backends.lava.ops import LavaOp, lava_op, register
from backends.lava.runner import run_lava, run_lava_many
from backends.lava import qif as _qif  # noqa: F401  (registers spikeport's QIF process)
from backends.lava import gate_qif as _gate_qif  # noqa: F401  (registers spikeport's gate QIF process)

__all__ = [
    "LavaNetwork", "LavaOp", "register", "build_network", "build_process_graph", "check_lava_params",
    "hardware_script", "import_lava", "lava_op", "loihi_extension_available", "run_lava", "run_lava_many", "run_network",
    "run_process_graph",
]
