"""The `robustinv` command: parse, call the library, print, map errors to exit codes.

Exit codes (see `robustinv.terminal`): 0 success, 1 failed gate, 2 usage or input error,
3 internal error, 130 interrupted, 143 terminated.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import sys
from dataclasses import replace
from datetime import datetime
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import click

import robustinv
from robustinv.errors import RobustinvError
from robustinv.records import GateVerdict, ResultRow, rows_digest
from robustinv.registry import Registry
from robustinv.store import DEFAULT_STORE, RunStatus, Store
from robustinv.terminal import EXIT_GATE_FAILED, handle_errors, say, setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(robustinv.__version__, prog_name="robustinv")
@click.option("-q", "--quiet", is_flag=True, help="Only print results and errors.")
def main(quiet: bool) -> None:
    """Robustness harness for PyTorch image classifiers."""
    setup_logging(quiet)


REGISTRIES: dict[str, Registry[Any]] = {
    "datasets": robustinv.DATASETS, "models": robustinv.MODELS, "attacks": robustinv.ATTACKS,
    "defenses": robustinv.DEFENSES,
}


@main.command("list")
@click.argument("kind", type=click.Choice(sorted(REGISTRIES)))
def list_command(kind: str) -> None:
    """List the registered datasets, models, attacks or defenses."""
    registry = REGISTRIES[kind]
    for name in registry.names():
        doc = inspect.getdoc(registry.get(name)) or ""
        say(f"{name:16} {doc.splitlines()[0] if doc else ''}")


STORE_OPTION = click.option(
    "--store", "store_path", type=click.Path(path_type=Path, dir_okay=False), default=DEFAULT_STORE,
    envvar="ROBUSTINV_STORE", show_default=True, help="Results database (SQLite) of runs and their cells.",
)
BASELINE_HELP = "A previous run folder the policy's max_drop rules compare against, or `last-pass`: the last " \
    "run of the same suite whose gate passed."


@main.command("run")
@click.argument("suite_path", metavar="[SUITE]", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Output folder (default: reports/<suite>-<timestamp>/). Rerunning into the same folder resumes.")
@click.option("--gate", "policy_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Gate the results with this policy (exit 1 when a rule fails).")
@click.option("--baseline", help=BASELINE_HELP)
@STORE_OPTION
@handle_errors
def run_command(suite_path: Path | None, out: Path | None, policy_path: Path | None, baseline: str | None,
                store_path: Path) -> None:
    """Run a benchmark suite (default: the built-in quickstart on digits).

    Every finished cell is committed to the results store at once; running the same suite into the
    same --out again computes only the cells an interrupted run did not finish.
    """
    from robustinv.gate import load_policy
    from robustinv.report import load_run, write_run
    from robustinv.suite import dump_suite

    if baseline is not None and policy_path is None:
        raise click.UsageError("--baseline needs --gate POLICY")
    # Everything the gate needs is read before the first model trains: bad input fails fast.
    policy = load_policy(policy_path) if policy_path is not None else None
    if suite_path is None:
        with as_file(files("robustinv") / "suites" / "quickstart.toml") as default:
            suite = robustinv.load_suite(default)
            base_dir = default.parent
    else:
        suite, base_dir = _load(suite_path)
    out = out or Path("reports") / f"{_safe_name(suite.name)}-{datetime.now():%Y%m%d-%H%M%S}"
    _check_writable(out)
    with Store(store_path) as store:
        baseline_dir = _baseline_dir(baseline, store, suite.name)
        baseline_rows = load_run(baseline_dir).rows if baseline_dir is not None else None
        result = robustinv.run_suite(suite, base_dir=base_dir, store=store, out_dir=out)
        verdict = None
        if policy is not None:
            assert policy_path is not None
            verdict = _judge(policy, result.rows, policy_path, baseline_rows, baseline_dir)
        try:
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
    _finish(out, verdict)


def _judge(policy: Any, rows: list[ResultRow], policy_path: Path, baseline_rows: list[ResultRow] | None,
           baseline_dir: Path | None) -> GateVerdict:
    from robustinv.gate import gate_run

    return gate_run(policy, rows, policy_name=str(policy_path), baseline=baseline_rows,
                    baseline_name=str(baseline_dir) if baseline_dir else None)


def _check_writable(folder: Path) -> None:
    """Refuse, before any training, an output folder that could not be created or written."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise RobustinvError(f"cannot write results to {folder}: {existing} is not a writable folder")


def _baseline_dir(baseline: str | None, store: Store, suite_name: str) -> Path | None:
    if baseline is None:
        return None
    if baseline == "last-pass":
        found = store.last_passing_run(suite_name)
        if found is None:
            raise RobustinvError(f"--baseline last-pass: {store.path} holds no run of suite {suite_name!r} "
                                 "whose gate passed")
        return found
    return Path(baseline)


@main.command("gate")
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
        baseline_dir = _baseline_dir(baseline, store, run.info.suite)
        baseline_rows = load_run(baseline_dir).rows if baseline_dir is not None else None
        verdict = _judge(policy, run.rows, policy_path, baseline_rows, baseline_dir)
        paths = write_gated(replace(run, gate=verdict), run_dir)
        if store.has_run(run.info.run_id):
            store.record_gate(run.info.run_id, verdict.passed)
    for path in paths:
        say(f"wrote {path}")
    _finish(run_dir, verdict)


def _check_against_store(store: Store, run_id: str, rows: list[ResultRow], run_dir: Path) -> None:
    """Refuse a run folder whose rows differ from what the store recorded when the run finished."""
    recorded = store.results_digest(run_id)
    if recorded is not None and recorded != rows_digest(rows):
        raise RobustinvError(f"{run_dir / 'results.json'} does not match run {run_id} as the results store "
                             f"{store.path} recorded it: the file was changed after the run; rerun the suite")


@main.command("history")
@click.option("--model", help="Only runs (and numbers) of this model name.")
@STORE_OPTION
@handle_errors
def history_command(model: str | None, store_path: Path) -> None:
    """Past runs, newest first: status, gate verdict and each model's headline numbers."""
    with Store(store_path, readonly=True) as store:
        entries = store.history(model)
    if not entries:
        say("no runs" + (f" of model {model!r}" if model else ""))
    for entry in entries:
        run = entry.run
        gate = {None: "no gate", True: "gate PASS", False: "gate FAIL"}[run.gate_passed]
        say(f"{run.run_id}  {run.suite}  {run.started}  {run.status.value}  {gate}  {entry.cells} cells  "
                   f"{run.out_dir}")
        for h in entry.headlines:
            say(f"    {h.model} [{h.defense}]  clean {_pct(h.clean_acc)}  worst robust {_pct(h.worst_robust_acc)} "
                       f"at {h.norm} ε={h.eps:g} ({h.worst_attack})")


@main.command("report")
@click.argument("run_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False, exists=True))
@handle_errors
def report_command(run_dir: Path) -> None:
    """Re-render report.html, summary.md (and junit.xml) of a run folder from its stored records."""
    from robustinv.report import load_run, render_reports

    for path in render_reports(load_run(run_dir), run_dir):
        say(f"wrote {path}")


def _finish(run_dir: Path, verdict: GateVerdict | None) -> None:
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


def _load(suite_path: Path) -> tuple[robustinv.Suite, Path]:
    return robustinv.load_suite(suite_path), suite_path.resolve().parent


@main.command("generate")
@click.argument("suite_path", metavar="SUITE", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", "model_name", required=True, help="A model name of the suite.")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Verified samples to produce.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--attack", "attack_label", help="Which inversion attack of the suite (default: the first).")
@click.option("--eps", type=float, help="ε (default: the attack's largest).")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True)
@handle_errors
def generate_command(suite_path: Path, model_name: str, n: int, out: Path, attack_label: str | None,
                     eps: float | None, shard_size: int) -> None:
    """Mass-produce verified adversarial samples with the suite's inverting generator.

    Samples stream to OUT in shards; running the same command again continues an interrupted run.
    """
    from robustinv.inversion.jobs import generate_samples

    suite, base_dir = _load(suite_path)
    shards = -(-n // shard_size)
    with click.progressbar(length=shards, label="shards", file=sys.stderr) as bar:
        request = generate_samples(
            suite, model_name=model_name, n=n, out_dir=out, attack_label=attack_label, eps=eps,
            shard_size=shard_size, base_dir=base_dir, on_shard=lambda _shard, _done: bar.update(1),
        )
    say(f"{request.n} verified samples ({request.shards} shards, ε={request.eps:g}, "
               f"{'targeted' if request.targeted else 'untargeted'}) in {out}")


@main.command("invert")
@click.argument("suite_path", metavar="SUITE", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", "model_name", required=True, help="A model name of the suite.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--per-class", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Generator training steps.")
@handle_errors
def invert_command(suite_path: Path, model_name: str, out: Path, per_class: int, steps: int) -> None:
    """Free inversion: a PNG grid per class of what the model believes that class looks like."""
    from robustinv.inversion.jobs import invert_model
    from robustinv.report.images import save_grid

    suite, base_dir = _load(suite_path)
    reports = invert_model(suite, model_name=model_name, out_dir=out, per_class=per_class, steps=steps,
                           base_dir=base_dir, save_grid=save_grid)
    say("class  classified as that class  image")
    for report in reports:
        say(f"{report.label:<5}  {_pct(report.hit_rate):>24}  {out / report.image}")
    overall = sum(r.hit_rate for r in reports) / len(reports)
    say(f"all    {_pct(overall):>24}")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "suite"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


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
        lines.append((row.model, row.defense, row.attack, row.norm, f"{row.eps:g}", _pct(row.clean_acc),
                      _pct(row.robust_acc), f"{_pct(low)}–{_pct(high)}", _pct(row.success_rate), f"{delta:.4f}", str(row.samples_per_input),
                      diversity, consistency,
                      f"{row.samples_per_s:.0f}", f"{row.seconds:.2f}", ",".join(row.flags) or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


if __name__ == "__main__":
    main()
