"""`robustinv gate`, and the gating steps `robustinv run --gate` shares: find the baseline, judge, report the verdict."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from robustinv.commands.common import BASELINE_HELP, STORE_OPTION
from robustinv.errors import RobustinvError
from robustinv.records import GateVerdict, ResultRow
from robustinv.records.gate_verdict import Provenance
from robustinv.store import Store
from robustinv.store.folder_lock import folder_lock
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
    the verdict in the results store when the store verified the run. The verdict says whether
    the rows could be verified against the store (docs/gate.md).
    """
    from robustinv.gating import load_policy
    from robustinv.gating.provenance import verify_rows
    from robustinv.report import load_run, write_gated

    policy = load_policy(policy_path)
    with existing_store(store_path) as store, folder_lock(run_dir, command="gate", runs=store):
        run = load_run(run_dir)
        judged = verify_rows(store, store_path, run.info.run_id, run.rows, run_dir, subject=f"run {run.info.run_id}")
        found = load_baseline(baseline, store, store_path, suite=run.info.suite, judged_dir=run_dir,
                              judged_run=run.info.run_id)
        verdict = judge(policy, run.rows, policy_path, found, judged)
        paths = write_gated(replace(run, gate=verdict), run_dir)
        if store is not None and judged.verified:
            store.record_gate(run.info.run_id, verdict.passed)
    for path in paths:
        say(f"wrote {path}")
    finish(run_dir, verdict)


@contextmanager
def existing_store(path: Path) -> Iterator[Store | None]:
    """The results store at `path`, or None where there is none: judging a folder creates no store."""
    if not path.exists():
        yield None
        return
    with Store(path) as store:
        yield store


@dataclass(frozen=True)
class Baseline:
    """A baseline run folder, read and checked like a judged one."""

    folder: Path
    run_id: str
    rows: list[ResultRow]
    provenance: Provenance


def load_baseline(baseline: str | None, store: Store | None, store_path: Path, *, suite: str, judged_dir: Path,
                  judged_run: str | None = None) -> Baseline | None:
    """The run `--baseline` names, read strictly and verified against the store; never the judged run itself.

    `judged_run` is the judged run's id when it is known before judging (`robustinv gate`).
    """
    from robustinv.gating.provenance import verify_rows
    from robustinv.report import load_run

    if baseline is None:
        return None
    expected = None
    if baseline == "last-pass":
        if store is None:
            raise RobustinvError(f"--baseline last-pass: no results store at {store_path} to look it up in")
        record = store.last_passing_run(suite, besides=judged_dir, besides_run=judged_run)
        if record is None:
            raise RobustinvError(f"--baseline last-pass: {store.path} holds no run of suite {suite!r} whose gate "
                                 "passed, besides the run being judged")
        folder, expected = record.out_dir, record.run_id
    else:
        folder = Path(baseline)
    if folder.resolve() == judged_dir.resolve():
        raise RobustinvError(f"--baseline {folder}: that is the folder of the run being judged; a baseline is "
                             "an earlier run")
    with folder_lock(folder, command="gate", shared=True, create=False, runs=store):
        stored = load_run(folder)
    run_id = stored.info.run_id
    if expected is not None and run_id != expected:
        raise RobustinvError(f"--baseline last-pass: the last passing run {expected} was written to {folder}, which "
                             f"now holds run {run_id}")
    if run_id == judged_run:
        raise RobustinvError(f"--baseline {folder}: it holds run {run_id}, the run being judged")
    provenance = verify_rows(store, store_path, run_id, stored.rows, folder, subject=f"baseline run {run_id}")
    return Baseline(folder, run_id, stored.rows, provenance)


def judge(policy: Any, rows: list[ResultRow], policy_path: Path, baseline: Baseline | None,
          judged: Provenance) -> GateVerdict:
    """The gate's verdict on the rows (against the baseline's, when given); imported on use, like the reports."""
    from robustinv.gating import gate_run

    if baseline is not None and rows and baseline.run_id == rows[0].run_id:
        raise RobustinvError(f"--baseline {baseline.folder}: it holds run {baseline.run_id}, the run being judged")
    provenance = (judged,) if baseline is None else (judged, baseline.provenance)
    return gate_run(policy, rows, policy_name=str(policy_path), baseline=None if baseline is None else baseline.rows,
                    baseline_name=None if baseline is None else str(baseline.folder), provenance=provenance)


def finish(run_dir: Path, verdict: GateVerdict | None) -> None:
    """Print the verdict (one line per rule on stderr), feed the CI step summary, exit 1 on a failed gate."""
    from robustinv.report.markdown import append_step_summary

    append_step_summary((run_dir / "summary.md").read_text(encoding="utf-8"))
    if verdict is None:
        return
    for outcome in verdict.outcomes:
        status = "pass" if outcome.passed else outcome.level.value
        say(f"gate {status.upper()}: {outcome.rule}: {outcome.reason}", err=True)
    say(f"gate: {verdict.verification.replace('unverified:', 'UNVERIFIED:', 1)}", err=True)
    say(f"gate: {'PASSED' if verdict.passed else 'FAILED'} ({len(verdict.failures)} failed, "
        f"{len(verdict.warnings)} warnings, {len(verdict.outcomes)} rules)", err=True)
    if not verdict.passed:
        raise SystemExit(EXIT_GATE_FAILED)
