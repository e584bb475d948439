"""What several commands share: the --store option, the --baseline help, reading a suite file, percentages."""

from __future__ import annotations

import math
from pathlib import Path

import click

import robustinv
from robustinv.store import DEFAULT_STORE

STORE_OPTION = click.option(
    "--store", "store_path", type=click.Path(path_type=Path, dir_okay=False), default=DEFAULT_STORE,
    envvar="ROBUSTINV_STORE", show_default=True, help="Results database (SQLite) of runs and their cells.",
)
BASELINE_HELP = "A previous run folder the policy's max_drop rules compare against, or `last-pass`: the last " \
    "run of the same suite whose gate passed."


def load_suite_file(suite_path: Path) -> tuple[robustinv.Suite, Path]:
    """The suite in `suite_path` and the folder its relative paths are resolved against.

    Also checks what the suite names that only the engine knows (its executor), with the file and key.
    """
    from robustinv.run.executors import EXECUTORS
    from robustinv.suite import SuiteError

    suite = robustinv.load_suite(suite_path)
    try:
        EXECUTORS.checked_name(suite.executor)
    except ValueError as exc:
        raise SuiteError(f"{suite_path}: executor: {exc}") from None
    return suite, suite_path.resolve().parent


def pct(value: float) -> str:
    """A fraction as a percentage with one decimal; NaN as a dash."""
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"
