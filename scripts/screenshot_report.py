"""Render a verify report's report.html in headless Chromium to a PNG (a visual check).

    python scripts/screenshot_report.py out/demo/report/report.html --out report.png

Chromium runs offline-friendly (no first-run, sync, component updates or
background networking) with a throw-away profile; the page itself is
self-contained, so nothing is fetched. Exit status: Chromium's, or 2 when it
is missing or wrote no PNG.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")


def screenshot(html: Path, out: Path, width: int = 1280, height: int = 2400, timeout: float = 120.0) -> Path:
    """Render ``html`` at ``width`` x ``height`` CSS pixels into the PNG ``out``."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise FileNotFoundError("no chromium on PATH (apt-get install -y chromium)")
    out = out.resolve()
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="spikeport-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
               f"--window-size={width},{height}", html.resolve().as_uri()]
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not out.is_file():
        raise FileNotFoundError(f"chromium wrote no screenshot to {out}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("html", type=Path, help="report.html")
    p.add_argument("--out", type=Path, default=Path("report.png"))
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=2400)
    args = p.parse_args(argv)
    try:
        path = screenshot(args.html, args.out, args.width, args.height)
    except (FileNotFoundError, subprocess.SubprocessError) as exc:
        print(f"screenshot_report: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
