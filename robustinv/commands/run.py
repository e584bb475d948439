"""`robustinv run`: run a suite into an output folder (resuming what an interrupted run finished), gate it, report it."""

from __future__ import annotations

import math
import os
import re
from datetime import datetime
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import click

import robustinv
from robustinv.commands.common import BASELINE_HELP, STORE_OPTION, load_suite_file, pct
from robustinv.commands.gate import finish, judge, load_baseline
from robustinv.errors import RobustinvError
from robustinv.store import RunStatus, Store
from robustinv.store.folder_lock import folder_lock
from robustinv.terminal import handle_errors, say


@click.command("run")
@click.argument("suite_path", metavar="[SUITE]", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Output folder (default: reports/<suite>-<timestamp>/). Rerunning into the same folder resumes.")
@click.option("--gate", "policy_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Gate the results with this policy (exit 1 when a rule fails).")
@click.option("--baseline", help=BASELINE_HELP)
@STORE_OPTION
@click.option("--executor", help="Where cells run: serial, process (local worker processes) or ray "
                                 "(default: the suite's `executor`, else serial).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Cells at once for --executor process (default: the CPUs over the suite's threads per cell).")
@click.option("--address", help="Join this Ray cluster (implies --executor ray), e.g. 127.0.0.1:6379.")
@handle_errors
def run_command(suite_path: Path | None, out: Path | None, policy_path: Path | None, baseline: str | None,
                store_path: Path, executor: str | None, workers: int | None, address: str | None) -> None:
    """Run a benchmark suite (default: the built-in quickstart on digits).

    Every finished cell is committed to the results store at once; running the same suite into the
    same --out again computes only the cells an interrupted run did not finish, whichever executor
    runs it.
    """
    from robustinv.gating import load_policy
    from robustinv.gating.provenance import computed_here
    from robustinv.report import write_run
    from robustinv.progress_log import progress_display
    from robustinv.suite import dump_suite

    if baseline is not None and policy_path is None:
        raise click.UsageError("--baseline needs --gate POLICY")
    if address is not None and executor not in (None, "ray"):
        raise click.UsageError(f"--address joins a Ray cluster; it does not go with --executor {executor}")
    executor = "ray" if address is not None else executor
    # Everything the gate needs is read before the first model trains: bad input fails fast.
    policy = load_policy(policy_path) if policy_path is not None else None
    if suite_path is None:
        with as_file(files("robustinv") / "suites" / "quickstart.toml") as default:
            suite = robustinv.load_suite(default)
            base_dir = default.parent
    else:
        suite, base_dir = load_suite_file(suite_path)
    out = out or Path("reports") / f"{_safe_name(suite.name)}-{datetime.now():%Y%m%d-%H%M%S}"
    _check_writable(out)
    # The folder is locked from here until its reports are written: one run (or gate, or report) at a time.
    with Store(store_path) as store, folder_lock(out, command="run", suite=suite.name, runs=store):
        found = load_baseline(baseline, store, store_path, suite=suite.name, judged_dir=out)
        quiet = click.get_current_context().find_root().params.get("quiet", False)
        sequential = _sequential(policy)
        with progress_display(quiet=quiet) as progress:
            result = robustinv.run_suite(suite, base_dir=base_dir, store=store, out_dir=out, executor=executor,
                                         address=address, workers=workers, progress=progress, sequential=sequential)
        verdict = None
        try:
            if policy is not None:
                assert policy_path is not None
                verdict = judge(policy, result.rows, policy_path, found, computed_here(result.info.run_id))
            paths = write_run(result, dump_suite(suite), out, verdict=verdict)
        except BaseException:
            store.finish_run(result.info.run_id, RunStatus.failed)  # its report never appeared
            raise
        if verdict is not None:
            store.record_gate(result.info.run_id, verdict.passed)
    say(summary_table(result.rows))
    if result.reused:
        say(f"resumed: {result.reused} cells reused, {result.computed} computed")
    for path in paths:
        say(f"wrote {path}")
    finish(out, verdict)


def _sequential(policy: Any) -> Any:
    """The sequential gate of a policy with `[sequential]` (None without); says why a rule makes it run every input."""
    if policy is None or policy.sequential is None:
        return None
    from robustinv.gating.sequential import SequentialGate

    gate = SequentialGate(policy)
    for rule, why in gate.blocking:
        say(f"sequential gate: every input is attacked, since rule {rule.statement!r} cannot be decided as the "
            f"inputs come in: {why}", err=True)
    return gate


def _check_writable(folder: Path) -> None:
    """Refuse, before any training, an output folder that could not be created or written."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise RobustinvError(f"cannot write results to {folder}: {existing} is not a writable folder")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "suite"


def summary_table(rows: list[Any]) -> str:
    """A fixed-width table: one line per (model, defense, attack, ε)."""
    header = ("model", "defense", "attack", "norm", "eps", "clean", "robust", "95% CI", "success", "max δ", "k",
              "div cos", "feat cos", "samples/s", "seconds", "flags")
    lines = [header]
    for row in rows:
        delta = row.max_linf if row.norm == "linf" else row.max_l2
        diversity = "-" if math.isnan(row.diversity_cos) else f"{row.diversity_cos:.3f}"
        consistency = "-" if math.isnan(row.feature_consistency) else f"{row.feature_consistency:.3f}"
        low, high = row.interval("robust_acc")
        lines.append((row.model, row.defense, row.attack, row.norm, f"{row.eps:g}", pct(row.clean_acc),
                      pct(row.robust_acc), f"{pct(low)}–{pct(high)}", pct(row.success_rate), f"{delta:.4f}", str(row.samples_per_input),
                      diversity, consistency,
                      f"{row.samples_per_s:.0f}", f"{row.seconds:.2f}", ",".join(row.flags) or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)
