"""`robustinv report`: re-render a run folder's reports from its stored records."""

from __future__ import annotations

from pathlib import Path

import click

from robustinv.terminal import handle_errors, say


@click.command("report")
@click.argument("run_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False, exists=True))
@handle_errors
def report_command(run_dir: Path) -> None:
    """Re-render report.html, summary.md (and junit.xml) of a run folder from its stored records."""
    from robustinv.report import load_run, render_reports
    from robustinv.store.folder_lock import folder_lock

    with folder_lock(run_dir, command="report"):  # not while a run or a gate writes the folder
        paths = render_reports(load_run(run_dir), run_dir)
    for path in paths:
        say(f"wrote {path}")
