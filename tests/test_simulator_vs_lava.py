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


def _compare(net, x, mode, exact=True, lava=None):
    """The simulator's traces of ``net`` on ``x`` against Lava's; ``lava``: Lava's outputs for
    exactly ``(lower(net), x, mode)`` when already run (the `lava` fixture), else run here."""
    from backends.lava.runner import run_lava

    got = run_lava(lower(net), x, mode=mode) if lava is None else lava
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


WRAPS = "excitatory weights, weight_exp 7: u crosses +-2**23"
FLOAT_SCENARIOS = ["mixed weights, random decays", "delays 0..5", "recurrent"]


def _cases() -> dict:
    """``{(mode, case): (network, input)}`` of the tests below (seeded: built alike every time)."""
    cases = {("fixed", name): (_network(sum(map(ord, name)) % 1000, **SCENARIOS[name]), _inputs(3))
             for name in SCENARIOS}
    cases["fixed", "large input"] = (_network(7, **SCENARIOS[WRAPS]), _inputs(3, density=0.6))
    cases.update({("float", name): (_network(11, **SCENARIOS[name]), _inputs(5)) for name in FLOAT_SCENARIOS})
    return cases


@pytest.fixture(scope="module")
def lava():
    """``{(mode, case): (network, input, Lava's outputs)}``: the cases of one mode run in one Lava
    child (`run_lava_many`), each its own Lava network, so the child's start-up is paid once a
    mode instead of once a case. A Lava failure fails every test using this."""
    from backends.lava.runner import run_lava_many

    cases, out = _cases(), {}
    for mode in ("fixed", "float"):
        keys = [key for key in cases if key[0] == mode]
        runs = run_lava_many([(lower(cases[key][0]), cases[key][1]) for key in keys], mode=mode)
        out.update({key: (*cases[key], got) for key, got in zip(keys, runs)})
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fixed_mode_equals_lava_fixed_pt_bit_for_bit(name, lava):
    net, x, got = lava["fixed", name]
    traces = _compare(net, x, "fixed", lava=got)
    assert sum(float(t.s.sum()) for t in traces) > 0, "scenario must spike"


def test_large_input_really_wraps_u_past_two_to_the_23(lava):
    net, x, got = lava["fixed", "large input"]
    with torch.no_grad():
        traces = net(torch.from_numpy(x), mode="fixed")
    u = traces[0].u.numpy()
    assert u.max() > 2 ** 22 and u.min() < -2 ** 22  # the single 2**24 correction was taken
    _compare(net, x, "fixed", lava=got)


@pytest.mark.parametrize("name", FLOAT_SCENARIOS)
def test_float_mode_equals_lava_floating_pt(name, lava):
    net, x, got = lava["float", name]
    _compare(net, x, "float", exact=False, lava=got)


def test_int32_wrap_of_the_current_sum_matches_lava():
    """u far outside 24 bits: ``decay(u) + (a << 6)`` wraps in int32 before the 2**24 correction.

    800 inputs all spiking through weights 254 << 7 give ``a << 6`` ~ 1.6 * 2**30 a step;
    the single 2**24 correction leaves u near 2**30, so the next step's sum passes 2**31.
    (The voltage sum cannot wrap here: after the correction |u| <= 2**31 - 2**24, v is
    saturated and the bias is 13 bits << 7; it takes an out-of-range initial v.)
    """
    from models.synapses import synaptic_input

    n_in, steps, lam, exp = 800, 12, 2e4, 7
    net = Network(dict(n_in=n_in, seed=0, layers=[dict(n=4, du=0.02, dv=0.0), dict(n=3, du=0.3, dv=0.1)])).double()
    with torch.no_grad():
        full = 254 * 2.0 ** exp / lam  # quantizes to exactly 254 << 7 (mixed signs: even grid)
        net.layers[0].weight.copy_(torch.tensor([1.0, 0.9, 0.6, -0.8], dtype=torch.float64)[:, None] * full
                                   * torch.ones(4, n_in, dtype=torch.float64))
        net.layers[1].weight.copy_(torch.tensor([[0.2, 0.1, 0.3, 0.1], [0.1, -0.3, 0.2, 0.2],
                                                 [0.3, 0.3, -0.2, 0.1]], dtype=torch.float64))
        for layer in net.layers:
            layer.set_fixed_scale(lam, exp, exp)
        p = net.layers[0].fixed_parameters()
    assert p["weight"].abs().max() == 254  # no clipping in play
    x = np.zeros((2, steps, n_in))
    x[0] = 1.0  # every input, every step
    x[1, ::2] = 1.0  # every other step
    traces = _compare(net, x, "fixed")
    # the int32 wrap of the current sum was really taken (without it, s/u differ from Lava)
    with torch.no_grad():
        scaled = fx.scaled_input(synaptic_input(torch.from_numpy(x), p["weight"], fixed=True, weight_exp=exp))
        u = traces[0].u
        u_prev = torch.cat([torch.zeros_like(u[:, :1]), u[:, :-1]], dim=1)
        current_sum = fx.decay(u_prev, fx.current_factor(p["du"])) + scaled
    assert float(current_sum.abs().max()) > fx.INT32_MAX
