"""The one report writer: a folder with report.json, a self-contained report.html and PNGs, atomically.

    report/
      report.json        the caller's numbers (``data``), as JSON
      report.html        every section in order; PNGs embedded as base64, opens offline
      <name>.png         the sections' figures
      <attachment>       any further file the caller writes (an IR, say)

A report is a list of `Section` (title, HTML body, figures), so a learning
method writes its own report by giving its own sections, or extends another
(the classification verify's: `toolchain.verify.verify_report`).

The folder is built under a temporary name beside the target and renamed
into place, so a report is either complete or absent. An existing folder is
only replaced if it is a previous report (it holds ``report.json``) or empty;
`check_replaceable` tells before a long run.
"""
from __future__ import annotations

import base64
import html
import importlib.metadata
import json
import math
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.errors import SpikeportError

PACKAGES = ("spikeport", "torch", "numpy", "lava-nc", "matplotlib", "onnx")
CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f0f0f0}td.num{text-align:right}.pass{color:#1a7f37;font-weight:bold}
.fail{color:#cf222e;font-weight:bold}img{max-width:100%;border:1px solid #ddd;margin:.3em 0}
code{background:#f6f8fa;padding:1px 4px}pre{overflow-x:auto;font-size:12px}
p.legend{font-size:12px;color:#555;max-width:1100px;margin-top:-1em}"""


@dataclass
class Section:
    """One part of the page: an ``<h2>`` ``title`` (plain text; none if empty), an HTML ``body``
    (escape text with `escape`) and ``figures``: (PNG file name, caption, matplotlib Figure),
    each saved as its own file and shown under an ``<h3>`` caption."""

    title: str
    body: str = ""
    figures: list = field(default_factory=list)


def text_section(title: str, text: str) -> Section:
    """A section showing plain ``text`` as preformatted lines."""
    return Section(title, f"<pre>{escape(text)}</pre>")


# ------------------------------------------------------------------ writing
def write_report(folder, data: dict, sections: list, title: str = "spikeport report",
                 attachments: dict | None = None) -> Path:
    """Write ``data`` (JSON-ready, see `plain`) and ``sections`` into ``folder`` atomically; returns the folder.
    ``title``: the page's ``<title>``. ``attachments``: ``{file name: write(path)}`` for further files
    (an IR, say), each written by its callable inside the temporary folder, so they too appear
    with the rest or not at all."""
    folder = Path(folder)
    check_replaceable(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        os.chmod(tmp, 0o755)
        _write_contents(tmp, data, sections, title, attachments or {})
        _move_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def check_replaceable(folder) -> None:
    """Raise `SpikeportError` unless `write_report` may write ``folder``: absent, empty or a previous
    report. Call it before a long run, so a wrong ``--report`` fails at once."""
    folder = Path(folder)
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir()) and not (folder / "report.json").is_file()):
        raise SpikeportError(f"{folder}: exists and is not a spikeport report folder; choose another --report")


def _move_into_place(tmp: Path, folder: Path) -> None:
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
        os.rename(folder, old)
    os.rename(tmp, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_contents(folder: Path, data: dict, sections: list, title: str, attachments: dict) -> None:
    figures = [name for section in sections for name, _, _ in section.figures]
    names = ["report.json", "report.html", *figures, *attachments]
    if len(set(names)) != len(names):
        raise ValueError(f"report: file names repeat among report.json/html, figures and attachments: {names}")
    (folder / "report.json").write_text(json.dumps(data, indent=1, allow_nan=False))
    for section in sections:
        for name, _, fig in section.figures:
            fig.savefig(folder / name, dpi=90)
    for name, write in attachments.items():
        write(folder / name)
    (folder / "report.html").write_text(render_html(sections, folder, title))


def plain(d: dict, nan_to_none: bool = False) -> dict:
    """Tuples -> lists, numpy scalars -> Python (for torch's weights_only loader and JSON);
    with ``nan_to_none`` NaN/inf -> None, so the result is strict JSON (what `write_report` takes)."""
    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        v = v.item() if isinstance(v, np.generic) else v
        return None if nan_to_none and isinstance(v, float) and not math.isfinite(v) else v
    return conv(d)


def provenance() -> dict:
    """``versions`` (of spikeport and the packages its numbers depend on) and ``platform``."""
    return dict(versions=versions(), platform=dict(python=platform.python_version(), machine=platform.machine(),
                                                   system=platform.system()))


def versions(packages=PACKAGES) -> dict:
    """Installed versions of ``packages`` (default: spikeport and the packages its numbers depend
    on); ``None`` for one not installed."""
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


# --------------------------------------------------------------------- html
def render_html(sections: list, folder: Path, title: str) -> str:
    """The self-contained page of ``sections``, whose PNGs are already in ``folder``."""
    parts = []
    for section in sections:
        parts += [f"<h2>{escape(section.title)}</h2>"] if section.title else []
        parts += [section.body] + [f"<h3>{escape(caption)}</h3>{image(folder / name)}"
                                   for name, caption, _ in section.figures]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def escape(text) -> str:
    return html.escape(str(text))


def legend(text: str) -> str:
    """A table's legend: what each column means (plain ``text``, as an HTML paragraph)."""
    return f"<p class='legend'>{escape(text)}</p>"


def verdict(passed: bool) -> str:
    """PASS/FAIL, coloured."""
    return f"<span class='{'pass' if passed else 'fail'}'>{'PASS' if passed else 'FAIL'}</span>"


def table(header: list, rows: list) -> str:
    """An HTML table; header and cells are HTML already."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def image(path: Path) -> str:
    """The PNG at ``path``, embedded."""
    return (f"<img alt='{escape(path.name)}' "
            f"src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}'>")
