"""Renderers: every output is computed from stored records, never by re-running models.

`write_run` serializes a finished run's records, renders every report from what it would store
(parsed back from the same bytes, as `robustinv report DIR` later reads them from the folder),
and writes the whole set at once: the folder holds this run's files, all of them, or is left
as it was. Files an earlier run left that this one does not write (its gate verdict) go.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from robustinv.errors import RobustinvError
from robustinv.files import Writer, write_together
from robustinv.records import GateVerdict, RunResult
from robustinv.report.html import render_html
from robustinv.report.junit import render_junit
from robustinv.report.markdown import render_summary
from robustinv.report.rundir import RECORD_FILES, StoredRun, gate_bytes, load_run, parse_run, record_files
from robustinv.records.tables import rows_frame

__all__ = ["StoredRun", "load_run", "render_reports", "rows_frame", "write_gated", "write_run"]

REPORT_HTML = "report.html"
SUMMARY_MD = "summary.md"
JUNIT_XML = "junit.xml"
REPORT_FILES = (REPORT_HTML, SUMMARY_MD, JUNIT_XML)


def write_run(result: RunResult, suite_toml: str, out_dir: Path, *, verdict: GateVerdict | None = None) -> list[Path]:
    """Store the run's records in `out_dir` and render its reports, all or nothing; a failure leaves no new folder."""
    records = record_files(result, suite_toml, verdict)
    files = {**records, **report_files(parse_run(records, out_dir))}
    return _write(out_dir, files, replaces=(*RECORD_FILES, *REPORT_FILES))


def write_gated(run: StoredRun, out_dir: Path) -> list[Path]:
    """A run folder's new gate verdict with the reports rendered from it, written together."""
    assert run.gate is not None
    files = {"gate.json": gate_bytes(run.gate, run.info.run_id), **report_files(run)}
    return _write(out_dir, files, replaces=REPORT_FILES)


def render_reports(run: StoredRun, out_dir: Path) -> list[Path]:
    """Re-render report.html and summary.md (and junit.xml when gated) of a run folder from its records."""
    return _write(out_dir, report_files(run), replaces=REPORT_FILES)


def report_files(run: StoredRun, *, rendered_at: str | None = None) -> dict[str, bytes]:
    """report.html and summary.md, and junit.xml when the run was gated; from records alone."""
    stamp = rendered_at or datetime.now(timezone.utc).isoformat(timespec="seconds")
    outputs = {
        REPORT_HTML: render_html(run, rendered_at=stamp),
        SUMMARY_MD: render_summary(run.rows, suite=run.info.suite, verdict=run.gate),
    }
    if run.gate is not None:
        outputs[JUNIT_XML] = render_junit(run.gate)
    return {name: text.encode("utf-8") for name, text in outputs.items()}


def _write(out_dir: Path, files: Mapping[str, bytes], *, replaces: tuple[str, ...]) -> list[Path]:
    created = not out_dir.exists()
    try:
        return write_together(out_dir, {name: _bytes_writer(data) for name, data in files.items()}, replaces=replaces)
    except OSError as exc:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise RobustinvError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from None


def _bytes_writer(data: bytes) -> Writer:
    return lambda path: path.write_bytes(data)
