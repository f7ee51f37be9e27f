"""The torch simulator against Lava itself, running: float == floating_pt, fixed == fixed_pt.

Random small networks are lowered to the IR and run by lava-nc; the
simulator must produce the same u, v (post-reset, as Lava records it) and
spikes for every layer at every step.
"""
import numpy as np
import pytest
import torch

from models import fixed_point as fx
from models.network import Network
from toolchain.lower import lower

pytestmark = pytest.mark.lava

T = 40


def _network(seed, *, du, dv, max_delay=0, recurrent=False, lam=300.0, exp=0, sign="mixed", bias=0.0):
    cfg = dict(n_in=12, seed=seed, layers=[
        dict(n=9, du=du, dv=dv, max_delay=max_delay, recurrent=recurrent),
        dict(n=5, du=du, dv=dv)])
    net = Network(cfg).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.layers:
            w = torch.rand(layer.weight.shape, generator=gen, dtype=torch.float64) * 1.6 - 0.5
            layer.weight.copy_({"mixed": w, "excitatory": w.abs(), "inhibitory": -w.abs()}[sign])
            layer.bias.copy_(bias * (torch.rand(layer.size, generator=gen, dtype=torch.float64) - 0.3))
            if layer.rec_weight is not None:
                layer.rec_weight.copy_(torch.rand(layer.rec_weight.shape, generator=gen, dtype=torch.float64) - 0.6)
            layer.set_fixed_scale(lam, exp, exp)
    return net


def _inputs(seed, batch=3, density=0.3):
    rng = np.random.RandomState(seed)
    return (rng.rand(batch, T, 12) < density).astype(np.float64)


def _compare(net, x, mode, exact=True):
    from backends.lava.runner import run_lava

    ir = lower(net)
    got = run_lava(ir, x, mode=mode)
    with torch.no_grad():
        traces = net(torch.from_numpy(x), mode=mode)
    for i, tr in enumerate(traces):
        node = f"layers.{i}"
        want = {"s": tr.s.numpy(), "v": tr.v_post.numpy(), "u": tr.u.numpy()}
        for key, arr in want.items():
            lava = got[f"{node}/{key}"]
            if exact or key == "s":
                assert np.array_equal(lava, arr), f"{node}/{key} differs from Lava ({mode})"
            else:
                np.testing.assert_allclose(lava, arr, rtol=1e-9, atol=1e-9, err_msg=f"{node}/{key}")
    return traces


SCENARIOS = {
    "mixed weights, random decays": dict(du=0.3, dv=0.15, bias=0.05),
    "no current decay (du=-1), no leak (dv=0)": dict(du=0.0, dv=0.0),
    "du=0 (one unit of decay), dv=4095": dict(du=1 / 4096, dv=4095 / 4096),
    "du=4095: u is only this step's input": dict(du=1.0, dv=0.2),
    "delays 0..5": dict(du=0.2, dv=0.1, max_delay=5),
    "recurrent": dict(du=0.2, dv=0.1, recurrent=True),
    "inhibitory weights, positive bias": dict(du=0.1, dv=0.1, sign="inhibitory", bias=0.4),
    "excitatory weights, weight_exp 7: u crosses +-2**23": dict(du=0.05, dv=0.0, sign="excitatory", lam=2e4, exp=7),
    "mixed weights, weight_exp -2": dict(du=0.2, dv=0.1, lam=40.0, exp=-2),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fixed_mode_equals_lava_fixed_pt_bit_for_bit(name):
    net = _network(sum(map(ord, name)) % 1000, **SCENARIOS[name])
    traces = _compare(net, _inputs(3), "fixed")
    assert sum(float(t.s.sum()) for t in traces) > 0, "scenario must spike"


def test_large_input_really_wraps_u_past_two_to_the_23():
    net = _network(7, **SCENARIOS["excitatory weights, weight_exp 7: u crosses +-2**23"])
    with torch.no_grad():
        traces = net(torch.from_numpy(_inputs(3, density=0.6)), mode="fixed")
    u = traces[0].u.numpy()
    assert u.max() > 2 ** 22 and u.min() < -2 ** 22  # the single 2**24 correction was taken
    _compare(net, _inputs(3, density=0.6), "fixed")


@pytest.mark.parametrize("name", ["mixed weights, random decays", "delays 0..5", "recurrent"])
def test_float_mode_equals_lava_floating_pt(name):
    net = _network(11, **SCENARIOS[name])
    _compare(net, _inputs(5), "float", exact=False)
