"""Setups of the hostile-input table for run folders the gate must not trust: edited runs the results store
knows, baselines (edited, from other evaluations, the judged run itself) and folders another process is using.

Each returns a `Setup` of `tests/test_hostile_input.py`: it writes what the case needs into a fresh folder,
given the module's finished run, and returns the command line.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from robustinv.records import rows_digest
from robustinv.report import load_run
from robustinv.store import RunStatus, Store
from robustinv.store.folder_lock import folder_lock

Setup = Callable[[Path, Callable[[], Path]], list[str]]
Edit = Callable[[Path], object]
Payload = dict[str, Any]

ONE_RULE = '[[rules]]\nmetric = "clean_acc"\nmin = 0.0\n'
DROP = '[[rules]]\nmetric = "robust_acc"\nattack = "worst_case"\nmax_drop = 100.0\n'  # fails only when not comparable


class Holding:
    """Folder locks a case holds, as another process would, while its command runs; the test releases them."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.held: list[Path] = []

    def hold(self, folder: Path) -> None:
        self._stack.enter_context(folder_lock(folder, command="run", suite="tiny"))
        self.held.append(folder)

    def release(self) -> None:
        self._stack.close()
        self.held.clear()


HOLDING = Holding()


def results(change: Callable[[Payload], object]) -> Edit:
    def edit(run: Path) -> None:
        payload = json.loads((run / "results.json").read_text())
        change(payload)
        (run / "results.json").write_text(json.dumps(payload))
    return edit


def every_row(change: Callable[[Payload], object], attack: str | None = None) -> Edit:
    def apply(payload: Payload) -> None:
        for row in payload["results"]:
            if attack is None or row["attack"] == attack:
                change(row)
    return results(apply)


def renamed(run_id: str, then: Edit = lambda run: None) -> Edit:
    """The run renamed in `run` and every row, its verdict deleted, then `then`."""
    def edit(run: Path) -> None:
        every_row(lambda row: row.__setitem__("run_id", run_id))(run)
        results(lambda payload: payload["run"].__setitem__("run_id", run_id))(run)
        (run / "gate.json").unlink(missing_ok=True)
        then(run)
    return edit


def as_robust_as_accurate(run: Path) -> None:
    every_row(lambda row: row.__setitem__("robust_acc", row["clean_acc"]))(run)


def record(store_path: Path, run: Path) -> None:
    """Record `run` in a store as the finished run of its folder, with the digest of its rows."""
    stored = load_run(run)
    with Store(store_path) as store:
        store.open_run(run_id=stored.info.run_id, suite=stored.info.suite, suite_key="k", out_dir=run,
                       started=stored.info.started)
        store.finish_run(stored.info.run_id, RunStatus.finished, results_digest=rows_digest(stored.rows))


def gate_args(folder: Path, run: Path, policy: str, *extra: str) -> list[str]:
    (folder / "policy.toml").write_text(policy, encoding="utf-8")
    return ["gate", str(run), "--policy", str(folder / "policy.toml"), *extra]


def on_recorded_run(edit: Edit) -> Setup:
    """`gate` on a copy of the finished run that a store recorded, edited after it finished."""
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        run = Path(shutil.copytree(finished(), folder / "run"))
        record(folder / "known.db", run)
        edit(run)
        return gate_args(folder, run, ONE_RULE, "--store", str(folder / "known.db"))
    return setup


def against_baseline(edit: Edit, *, known: bool = False, policy: str = DROP) -> Setup:
    """`gate` of a copy of the finished run against another copy, edited; `known`: a store recorded the baseline."""
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        run = Path(shutil.copytree(finished(), folder / "run"))
        baseline = Path(shutil.copytree(finished(), folder / "baseline"))
        store = folder / ("known.db" if known else "fresh.db")
        if known:
            record(store, baseline)
            renamed("judged")(run)  # judged unverified; the baseline is what the store can vouch for
        else:
            renamed("an-earlier-run")(baseline)
        edit(baseline)
        return gate_args(folder, run, policy, "--baseline", str(baseline), "--store", str(store))
    return setup


def baseline_named(pick: Callable[[Path, Path], str]) -> Setup:
    """`gate` of a copy of the finished run with `--baseline pick(folder, run)`."""
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        run = Path(shutil.copytree(finished(), folder / "run"))
        baseline = pick(folder, run)
        return gate_args(folder, run, DROP, "--baseline", baseline, "--store", str(folder / "fresh.db"))
    return setup


def last_pass_of_itself(folder: Path, finished: Callable[[], Path]) -> list[str]:
    """`--baseline last-pass` where the only run of the suite whose gate passed is the judged one."""
    run = Path(shutil.copytree(finished(), folder / "run"))
    record(folder / "known.db", run)
    with Store(folder / "known.db") as store:
        store.record_gate(load_run(run).info.run_id, True)
    return gate_args(folder, run, DROP, "--baseline", "last-pass", "--store", str(folder / "known.db"))


def busy(setup: Setup, which: Callable[[list[str]], Path]) -> Setup:
    """The case's command while this process holds the lock of the folder `which(args)` names, as a run would."""
    def busy_setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        args = setup(folder, finished)
        HOLDING.hold(which(args))
        return args
    return busy_setup


def other_evaluation(change: Callable[[Payload], object]) -> Edit:
    """The baseline's rows as another evaluation would have written them; worst cases list their members' n."""
    def apply(payload: Payload) -> None:
        for row in payload["results"]:
            change(row)
        for worst in (r for r in payload["results"] if r["attack"] == "worst_case"):
            members = {r["attack"]: r["n"] for r in payload["results"]
                       if r["attack"] != "worst_case" and r["eps"] == worst["eps"]}
            worst["config"]["attacks"] = members
    return results(apply)


def pgd_config(key: str, value: object) -> Edit:
    return other_evaluation(lambda row: row["config"].__setitem__(key, value) if row["attack"] == "pgd" else None)


def worst_members(change: Callable[[dict[str, int]], object]) -> Edit:
    return every_row(lambda row: change(row["config"]["attacks"]), attack="worst_case")


def pgd_above_fgsm_without_capabilities(payload: Payload) -> None:
    """PGD raised above FGSM at ε = 0.1, and no row recording capabilities the old check read."""
    for row in payload["results"]:
        row["config"].pop("capabilities", None)
        if row["attack"] == "pgd" and row["eps"] == 0.1:
            row["robust_acc"] = row["clean_acc"]
