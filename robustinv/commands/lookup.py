"""The read-only look-ups: `robustinv list` (what is registered) and `robustinv history` (what ran)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click

import robustinv
from robustinv.commands.common import STORE_OPTION, pct
from robustinv.registry import Registry
from robustinv.store import Store
from robustinv.terminal import handle_errors, say

REGISTRY_KINDS = ("attacks", "datasets", "defenses", "executors", "measures", "models")


def registry_of(kind: str) -> Registry[Any]:
    """The registry of one of `REGISTRY_KINDS`; looked up on use, since filling the registries imports torch."""
    from robustinv.measures import MEASURES
    from robustinv.run.executors import EXECUTORS

    registries: dict[str, Registry[Any]] = {
        "datasets": robustinv.DATASETS, "models": robustinv.MODELS, "attacks": robustinv.ATTACKS,
        "defenses": robustinv.DEFENSES, "executors": EXECUTORS, "measures": MEASURES,
    }
    return registries[kind]


@click.command("list")
@click.argument("kind", type=click.Choice(REGISTRY_KINDS))
def list_command(kind: str) -> None:
    """List the registered datasets, models, attacks, defenses, executors or per-cell measures."""
    registry = registry_of(kind)
    for name in registry.names():
        entry = registry.get(name)
        doc = inspect.getdoc(getattr(entry, "compute", entry)) or ""
        say(f"{name:16} {doc.splitlines()[0] if doc else ''}")


@click.command("history")
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
            say(f"    {h.model} [{h.defense}]  clean {pct(h.clean_acc)}  worst robust {pct(h.worst_robust_acc)} "
                       f"at {h.norm} ε={h.eps:g} ({h.worst_attack})")
