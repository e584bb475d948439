"""What the store knows about a run: its status, its record and where each of its models came from."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class RunStatus(str, Enum):
    running = "running"  # also what a killed process leaves behind
    finished = "finished"
    interrupted = "interrupted"  # Ctrl-C
    failed = "failed"  # any other exception


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    suite: str
    suite_key: str
    out_dir: Path
    started: str
    finished: str | None
    status: RunStatus
    gate_passed: bool | None


@dataclass(frozen=True)
class ModelRecord:
    """Where a run's model came from: kept so a resumed run reports what its first attempt did."""

    model: str
    defense: str
    fingerprint: str
    source: str
    train_seconds: float


def run_record(row: sqlite3.Row) -> RunRecord:
    """A run as its row in the `runs` table holds it."""
    gate = row["gate_passed"]
    return RunRecord(
        run_id=row["run_id"], suite=row["suite"], suite_key=row["suite_key"], out_dir=Path(row["out_dir"]),
        started=row["started"], finished=row["finished"], status=RunStatus(row["status"]),
        gate_passed=None if gate is None else bool(gate),
    )


def alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
