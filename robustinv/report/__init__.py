"""Renderers: every output is computed from stored records, never by re-running models.

`write_run` stores a finished run's records in its folder and renders every report from what
it stored, so `robustinv report DIR` later reproduces the same files from the folder alone.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from robustinv.checkpoints import atomic_write
from robustinv.errors import RobustinvError
from robustinv.records import GateVerdict, row_record
from robustinv.report.html import render_html
from robustinv.report.junit import render_junit
from robustinv.report.markdown import render_summary
from robustinv.report.rundir import StoredRun, dump_json, load_run, write_gate, write_samples
from robustinv.report.tables import rows_frame, write_csv, write_targets_csv
from robustinv.runner import RunResult
from robustinv.suite import Suite, dump_suite

__all__ = ["StoredRun", "load_run", "render_reports", "rows_frame", "write_csv", "write_run"]

REPORT_HTML = "report.html"
SUMMARY_MD = "summary.md"
JUNIT_XML = "junit.xml"


def write_run(result: RunResult, suite: Suite, out_dir: Path, *, verdict: GateVerdict | None = None) -> list[Path]:
    """Store the run's records in `out_dir` and render its reports; a failure leaves no new folder."""
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "results.csv", out_dir / "results.json", out_dir / "suite.resolved.toml"]
        write_csv(result.rows, paths[0])
        dump_json({"run": asdict(result.info), "results": [row_record(row) for row in result.rows]}, paths[1])
        resolved = dump_suite(suite)
        atomic_write(paths[2], lambda tmp: tmp.write_text(resolved, encoding="utf-8"))
        if result.targets:
            paths.append(out_dir / "inversion_targets.csv")
            write_targets_csv(result.targets, paths[-1])
        if result.grids:
            paths += write_samples(result.grids, out_dir)
        if verdict is not None:
            paths.append(write_gate(verdict, out_dir))
        paths += render_reports(load_run(out_dir), out_dir)
    except OSError as exc:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise RobustinvError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from None
    return paths


def render_reports(run: StoredRun, out_dir: Path, *, rendered_at: str | None = None) -> list[Path]:
    """report.html and summary.md, and junit.xml when the run was gated; from records alone."""
    stamp = rendered_at or datetime.now(timezone.utc).isoformat(timespec="seconds")
    outputs = {
        REPORT_HTML: render_html(run, rendered_at=stamp),
        SUMMARY_MD: render_summary(run.rows, suite=run.info.suite, verdict=run.gate),
    }
    if run.gate is not None:
        outputs[JUNIT_XML] = render_junit(run.gate)
    paths = []
    for name, text in outputs.items():
        path = out_dir / name
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
        paths.append(path)
    return paths
