"""Typed records of a run: result rows, target cells, sample grids and gate verdicts; numbers stay numbers."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

import torch


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


@dataclass(frozen=True, eq=False)
class SampleGrid:
    """Example images of one (model, defense, attack, ε): `draws` rows over the same input columns.

    The attack "clean" (ε 0) holds the unperturbed inputs; every other grid shows the same
    inputs under that attack at its largest ε, one row per candidate (restart or generator draw).
    `images` is uint8, (draws, inputs, C, H, W); the rest is what the model said about each image.
    """

    model: str
    defense: str
    attack: str
    eps: float
    true_labels: tuple[int, ...]  # per input
    predictions: tuple[tuple[int, ...], ...]  # [draw][input]
    confidences: tuple[tuple[float, ...], ...]  # softmax probability of the prediction, [draw][input]
    images: torch.Tensor


class GateLevel(str, Enum):
    fail = "fail"
    warn = "warn"


@dataclass(frozen=True)
class RuleOutcome:
    """One gate rule checked against the results (and the baseline): a JUnit testcase."""

    rule: str  # a one-line statement of the rule, e.g. "robust_acc >= 0.8 [attack=pgd, eps=0.3]"
    level: GateLevel
    passed: bool
    measured: float | None  # the deciding value (worst matching row), None when there was none
    required: str  # what was required, e.g. ">= 0.8" or "drop <= 2 points vs baseline"
    reason: str  # one line: why it passed or failed, naming the deciding row
    rows: int  # how many result rows the rule matched


@dataclass(frozen=True)
class GateVerdict:
    """The outcome of a policy: passes unless a `fail`-level rule failed."""

    policy: str
    baseline: str | None
    outcomes: tuple[RuleOutcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed or o.level is GateLevel.warn for o in self.outcomes)

    @property
    def failures(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed and o.level is GateLevel.fail)

    @property
    def warnings(self) -> tuple[RuleOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed and o.level is GateLevel.warn)
