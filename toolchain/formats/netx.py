"""Lava-DL netx ``.net`` files (HDF5), read and written by `toolchain.netx` (see there and
docs/netx.md): ``load`` gives the IR netx-on-Lava runs, ``save`` writes a file netx loads
into exactly the integers spikeport runs, or refuses naming the layer and the reason."""
from __future__ import annotations

from toolchain import formats
from toolchain.netx import reader, writer


def load(path):
    """Read a ``.net`` file (`toolchain.netx.reader.read`)."""
    return reader.read(path)


def save(ir, path) -> None:
    """Write a fixed-point IR as a ``.net`` file, atomically (`toolchain.netx.writer.write`)."""
    writer.write(ir, path)


formats.register("netx", (".net",), load, save, "Lava-DL netx HDF5 (.net) as lava.lib.dl.netx.hdf5.Network loads it")
