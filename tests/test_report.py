"""The verify report folder: complete, self-contained, written atomically."""
import json
import re

import pytest

from models.errors import SpikeportError
from toolchain import report
from toolchain.verify import verify

from test_verify import make_tiny_checkpoint


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    ckpt = make_tiny_checkpoint(tmp_path_factory.mktemp("report"))
    return verify(ckpt, samples=20, backends=("float", "emulator"))


@pytest.fixture(scope="module")
def folder(result, tmp_path_factory):
    return report.write_report(result, tmp_path_factory.mktemp("out") / "report")


def test_report_folder_holds_json_html_and_the_pngs(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"report.json", "report.html", "timing_hist.png", "quantization.png"} <= names
    assert "raster_0.png" in names
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_json_has_every_number_versions_seeds_and_the_quantization(folder, result):
    data = json.loads((folder / "report.json").read_text())
    assert {"source", "task", "samples", "lava_samples", "engines", "agreement", "exact", "timing", "criteria",
            "passed", "exit_status", "versions", "seeds", "quantization", "compile_mode", "tolerances",
            "encoding", "platform"} <= set(data)
    assert {"spikeport", "torch", "numpy", "lava-nc"} <= set(data["versions"])
    assert data["seeds"]["verify"] == 0 and data["compile_mode"].startswith("post-training")
    assert set(data["quantization"]) == {"layers.0", "layers.1"}
    node = data["timing"]["float vs emulator"]["layers.1"]
    assert {"0", "1", "2"} == set(node["matched"]) and "histogram" in node["first_spike"]
    assert data["exact"][0]["identical_samples"] == 20 and data["passed"] is result.passed


def test_report_html_is_self_contained(folder):
    page = (folder / "report.html").read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:|file:|//)", page)
    pngs = len(list(folder.glob("*.png")))
    assert page.count("src='data:image/png;base64,") == pngs
    assert "Bit-exact agreement" in page and "Quantization" in page


def test_rewriting_a_report_replaces_it_and_leaves_no_temporary_folder(result, tmp_path):
    target = tmp_path / "report"
    report.write_report(result, target)
    (target / "stale.png").write_bytes(b"old")
    report.write_report(result, target)
    assert not (target / "stale.png").exists() and (target / "report.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_report_never_replaces_a_folder_that_is_not_a_report(result, tmp_path):
    (tmp_path / "model.pt").write_bytes(b"precious")
    with pytest.raises(SpikeportError, match="not a spikeport report folder"):
        report.write_report(result, tmp_path)
    assert (tmp_path / "model.pt").read_bytes() == b"precious"


def test_a_failure_while_writing_leaves_no_partial_report(result, tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "render_html", broken)
    with pytest.raises(RuntimeError):
        report.write_report(result, tmp_path / "report")
    assert list(tmp_path.iterdir()) == []
