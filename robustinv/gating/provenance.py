"""Whether the rows of a run folder are the rows its run computed: checked against the results store.

When a run finishes, the store records a digest of its rows (`records.rows_digest`) and the
folder it wrote. A folder's rows are verified when the store knows its run and the digest
matches; they are refused when they differ from it, or when the folder holds a run the store
does not know although it recorded another run for that folder (a run id renamed in the file).
Without a store that knows the run or the folder (a fresh CI machine), nothing ties the rows to
a computation: the gate still checks every value and re-runs the sanity checks, and its verdict
says the rows were not verified.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robustinv.errors import RobustinvError
from robustinv.records import ResultRow, rows_digest
from robustinv.records.gate_verdict import Provenance
from robustinv.store import Store

RESULTS_FILE = "results.json"


class UnverifiableRows(RobustinvError):
    """A run folder whose rows contradict what the results store recorded about the run or the folder."""


def computed_here(run_id: str) -> Provenance:
    """The rows of a run judged by the process that computed them."""
    return Provenance(f"run {run_id}", True, "computed by this process")


def verify_rows(store: Store | None, store_path: Path, run_id: str, rows: Sequence[ResultRow], folder: Path, *,
                subject: str) -> Provenance:
    """How far the store vouches for the rows `folder` holds; UnverifiableRows when it contradicts them."""
    if store is None:
        return Provenance(subject, False, f"no results store at {store_path} to check its rows against")
    record = store.run(run_id)
    results = folder / RESULTS_FILE
    if record is None:
        others = [run.run_id for run in store.runs_in(folder)]
        if others:
            raise UnverifiableRows(
                f"{results} holds run {run_id!r}, which the results store {store.path} does not know, but the "
                f"store recorded run {others[0]!r} for {folder}: the folder was changed after the run; rerun the suite")
        return Provenance(subject, False, f"the results store {store.path} knows neither this run nor {folder}")
    recorded = store.results_digest(run_id)
    if recorded is None:
        return Provenance(subject, False, f"the results store {store.path} holds no digest of its rows (its last "
                                          f"attempt is {record.status.value}, not finished)")
    if recorded != rows_digest(rows):
        raise UnverifiableRows(f"{results} does not match run {run_id} as the results store {store.path} recorded "
                               "it: the file was changed after the run; rerun the suite")
    return Provenance(subject, True, f"its rows match the digest the results store {store.path} recorded when it "
                                     "finished")
