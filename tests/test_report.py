"""The report folder: complete, self-contained, written atomically; a method can add its own sections."""
import json
import re
import shutil

import pytest
from matplotlib.figure import Figure

from models.errors import SpikeportError
from toolchain.verify import report, verify
from toolchain.verify.verify_report import write_verify_report



@pytest.fixture(scope="module")
def result(tiny_checkpoint):
    return verify(tiny_checkpoint, samples=20, backends=("float", "emulator"))


@pytest.fixture(scope="module")
def folder(result, tmp_path_factory):
    return write_verify_report(result, tmp_path_factory.mktemp("out") / "report")


def test_report_folder_holds_json_html_and_the_pngs(folder):
    names = {p.name for p in folder.iterdir()}
    assert {"report.json", "report.html", "timing_hist.png", "quantization.png"} <= names
    assert "raster_0.png" in names
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_json_has_every_number_versions_seeds_and_the_quantization(folder, result):
    data = json.loads((folder / "report.json").read_text())
    assert {"source", "task", "samples", "lava_samples", "engines", "agreement", "bit_identity", "timing", "criteria",
            "passed", "exit_status", "versions", "seeds", "quantization", "compile_mode", "tolerances",
            "encoding", "platform"} <= set(data)
    assert {"spikeport", "torch", "numpy", "lava-nc"} <= set(data["versions"])
    assert data["seeds"]["verify"] == 0 and data["compile_mode"].startswith("post-training")
    assert set(data["quantization"]) == {"layers.0", "layers.1"}
    node = data["timing"]["float vs emulator"]["layers.1"]
    assert {"0", "1", "2"} == set(node["matched"]) and "histogram" in node["first_spike"]
    assert data["bit_identity"][0]["identical_samples"] == 20 and data["passed"] is result.passed


def test_report_html_is_self_contained(folder):
    page = (folder / "report.html").read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:|file:|//)", page)
    pngs = len(list(folder.glob("*.png")))
    assert page.count("src='data:image/png;base64,") == pngs
    assert "Bit-identical engines" in page and "Quantization" in page


def test_rewriting_a_report_replaces_it_and_leaves_no_temporary_folder(result, folder, tmp_path):
    target = tmp_path / "report"
    shutil.copytree(folder, target)  # a report written before (the module's), plus a file it no longer has
    (target / "stale.png").write_bytes(b"old")
    write_verify_report(result, target)
    assert not (target / "stale.png").exists() and (target / "report.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_report_never_replaces_a_folder_that_is_not_a_report(result, tmp_path):
    (tmp_path / "model.pt").write_bytes(b"precious")
    with pytest.raises(SpikeportError, match="not a spikeport report folder"):
        write_verify_report(result, tmp_path)
    assert (tmp_path / "model.pt").read_bytes() == b"precious"


def test_a_failure_while_writing_leaves_no_partial_report(result, tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_verify_report(result, tmp_path / "report")
    assert list(tmp_path.iterdir()) == []


def test_a_method_adds_its_own_sections_before_versions_and_seeds(result, tmp_path):
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [1, 0])
    extra = [report.Section("Spike trains <learned>", "<p>one</p>", [("trains.png", "trains & targets", fig)]),
             report.text_section("Log", "a < b")]
    folder = write_verify_report(result, tmp_path / "report", extra)
    page = (folder / "report.html").read_text()
    assert (folder / "trains.png").read_bytes()[:4] == b"\x89PNG"
    assert "<h2>Spike trains &lt;learned&gt;</h2><p>one</p><h3>trains &amp; targets</h3><img alt='trains.png'" in page
    assert page.index("<h2>Log</h2><pre>a &lt; b</pre>") < page.index("<h2>Versions and seeds</h2>")
    assert page.index("<h2>Figures</h2>") < page.index("<h2>Spike trains")


def test_the_writer_takes_any_data_and_sections_and_refuses_repeated_figure_names(tmp_path):
    fig = Figure(figsize=(1, 1))
    folder = report.write_report(tmp_path / "r", {"loss": 0.5}, [report.Section("A", "<p>a</p>")], title="t")
    assert json.loads((folder / "report.json").read_text()) == {"loss": 0.5}
    assert "<title>t</title>" in (folder / "report.html").read_text()
    twice = [report.Section("A", figures=[("x.png", "x", fig)]), report.Section("B", figures=[("x.png", "y", fig)])]
    with pytest.raises(ValueError, match="file names repeat"):
        report.write_report(tmp_path / "s", {}, twice)
    with pytest.raises(ValueError, match="file names repeat"):
        report.write_report(tmp_path / "s", {}, [], attachments={"report.json": lambda path: None})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_attachments_are_written_inside_the_folder_and_a_failing_one_leaves_no_report(tmp_path):
    folder = report.write_report(tmp_path / "r", {}, [], attachments={"net.onnx": lambda p: p.write_bytes(b"ir")})
    assert (folder / "net.onnx").read_bytes() == b"ir" and (folder / "report.json").is_file()

    def broken(path):
        path.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        report.write_report(tmp_path / "s", {}, [], attachments={"net.onnx": broken})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_check_replaceable_accepts_absent_empty_and_report_folders_only(tmp_path, folder):
    report.check_replaceable(tmp_path / "absent")
    report.check_replaceable(tmp_path)
    report.check_replaceable(folder)
    (tmp_path / "model.pt").write_bytes(b"x")
    for bad in (tmp_path, tmp_path / "model.pt"):
        with pytest.raises(SpikeportError, match="not a spikeport report folder; choose another --report"):
            report.check_replaceable(bad)


def test_plain_makes_numpy_scalars_python_and_with_nan_to_none_strict_json():
    import numpy as np

    data = report.plain({"a": (np.int64(3), np.float64("nan")), "b": float("inf")}, nan_to_none=True)
    assert data == {"a": [3, None], "b": None} and type(data["a"][0]) is int
    assert json.loads(json.dumps(data, allow_nan=False)) == data
