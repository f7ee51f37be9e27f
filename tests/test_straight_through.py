"""Fixed mode's one-node quantizers (`models.straight_through`) against the composed torch chains."""
import numpy as np
import pytest
import torch

from models import fixed_params as fp
from models import fixed_point as fx
from models import straight_through as ste


@pytest.mark.parametrize("signs", ["mixed", "excitatory", "inhibitory"])
def test_weight_quantizer_gives_the_composed_chains_integers_and_gradient_clipped_weights_included(signs):
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(40, 30, generator=gen) * 0.4
    w = {"mixed": w, "excitatory": w.abs(), "inhibitory": -w.abs()}[signs].requires_grad_()
    lam, exp = 300.0, 0  # 300 * 0.4 * 3 sd: a few weights beyond the 8-bit range
    g = torch.randn(40, 30, dtype=torch.float64, generator=gen)
    fused, mode = ste.weights(w, lam, exp)
    (fused * g).sum().backward()
    w_ref = w.detach().clone().requires_grad_()
    composed, mode_ref = fp.quantize_weights(w_ref.double(), lam, fp.SynapseScale(exp))
    (composed * g).sum().backward()
    assert fp.count_clipped(w.detach().numpy(), lam, fp.SynapseScale(exp)) > 0
    assert mode == mode_ref and torch.equal(fused, composed.detach())
    assert torch.allclose(w.grad, w_ref.grad, rtol=1e-6, atol=0) and w.grad.dtype == torch.float32
    assert bool((w.grad == 0).any())  # clipped weights take no gradient, as through the clamp


def test_decay_threshold_and_bias_quantizers_round_forward_and_pass_the_scale_backward():
    du, vth = torch.tensor(0.2, requires_grad=True), torch.tensor(1.3, requires_grad=True)
    bias = torch.tensor([0.0, 0.01, -0.02, 3.0], requires_grad=True)  # 3.0 needs a larger bias exponent
    lam = 500.0
    q_du, q_vth, q_bias = ste.decay(du, 1), ste.threshold(vth, lam), ste.bias(bias, lam)
    mant, exp, _ = fp.bias_to_fixed(bias.detach().numpy(), lam)
    assert q_du.item() == fx.du_from_float(0.2) and q_vth.item() == fp.threshold_to_fixed(1.3, lam)
    assert np.array_equal(q_bias.detach().numpy(), mant * 2.0 ** exp) and exp.max() > exp.min()
    (q_du + q_vth + q_bias.sum()).backward()
    assert float(du.grad) == fx.DECAY_UNITY and float(vth.grad) == lam
    assert torch.equal(bias.grad, torch.full((4,), 64 * lam))


def test_bias_split_takes_the_smallest_exponent_that_fits_with_or_without_the_shortcut():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0, 100, 50), rng.normal(0, 1e5, 50)  # all fit exponent 0 / most need more
    for b in (small, large):
        mant, exp, err = fx.split_bias(b)
        fits = [(fx.round_half_away(b / 2.0 ** e) >= fx.BIAS_MANT_RANGE[0])
                & (fx.round_half_away(b / 2.0 ** e) <= fx.BIAS_MANT_RANGE[1]) for e in range(8)]
        smallest = np.argmax(np.array(fits), axis=0)
        assert np.array_equal(exp, smallest) and np.array_equal(mant * 2.0 ** exp - b, err)
    assert fx.split_bias(small)[1].max() == 0 and fx.split_bias(large)[1].max() > 0
