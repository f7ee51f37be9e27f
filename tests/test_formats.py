"""Formats are plug-ins: chosen by name or suffix, and a new format is one module that every verb reads.

`toolchain.formats` imports every module of its package on first use; a module that calls
`formats.register` is then a format of every verb (inspect, simulate, compile, verify, export).
The test format here is a JSON dump of an ONNX IR's bytes (hex) — trivial on purpose: what is
tested is the plug-in path, not the encoding.
"""
from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from models.errors import SpikeportError
from toolchain import formats
from toolchain.cli import main

HEX_FORMAT = '''
import json
from toolchain import formats
from toolchain.files import atomic_path
from toolchain.formats import onnx

def load(path):
    return onnx.from_model(onnx.onnx.load_model_from_string(bytes.fromhex(json.load(open(path))["onnx"])), str(path))

def save(ir, path):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"onnx": onnx.to_model(ir).SerializeToString().hex()}))

formats.register("hexjson", (".hexjson",), load, save, "test-only: ONNX bytes as hex in JSON")
'''


@pytest.fixture
def hex_format(tmp_path, monkeypatch):
    """A format that is one new module and nothing else (found on the package search path)."""
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "hexjson.py").write_text(textwrap.dedent(HEX_FORMAT))
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(tmp_path / "plugin")])
    monkeypatch.setattr(formats, "_discovered", False)
    yield
    formats.FORMATS.pop("hexjson", None)


def test_the_built_in_formats_are_found_by_name_and_by_suffix():
    assert {"onnx", "nir", "netx"} <= set(formats.names())
    assert formats.find("m.onnx").name == "onnx" and formats.find("M.NIR").name == "nir"
    assert formats.find("slayer.net").name == "netx"
    assert formats.find("anything", "nir").name == "nir"


def test_an_unknown_suffix_or_name_is_a_one_line_error_listing_the_known_ones():
    with pytest.raises(SpikeportError, match=r"no network format for suffix '\.h5'; known: \.net \(netx\), \.nir \(nir\), \.onnx \(onnx\)"):
        formats.find("model.h5")
    with pytest.raises(SpikeportError, match="unknown format 'sonata'; known: netx, nir, onnx"):
        formats.find("model.h5", "sonata")


def test_an_option_a_format_does_not_take_is_refused_naming_its_options(tmp_path):
    with pytest.raises(SpikeportError, match="format onnx: option 'dt' does not apply"):
        formats.load(tmp_path / "x.onnx", dt=1e-3)


def test_a_new_format_module_is_read_and_written_by_every_verb(hex_format, tmp_path, capsys):
    from conformance import example

    ir = example("LIF")
    formats.save(ir, tmp_path / "net.hexjson")
    assert formats.load(tmp_path / "net.hexjson") == ir
    assert main(["inspect", str(tmp_path / "net.hexjson")]) == 0
    assert "fixed-point parameters" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((2, 12, 5)) < 0.5)
    assert main(["simulate", str(tmp_path / "net.hexjson"), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "y.npz")]) == 0
    assert main(["compile", str(tmp_path / "net.hexjson"), "--out", str(tmp_path / "again.onnx")]) == 0
    assert formats.load(tmp_path / "again.onnx") == ir


NOTE_FORMAT = HEX_FORMAT.replace("def load(path):", "def load(path, note=None):").replace(
    'str(path))\n', 'str(path)) if note is None else _noted(path, note)\n\n'
    'def _noted(path, note):\n'
    '    ir = onnx.from_model(onnx.onnx.load_model_from_string(bytes.fromhex(json.load(open(path))["onnx"])), str(path))\n'
    '    ir.meta["note"] = note\n'
    '    return ir\n').replace(
    'formats.register("hexjson", (".hexjson",), load, save, "test-only: ONNX bytes as hex in JSON")',
    'formats.register("notejson", (".notejson",), load, save, "test-only", '
    'options={"note": formats.Option("a note put in the meta", flag="--json-note")})')


@pytest.fixture
def note_format(tmp_path, monkeypatch):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "notejson.py").write_text(textwrap.dedent(NOTE_FORMAT))
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(tmp_path / "plugin")])
    monkeypatch.setattr(formats, "_discovered", False)
    yield
    formats.FORMATS.pop("notejson", None)
    sys.modules.pop("toolchain.formats.notejson", None)  # the next test imports (registers) it afresh


def test_a_format_option_is_a_flag_of_every_reading_verb_and_reaches_the_reader(note_format, tmp_path, capsys):
    from conformance import example

    formats.save(example("LIF"), tmp_path / "net.notejson")
    assert main(["export", str(tmp_path / "net.notejson"), "--json-note", "hello", "--out", str(tmp_path / "n.onnx")]) == 0
    assert formats.load(tmp_path / "n.onnx").meta["note"] == "hello"
    with formats.using(note="ctx"):
        assert formats.load(tmp_path / "net.notejson").meta["note"] == "ctx"
        assert formats.load(tmp_path / "net.notejson", note="call").meta["note"] == "call"


def test_a_format_option_no_file_of_the_command_takes_is_refused_in_one_line(note_format, tmp_path, capsys):
    from conformance import example

    formats.save(example("LIF"), tmp_path / "net.onnx")
    assert main(["inspect", str(tmp_path / "net.onnx"), "--json-note", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"spikeport: error: --json-note applies to notejson files only, and this command reads or " \
                  f"writes none ({tmp_path / 'net.onnx'})"
