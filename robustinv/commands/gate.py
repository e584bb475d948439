"""`robustinv gate`, and the gating steps `robustinv run --gate` shares: find the baseline, judge, report the verdict."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from robustinv.commands.common import BASELINE_HELP, STORE_OPTION
from robustinv.errors import RobustinvError
from robustinv.records import GateVerdict, ResultRow, rows_digest
from robustinv.store import Store
from robustinv.terminal import EXIT_GATE_FAILED, handle_errors, say


@click.command("gate")
@click.argument("run_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--policy", "policy_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Gate policy (TOML with [[rules]]).")
@click.option("--baseline", help=BASELINE_HELP)
@STORE_OPTION
@handle_errors
def gate_command(run_dir: Path, policy_path: Path, baseline: str | None, store_path: Path) -> None:
    """Gate a finished run: exit 0 when every rule passes, 1 when a `fail` rule fails.

    Writes gate.json and junit.xml into DIR, re-renders report.html and summary.md, and records
    the verdict in the results store when the run is there.
    """
    from robustinv.gate import load_policy
    from robustinv.report import load_run, write_gated

    policy = load_policy(policy_path)
    run = load_run(run_dir)
    with Store(store_path) as store:
        _check_against_store(store, run.info.run_id, run.rows, run_dir)
        baseline_dir = find_baseline(baseline, store, run.info.suite)
        baseline_rows = load_run(baseline_dir).rows if baseline_dir is not None else None
        verdict = judge(policy, run.rows, policy_path, baseline_rows, baseline_dir)
        paths = write_gated(replace(run, gate=verdict), run_dir)
        if store.has_run(run.info.run_id):
            store.record_gate(run.info.run_id, verdict.passed)
    for path in paths:
        say(f"wrote {path}")
    finish(run_dir, verdict)


def _check_against_store(store: Store, run_id: str, rows: list[ResultRow], run_dir: Path) -> None:
    """Refuse a run folder whose rows differ from what the store recorded when the run finished."""
    recorded = store.results_digest(run_id)
    if recorded is not None and recorded != rows_digest(rows):
        raise RobustinvError(f"{run_dir / 'results.json'} does not match run {run_id} as the results store "
                             f"{store.path} recorded it: the file was changed after the run; rerun the suite")


def judge(policy: Any, rows: list[ResultRow], policy_path: Path, baseline_rows: list[ResultRow] | None,
          baseline_dir: Path | None) -> GateVerdict:
    """The gate's verdict on the rows (against the baseline's, when given); imported on use, like the reports."""
    from robustinv.gate import gate_run

    return gate_run(policy, rows, policy_name=str(policy_path), baseline=baseline_rows,
                    baseline_name=str(baseline_dir) if baseline_dir else None)


def find_baseline(baseline: str | None, store: Store, suite_name: str) -> Path | None:
    """The folder `--baseline` names: a run folder as given, or `last-pass` looked up in the store."""
    if baseline is None:
        return None
    if baseline == "last-pass":
        found = store.last_passing_run(suite_name)
        if found is None:
            raise RobustinvError(f"--baseline last-pass: {store.path} holds no run of suite {suite_name!r} "
                                 "whose gate passed")
        return found
    return Path(baseline)


def finish(run_dir: Path, verdict: GateVerdict | None) -> None:
    """Print the verdict (one line per rule on stderr), feed the CI step summary, exit 1 on a failed gate."""
    from robustinv.report.markdown import append_step_summary

    append_step_summary((run_dir / "summary.md").read_text(encoding="utf-8"))
    if verdict is None:
        return
    for outcome in verdict.outcomes:
        status = "pass" if outcome.passed else outcome.level.value
        say(f"gate {status.upper()}: {outcome.rule}: {outcome.reason}", err=True)
    say(f"gate: {'PASSED' if verdict.passed else 'FAILED'} ({len(verdict.failures)} failed, "
               f"{len(verdict.warnings)} warnings, {len(verdict.outcomes)} rules)", err=True)
    if not verdict.passed:
        raise SystemExit(EXIT_GATE_FAILED)
