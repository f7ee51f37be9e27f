"""Networks and process checks shared by the Lava tests: hand-built IRs in Lava's integer units
(`dense`, `lif`, `chain_ir`, `zoo_ir`), impulse inputs, and the Lava processes a test left behind."""
import os
import time

import numpy as np

from models import fixed_point as fx
from toolchain import ir as irm

EXC, MIXED, INH = int(fx.SignMode.EXCITATORY), int(fx.SignMode.MIXED), int(fx.SignMode.INHIBITORY)
BIG_VTH = 100_000  # vth << 6 = 6.4e6: never reached in these tests


def dense(weights, sign_mode=None, weight_exp=0, num_message_bits=0, delays=None):
    """A fixed Dense (or DelayDense when ``delays`` is given) with integer weights."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.int64))
    mode = int(fx.infer_sign_mode(w)) if sign_mode is None else sign_mode
    fixed = irm.SynapseFixed(w, weight_exp=weight_exp, num_weight_bits=8, sign_mode=mode)
    if delays is not None:
        return irm.DelayDense(w.astype(float), num_message_bits=num_message_bits, fixed=fixed,
                              delay=np.asarray(delays, dtype=np.int64).reshape(w.shape))
    return irm.Dense(w.astype(float), num_message_bits=num_message_bits, fixed=fixed)


def lif(n, du=4095, dv=0, vth=BIG_VTH, bias=0, bias_exp=0, reset=None):
    """A fixed LIF population (LIFReset when ``reset=(interval, offset)``)."""
    fixed = irm.LIFFixed(du=du, dv=dv, vth=vth, bias_mant=np.full(n, bias), bias_exp=np.full(n, bias_exp),
                         u=np.zeros(n), v=np.zeros(n))
    if reset is not None:
        return irm.LIFReset(n, du=0.0, dv=0.0, vth=1.0, fixed=fixed, reset_interval=reset[0], reset_offset=reset[1])
    return irm.LIF(n, du=0.0, dv=0.0, vth=1.0, fixed=fixed)


def impulses(T, n, *steps):
    """(T, n) input with a spike on every channel at the given 1-based steps."""
    x = np.zeros((T, n), dtype=np.int64)
    for t in steps:
        x[t - 1] = 1
    return x


def chain_ir():
    """Input -> Dense(200) -> l1 -> Dense(200) -> l2 -> out (du=4095: u is this step's input only)."""
    ir = irm.IR("chain")
    ir.add("in", irm.Input(1))
    ir.add("d1", dense([[200]]), ["in"])
    ir.add("l1", lif(1, vth=10), ["d1"])
    ir.add("d2", dense([[200]]), ["l1"])
    ir.add("l2", lif(1, vth=10), ["d2"])
    ir.add("out", irm.Output(1), ["l2"])
    return ir


def zoo_ir():
    """A random network with every feature: two synapses into one LIF, recurrence,
    delays, LIFReset, mixed/excitatory/inhibitory weights."""
    rng = np.random.RandomState(7)
    ir = irm.IR("zoo")
    ir.add("in", irm.Input(6))
    ir.add("d1", dense(rng.randint(-60, 120, (5, 6))), ["in"])
    ir.add("l1", lif(5, du=900, dv=300, vth=60, bias=rng.randint(-20, 40, 5)[0]), ["d1"])
    ir.add("rec", dense(rng.randint(-80, 0, (5, 5)), sign_mode=INH), ["l1"])
    ir.connect("rec", "l1")
    ir.add("dd", dense(rng.randint(0, 150, (4, 5)), sign_mode=EXC, delays=rng.randint(0, 4, (4, 5))), ["l1"])
    ir.add("skip", dense(rng.randint(-100, 100, (4, 6)), weight_exp=-1), ["in"])
    ir.add("l2", lif(4, du=500, dv=200, vth=40, reset=(7, 3)), ["dd", "skip"])
    ir.add("out", irm.Output(4), ["l2"])
    return ir


def zoo_inputs():
    return (np.random.RandomState(3).rand(3, 24, 6) < 0.35).astype(np.int64)


def lava_processes(marker: str) -> list:
    """Live processes whose environment carries ``marker`` (so: started by this test)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def children_of_this_process() -> list:
    kids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != b"Z":
            kids.append(int(pid))
    return kids


def assert_no_survivors(marker: str) -> None:
    deadline = time.monotonic() + 3
    while (lava_processes(marker) or children_of_this_process()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lava_processes(marker) == [], "Lava processes survived"
    assert children_of_this_process() == [], "child processes of the test survived"
