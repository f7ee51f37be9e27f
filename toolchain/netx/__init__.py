"""Lava-DL netx ``.net`` files (HDF5), as lava-dl 0.6.0's ``netx.hdf5.Network`` reads them.

* `rules`: netx's own integer rules, mirrored without lava-dl: the neuron mapping
  (CUBA -> Lava LIF), ``optimize_weight_bits`` followed by Lava's weight clip,
  truncation and sum-then-shift, the delay clamp, the default neuron;
* `reader`: a ``.net`` file -> the IR netx-on-Lava runs (every deviation from what
  SLAYER trained is a warning and a line of the IR's ``format_notes``);
* `writer`: a fixed-point IR -> a ``.net`` file that netx loads into exactly the
  integers spikeport runs, or a one-line refusal naming the layer and the reason.

`toolchain.formats.netx` registers the format (name ``netx``, suffix ``.net``);
the schema and netx's pitfalls are in ``docs/netx.md``.

Time convention (netx-on-Lava's, and every spikeport engine's): steps 1..T; a
dense layer's synapse adds one step (a delay d adds 1 + d); an ``input`` layer's
neuron receives ``weight * x[t] + bias`` at step t itself (`toolchain.ir.ops.Feed`).
"""
