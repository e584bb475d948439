"""The typed result record: one row per (model, defense, attack, ε); numbers stay numbers."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ResultRow:
    run_id: str
    dataset: str
    model: str
    defense: str
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
    train_seconds: float
    samples_per_input: int
    candidate_success: float
    diversity_cos: float
    diversity_l2: float
    target_success: float
    feature_consistency: float
    flags: tuple[str, ...]
    config: dict[str, Any]
    seed: int
    model_fingerprint: str
    dataset_fingerprint: str
    model_source: str
    model_train_seconds: float


@dataclass(frozen=True)
class TargetCell:
    """One (true, target) cell of a targeted attack's success matrix."""

    model: str
    defense: str
    attack: str
    eps: float
    true_label: int
    target: int
    n: int
    success_rate: float


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ResultRow))
TIMING_COLUMNS: frozenset[str] = frozenset(
    {"run_id", "seconds", "samples_per_s", "train_seconds", "model_train_seconds"}
)
