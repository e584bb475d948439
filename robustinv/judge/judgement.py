"""A run's judgement: its rows sanity-checked on the inputs they share, the worst cases added, every row's outcome kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from robustinv.judge.guard import GuardConfig
from robustinv.judge.outcomes import Outcomes, row_key
from robustinv.judge.sanity import check_rows
from robustinv.judge.verdict import ModelOutcomes, verdict_rows
from robustinv.records import ResultRow


@dataclass(frozen=True)
class Judgement:
    """Checked rows (worst cases last), each row's per-input outcome, and each model's clean outcome."""

    rows: list[ResultRow]
    outcomes: Outcomes
    clean: dict[tuple[str, str], npt.NDArray[np.bool_]]


def judge(rows: Sequence[ResultRow], judged: dict[tuple[str, str], ModelOutcomes], guard: GuardConfig) -> Judgement:
    """Sanity checks, then the worst case per (model, defense, norm, ε) with its masking findings, checked again."""
    outcomes: Outcomes = {}
    for row in rows:
        state = judged.get((row.model, row.defense))
        if state is not None and (row.attack, row.eps) in state.outcomes:
            outcomes[row_key(row)] = state.outcomes[(row.attack, row.eps)].robust
    checked = check_rows(rows, outcomes)
    verdict = verdict_rows(checked, judged, guard)
    outcomes.update(verdict.worst)
    return Judgement(check_rows(verdict.rows, outcomes), outcomes,
                     {key: state.clean_correct for key, state in judged.items()})
