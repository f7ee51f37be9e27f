"""The event-driven synaptic product (`models.event_kernel`) against the dense product it replaces."""
import pytest
import torch

from models import synapses
from models.network import Network
from models.synapses import _exact_in_float32, event_density_limit, input_events, spikes_of, synaptic_input


def _spikes(shape, density, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).to(dtype)


def _both_paths(monkeypatch, run):
    """``run()`` with the event path, then with the dense product only."""
    out = []
    for on in (True, False):
        monkeypatch.setattr(synapses, "EVENT_DRIVEN", on)
        out.append(run())
    return out


def test_sparse_binary_inputs_without_gradient_take_the_event_path_and_others_do_not():
    sparse = _spikes((3, 20, 50), 0.03)
    assert input_events(sparse, 256) is not None
    assert input_events(_spikes((3, 20, 50), 0.2), 256) is None  # above the limit: dense is cheaper
    assert input_events(sparse, 64) is None  # too few postsynaptic neurons to pay for listing spikes
    assert input_events(sparse.clone().requires_grad_(), 256) is None  # a hidden layer's input needs dL/ds
    assert input_events(sparse.to(torch.int32), 256) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool, torch.int8, torch.int64, torch.float16])
def test_every_nonzero_input_value_is_a_spike_of_one_in_the_compiled_pass_as_in_torch(dtype):
    """`spikes_of` (one compiled pass on CPU tensors) equals ``(x != 0).to(dtype)``: NaN, negative
    and large values are spikes of 1; float16 takes torch's path."""
    x = _spikes((4, 30, 70), 0.1) * 3.0 - (_spikes((4, 30, 70), 0.05, seed=1) * 2.0)
    if dtype.is_floating_point:
        x[0, 0, :3] = torch.tensor([float("nan"), float("inf"), -1e30])
    x = x.to(dtype) if dtype != torch.bool else x != 0
    for out in (torch.float32, torch.float64):
        got = spikes_of(x, out)
        assert got.dtype == out and torch.equal(got, (x != 0).to(out))
    assert spikes_of(x, torch.float32).sum() > 0


def test_the_density_limit_grows_with_the_postsynaptic_population():
    assert event_density_limit(64) < 0 < event_density_limit(128) < event_density_limit(256) < 0.107


def test_the_spike_lists_hold_every_spike_by_row_and_by_input_in_ascending_order():
    s = _spikes((37, 23), 0.05, seed=4)
    row_ptr, inputs, row_values, col_ptr, rows, col_values = input_events(s, 1000)
    nz = s.nonzero().tolist()
    assert [(r, int(i)) for r in range(37) for i in inputs[row_ptr[r]:row_ptr[r + 1]]] == [tuple(x) for x in nz]
    by_input = sorted(nz, key=lambda x: (x[1], x[0]))
    assert [(int(r), i) for i in range(23) for r in rows[col_ptr[i]:col_ptr[i + 1]]] == [tuple(x) for x in by_input]
    assert (row_values == 1).all() and (col_values == 1).all()


def test_delayed_spike_lists_hold_at_step_t_the_spikes_of_step_t_minus_the_delay_and_none_before_it():
    """The synaptic latency is carried by the lists (`input_events` with a delay): output row
    (b, t) lists the inputs of ``s[b, t - delay]``, and rows t < delay are empty."""
    s = _spikes((3, 9, 40), 0.06, seed=9)
    row_ptr, inputs, _, col_ptr, rows, _ = input_events(s, 1000, delay=2)
    for b in range(3):
        for t in range(9):
            r = b * 9 + t
            want = s[b, t - 2].nonzero().flatten().tolist() if t >= 2 else []
            assert inputs[row_ptr[r]:row_ptr[r + 1]].tolist() == want
    by_input = sorted((b * 9 + t + 2, i) for b, t, i in s[:, :7].nonzero().tolist())
    assert sorted((int(r), i) for i in range(40) for r in rows[col_ptr[i]:col_ptr[i + 1]]) == by_input


@pytest.mark.parametrize("steps", [1, 2, 30])
def test_a_single_delay_group_summed_from_delayed_lists_equals_the_shifted_dense_product(monkeypatch, steps):
    """One delay d for every weight: the event sum over lists delayed by 1 + d equals the dense
    product shifted by 1 + d (zeros when the train is no longer than that), values and dW."""
    s = _spikes((4, steps, 50), 0.05, seed=10, dtype=torch.float64)
    w0 = torch.randn(300, 50, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    g = torch.randn(4, steps, 300, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    delays = torch.ones(300, 50, dtype=torch.long)

    def run():
        w = w0.clone().requires_grad_()
        a = synaptic_input(s, w, delays)
        loss = (a * g).sum()  # the dense path's train of zeros (steps <= 1 + d) has no graph: dW = 0
        return a.detach(), torch.autograd.grad(loss, w)[0] if loss.requires_grad else torch.zeros_like(w)

    (a_event, g_event), (a_dense, g_dense) = _both_paths(monkeypatch, run)
    torch.testing.assert_close(a_event, a_dense, rtol=1e-12, atol=1e-12)
    assert (a_event[:, :2] == 0).all()
    torch.testing.assert_close(g_event, g_dense, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_the_event_product_equals_the_dense_one_to_rounding_values_and_weight_gradients(monkeypatch, dtype, tol):
    s = _spikes((5, 30, 64), 0.05, seed=1, dtype=dtype)
    w0 = torch.randn(300, 64, generator=torch.Generator().manual_seed(2), dtype=dtype)
    g = torch.randn(5, 30, 300, generator=torch.Generator().manual_seed(3), dtype=dtype)
    assert input_events(s, 300) is not None

    def run():
        w = w0.clone().requires_grad_()
        a = synaptic_input(s, w)
        return a.detach(), torch.autograd.grad((a * g).sum(), w)[0]

    (a_event, g_event), (a_dense, g_dense) = _both_paths(monkeypatch, run)
    torch.testing.assert_close(a_event, a_dense, rtol=tol, atol=tol)
    torch.testing.assert_close(g_event, g_dense, rtol=tol, atol=tol)


def test_with_delays_every_delay_group_is_summed_from_the_same_spike_lists(monkeypatch):
    s = _spikes((2, 25, 30), 0.05, seed=5, dtype=torch.float64)
    w = torch.randn(300, 30, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    delays = torch.randint(0, 4, (300, 30), generator=torch.Generator().manual_seed(7))
    assert input_events(s, 300) is not None
    event, dense = _both_paths(monkeypatch, lambda: synaptic_input(s, w, delays))
    torch.testing.assert_close(event, dense, rtol=1e-12, atol=1e-12)


def test_in_fixed_mode_the_event_path_gives_the_dense_integers_bit_for_bit_and_gradients_to_float32_rounding(
        monkeypatch):
    """Binary spikes times integer weights sum exactly in any order (in float32 while the sums stay
    below 2**24, `models.synapses._exact_in_float32`): the torch fixed mode is unchanged to the bit;
    its weight gradients are float32 sums, as float mode's, so the two paths' differ in rounding only."""
    net = Network(dict(n_in=120, layers=[dict(n=300), dict(n=10)], seed=3))
    for layer in net.layers:
        layer.set_fixed_scale(300.0, 0)
    x = _spikes((6, 40, 120), 0.05, seed=8)
    assert input_events(x.double(), 300) is not None

    def run():
        net.zero_grad(set_to_none=True)
        traces = net(x, mode="fixed")
        (traces[-1].v.sum() + traces[0].v.sum()).backward()
        return traces, [layer.weight.grad.clone() for layer in net.layers]

    (t_event, g_event), (t_dense, g_dense) = _both_paths(monkeypatch, run)
    assert 0 < t_dense[0].s.mean() < 0.9
    for a, b in zip(t_event, t_dense):
        assert torch.equal(a.s, b.s) and torch.equal(a.v, b.v) and torch.equal(a.u, b.u)
    for a, b in zip(g_event, g_dense):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


@pytest.mark.parametrize("max_weight, float32", [(255, True), (2 ** 23 - 1, False)])
def test_fixed_mode_sums_in_float32_only_while_every_integer_sum_fits_its_24_bit_mantissa(max_weight, float32):
    s = _spikes((4, 30, 64), 0.3, seed=11, dtype=torch.float64)
    gen = torch.Generator().manual_seed(12)
    w = torch.randint(-max_weight, max_weight + 1, (50, 64), generator=gen, dtype=torch.float64)
    assert _exact_in_float32(s, w) is float32
    a = synaptic_input(s, w, fixed=True)
    exact = torch.einsum("btn,on->bto", s, w)  # float64: these integers are exact there
    # one step of synaptic latency; the integers come back in the dtype they were summed in
    assert torch.equal(a[:, 1:].double(), exact[:, :-1]) and a.dtype == (torch.float32 if float32 else torch.float64)
    assert not _exact_in_float32(s, w + 0.5) and not _exact_in_float32(s * 0.5, w)  # only integers, binary spikes
    assert _exact_in_float32(s * 0.5, w, binary=True) is float32  # a caller that made the spikes vouches for them
