"""Bit-identity of two recordings: variables read from the keys, counts, and the first divergence."""
import numpy as np
import pytest

from models.errors import SpikeportError
from toolchain.verify import compare_bit_identity
from toolchain.verify.compare import combine, compared_variables, variables_text


def recording(B=3, T=5, n=4, **arrays):
    """``{"<node>/<var>": (B, T, n)}`` zeros for each ``node__var`` name given (insertion order kept)."""
    return {name.replace("__", "/"): np.zeros((B, T, n), np.int32) for name in arrays}


def test_a_neuron_type_with_other_state_variables_compares_every_recorded_variable():
    a = recording(n__s=1, n__x=1, n__y=1)
    b = {k: v.copy() for k, v in a.items()}
    c = compare_bit_identity("a", a, "b", b, ["n"])
    assert c.identical and c.arrays == c.identical_arrays == 3 * 3 and c.values == c.equal_values == 3 * 3 * 5 * 4
    b["n/y"][1, 2, 3] = 7
    c = compare_bit_identity("a", a, "b", b, ["n"])
    assert (c.identical_samples, c.identical_by_node, c.identical_arrays) == (2, {"n": 2}, 8)
    d = c.first_divergence
    assert (d.node, d.var, d.sample, d.step, d.neuron, d.values) == ("n", "y", 1, 3, 3, (0, 7))


def test_within_a_step_state_variables_come_first_in_recorded_order_and_spikes_last():
    a = recording(n__s=1, n__x=1, n__w=1)
    b = {k: v.copy() for k, v in a.items()}
    for var in ("s", "x", "w"):
        b[f"n/{var}"][0, 2, 0] = 1
    assert compared_variables(a, b, "n") == ("x", "w", "s")
    assert compare_bit_identity("a", a, "b", b).first_divergence.var == "x"
    b["n/x"][0, 2, 0] = 0
    assert compare_bit_identity("a", a, "b", b).first_divergence.var == "w"
    b["n/w"][0, 2, 0] = 0
    assert compare_bit_identity("a", a, "b", b).first_divergence.var == "s"


def test_the_first_divergence_is_the_earliest_step_then_the_most_upstream_node_then_sample_and_neuron():
    a = recording(first__s=1, first__x=1, second__s=1, second__x=1)
    b = {k: v.copy() for k, v in a.items()}
    b["second/s"][0, 1, 0] = 1  # step 2, downstream
    b["first/x"][2, 3, 1] = 1  # step 4, upstream
    assert compare_bit_identity("a", a, "b", b, ["first", "second"]).first_divergence.describe() == (
        "first divergence at node second, neuron 0, step 2, sample 0: s = 0 (a) vs 1 (b)")
    b["first/x"][1, 1, 2] = 5
    b["first/x"][0, 1, 3] = 5
    d = compare_bit_identity("a", a, "b", b, ["first", "second"]).first_divergence
    assert (d.node, d.var, d.step, d.sample, d.neuron) == ("first", "x", 2, 0, 3)


def test_only_the_variables_and_samples_both_engines_recorded_are_compared():
    a = recording(B=3, n__s=1, n__x=1, n__extra=1)
    b = recording(B=2, n__x=1, n__s=1)
    c = compare_bit_identity("a", a, "b", b)
    assert c.samples == 2 and c.arrays == 2 * 2 and c.identical


def test_the_reports_list_the_variables_as_the_second_engine_records_them():
    lif_torch = recording(n__u=1, n__v=1, n__s=1)
    lif_backend = recording(n__s=1, n__v=1, n__u=1)
    assert compared_variables(lif_torch, lif_backend, "n") == ("u", "v", "s")
    assert variables_text(lif_torch, lif_backend, "n") == "s, v, u"


def test_disagreeing_shapes_and_nothing_in_common_are_one_line_errors():
    a, b = recording(n__s=1), recording(n=3, n__s=1)
    with pytest.raises(SpikeportError, match=r"n/s: a gives shape \(3, 5, 4\), b gives \(3, 5, 3\)"):
        compare_bit_identity("a", a, "b", b)
    with pytest.raises(SpikeportError, match="node 'n' has no variable recorded by both a and b"):
        compare_bit_identity("a", recording(n__s=1), "b", recording(n__x=1), ["n"])
    with pytest.raises(SpikeportError, match="recorded no node in common"):
        compare_bit_identity("a", recording(n__s=1), "b", recording(m__s=1))


def test_chunks_of_samples_combine_into_one_comparison_numbering_samples_from_the_first_chunk():
    a = recording(B=5, n__x=1, n__s=1)
    b = {k: v.copy() for k, v in a.items()}
    b["n/s"][3, 4, 1] = 1
    whole = compare_bit_identity("a", a, "b", b)
    chunks = [compare_bit_identity("a", {k: v[i:i + 2] for k, v in a.items()}, "b", {k: v[i:i + 2] for k, v in b.items()})
              for i in (0, 2, 4)]
    assert combine(chunks) == whole and whole.first_divergence.sample == 3
    b["n/x"][4, 1, 0] = 2  # the last chunk now diverges at an earlier step
    whole = compare_bit_identity("a", a, "b", b)
    chunks[2] = compare_bit_identity("a", {k: v[4:] for k, v in a.items()}, "b", {k: v[4:] for k, v in b.items()})
    assert combine(chunks) == whole and (whole.first_divergence.sample, whole.first_divergence.step) == (4, 2)
