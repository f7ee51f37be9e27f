"""The Python 3.11 shim (backends/lava/compat.py) makes lava-nc 0.10.0 import and run.

Both checks run in a fresh interpreter, in its own process group with a
timeout: the import is really tested (Lava is not already imported), a
broken shim cannot hang the suite or leak processes, and earlier tests
cannot interfere (Lava's import calls ``multiprocessing.set_start_method``,
which fails once anything, e.g. a tqdm bar, has fixed the start method).
The running check uses Lava directly, without spikeport's builder.
"""
import json
import sys

import pytest

from fresh_interpreter import run_isolated

ONE_NEURON = """
from backends.lava.compat import import_lava
import_lava()
import json
import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF
from lava.proc.monitor.process import Monitor

data = np.zeros((1, 6), dtype=int)
data[0, 0] = 1
src = RingBuffer(data=data)
dense = Dense(weights=np.array([[100]]))
lif = LIF(shape=(1,), du=0, dv=0, vth=100000)
src.s_out.connect(dense.s_in)
dense.a_out.connect(lif.a_in)
mon = Monitor()
mon.probe(lif.u, 6)
lif.run(condition=RunSteps(num_steps=6), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
u = mon.get_data()[lif.name]["u"][:, 0]
lif.stop()
print(json.dumps([int(x) for x in u]))
"""


IMPORT = """
import dataclasses, sys
from backends.lava.compat import import_lava
lava = import_lava()
from lava.magma.core.run_configs import Loihi2SimCfg  # fails on 3.11 without the shim
from lava.proc.lif.process import LIF
assert import_lava() is lava  # idempotent
print(sys.version_info[:2] >= (3, 11))
"""


def run_fresh(code: str, timeout: float = 120) -> tuple:
    """Run ``code`` in a fresh interpreter: (returncode, stdout, stderr)."""
    return run_isolated([sys.executable, "-c", code], timeout)


def test_shim_makes_lava_importable_on_python_311():
    code, out, err = run_fresh(IMPORT)
    assert code == 0, err
    assert out.split() == ["True"]


@pytest.mark.lava
def test_one_neuron_lava_network_decays_current_by_one_4096th_with_du_0():
    code, out, err = run_fresh(ONE_NEURON)
    assert code == 0, err
    # weight 100 enters as 100 << 6 = 6400 at step 2; du = 0 still decays by (4095/4096), toward zero
    assert json.loads(out.strip().splitlines()[-1]) == [0, 6400, 6398, 6396, 6394, 6392]


AFTER_TQDM = """
import multiprocessing
from tqdm import tqdm
for _ in tqdm(range(2)):  # tqdm's lock fixes the start method
    pass
assert multiprocessing.get_start_method(allow_none=True) is not None
from backends.lava.compat import import_lava
import_lava()
import lava.magma.runtime.message_infrastructure.multiprocessing  # calls set_start_method('fork')
try:
    multiprocessing.set_start_method('spawn')
except RuntimeError:
    print('different method still refused')
"""


def test_lava_imports_after_the_start_method_was_fixed_and_other_methods_are_still_refused():
    code, out, err = run_fresh(AFTER_TQDM)
    assert code == 0, err
    assert out.split("\n")[0] == "different method still refused"
