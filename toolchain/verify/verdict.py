"""What every method's verify shares: the criteria block it prints, its exit status and the frame of its report.

Every ``spikeport verify`` (classification, TTFS, smooth, spike-transform, ...) prints
its own summary, then the same block::

    criteria:
      PASS  <criterion>: <measured value> (<limit>)
      FAIL  ...
    verify: PASS | FAIL

and exits 0 when every criterion holds, 1 when one fails (2 is a bad input, the
CLI's one-line error). Its report page (`toolchain.verify.report.write_report`) has
the same frame for every method, the method's own sections in the middle::

    <h1>spikeport verify: PASS|FAIL</h1>  what was verified (one paragraph)
    Criteria                               one row per criterion, coloured PASS/FAIL
    ... the method's sections ...          (summary, engines, timing, figures, each with its legend)
    Versions and seeds                     package versions, platform, seeds

and its report.json carries ``format``, ``passed``, ``exit_status``, ``criteria``
(name, passed, detail), ``headline`` (`headline`: the figures a results table
reads) and ``versions``/``platform``.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Optional

from toolchain.verify.report import Section, escape, provenance, table, verdict, write_report

FORMAT = "spikeport-verify-report"


def passed(criteria: list) -> bool:
    return all(c.passed for c in criteria)


def exit_status(criteria: list) -> int:
    """0 when every criterion holds, else 1."""
    return 0 if passed(criteria) else 1


def criteria_lines(criteria: list) -> list[str]:
    """The printed block: ``criteria:``, one ``PASS|FAIL  name: detail`` line each, ``verify: PASS|FAIL``."""
    return (["criteria:"] + [f"  {'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}" for c in criteria]
            + [f"verify: {'PASS' if passed(criteria) else 'FAIL'}"])


def failed_lines(criteria: list) -> list[str]:
    """``FAILED: name: detail`` for each criterion that fails (printed after the summary)."""
    return [f"FAILED: {c.name}: {c.detail}" for c in criteria if not c.passed]


def conclude(summary_text: str, criteria: list, report, write) -> int:
    """Print ``summary_text`` with the criteria block and the failures; when ``report`` (a folder)
    is given, ``write(text, report)`` writes it and its page is printed; 0 on PASS, 1 on FAIL."""
    text = "\n".join([summary_text, "", *criteria_lines(criteria)])
    print("\n".join([text, *failed_lines(criteria)]))
    if report is not None:
        print(f"report: {Path(write(text, report)) / 'report.html'}")
    return exit_status(criteria)


def headline(metric: str, float_value, deployed, lava=None, lava_identical_samples=None, lava_samples=None) -> dict:
    """The figures a results table reads from report.json (`toolchain.results`): ``metric`` (what the
    three values measure, e.g. "accuracy"), its value on the float reference, on the deployed fixed-point
    emulator and on Lava (None: not run), and the Lava = emulator sample count."""
    return dict(metric=metric, float=float_value, deployed=deployed, lava=lava,
                lava_identical_samples=lava_identical_samples, lava_samples=lava_samples)


def report_data(data: dict, criteria: list, head: dict) -> dict:
    """``data`` plus the shared keys of the module doc (the criteria as JSON objects)."""
    return dict(data, format=FORMAT, passed=passed(criteria), exit_status=exit_status(criteria),
                criteria=[asdict(c) for c in criteria], headline=head, **provenance())


def head_sections(what_html: str, criteria: list) -> list:
    """The verdict heading with ``what_html`` (what was verified) and the Criteria table."""
    text = "PASS" if passed(criteria) else "FAIL"
    intro = f"<h1>spikeport verify: <span class='{text.lower()}'>{text}</span></h1><p>{what_html}</p>"
    rows = [[verdict(c.passed), escape(c.name), escape(c.detail)] for c in criteria]
    return [Section("", intro), Section("Criteria", table(["", "criterion", "measured (limit)"], rows))]


def tail_section(data: dict, seeds: dict) -> Section:
    """Versions and seeds (always the last section); ``data`` holds `provenance`'s keys."""
    named = {f"seed ({k})": v for k, v in seeds.items()}
    rows = [[escape(k), escape(str(v))] for k, v in {**data["versions"], **data["platform"], **named}.items()]
    return Section("Versions and seeds", table(["", ""], rows))


def write_verdict_report(folder, data: dict, criteria: list, head: dict, what_html: str, sections: list,
                         title: str, seeds: dict, attachments: Optional[dict] = None) -> Path:
    """A method's report in the shared frame: report.json = `report_data`, report.html = `head_sections`,
    ``sections``, `tail_section`. Returns the folder (written atomically)."""
    full = report_data(data, criteria, head)
    page = head_sections(what_html, criteria) + list(sections) + [tail_section(full, seeds)]
    return write_report(folder, full, page, title, attachments)
