"""The typed result record: one row per (model, attack, ε); numbers stay numbers."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ResultRow:
    run_id: str
    dataset: str
    model: str
    attack: str
    norm: str
    eps: float
    n: int
    clean_acc: float
    robust_acc: float
    success_rate: float
    mean_linf: float
    max_linf: float
    mean_l2: float
    max_l2: float
    seconds: float
    samples_per_s: float
    flags: tuple[str, ...]
    config: dict[str, Any]
    seed: int
    model_fingerprint: str
    dataset_fingerprint: str
    model_source: str
    train_seconds: float


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ResultRow))
TIMING_COLUMNS: frozenset[str] = frozenset({"run_id", "seconds", "samples_per_s", "train_seconds"})
