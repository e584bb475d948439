"""The HTML report's sections as plain data: each table and note of a run, its numbers formatted for display.

Pure functions of the result rows (no figures, no HTML): `robustinv.report.html` renders them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from robustinv.records import WORST_CASE, ResultRow
from robustinv.report import plots
from robustinv.judge.sanity import EXPLANATIONS, Flag

_MISSING = "–"

Key = tuple[str, str]  # (model, defense)


@dataclass(frozen=True)
class Cell:
    """A table value with the sanity flags of the row it came from (shown as a marker)."""

    text: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Headline:
    model: str
    defense: str
    clean: str
    worst: list[str]  # "3.2% · pgd at L∞ ε=0.3", one per norm
    flags: int


@dataclass(frozen=True)
class _AccuracyLine:
    attack: str
    n: int
    clean: str
    robust: list[Cell]  # one per column of the table's ε header; empty text where not run


@dataclass(frozen=True)
class AccuracyTable:
    norm: str
    eps: list[str]
    lines: list[_AccuracyLine]


@dataclass(frozen=True)
class AttackLine:
    attack: str
    eps: str
    n: int
    robust: str
    success: str
    samples_per_s: str
    samples_per_input: int
    grad_evals: str
    candidate_success: str
    diversity_cos: str
    diversity_l2: str
    target_success: str
    feature_consistency: str
    attribution_drift: str
    neuron_consistency: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class AttackGroup:
    model: str
    defense: str
    lines: list[AttackLine]


@dataclass(frozen=True)
class _DefenseLine:
    defense: str
    clean: str
    per_attack: list[tuple[Cell, str]]  # (robust accuracy, feature consistency) at the attack's largest ε
    train_minutes: str


@dataclass(frozen=True)
class DefenseTable:
    model: str
    attacks: list[tuple[str, str]]  # (attack, "L∞ ε=0.3")
    lines: list[_DefenseLine]


@dataclass(frozen=True)
class FlagGroup:
    flag: str
    explanation: str
    rows: list[str]


@dataclass(frozen=True)
class GuardNote:
    where: str
    findings: list[str]


@dataclass(frozen=True)
class _LogLine:
    attack: str
    alone: str
    newly_broken: int
    unique: int
    robust: str


@dataclass(frozen=True)
class WorstCase:
    """One worst-case row: the verdict at one ε, how the attacks got there, what to distrust and what to know."""

    where: str
    robust: str
    interval: str
    lines: list[_LogLine]
    findings: list[str]
    notes: list[str]
    flags: tuple[str, ...]


def pct(value: float) -> str:
    """A fraction as a percentage with one decimal; NaN as a dash."""
    return _MISSING if math.isnan(value) else f"{100 * value:.1f}%"


def _number(value: float, digits: int) -> str:
    """A plain number (cosines, distances, rates) with thousands separators; NaN as a dash, ∞ spelled out."""
    if math.isnan(value):
        return _MISSING
    if math.isinf(value):
        return "∞"
    return f"{value:,.{digits}f}"


def _eps_label(row: ResultRow) -> str:
    return f"{plots.norm_name(row.norm)} ε={row.eps:g}"


def by_model(rows: Iterable[ResultRow]) -> dict[Key, list[ResultRow]]:
    """Rows per (model, defense), both in order of first appearance (dicts keep insertion order)."""
    groups: dict[Key, list[ResultRow]] = {}
    for row in rows:
        groups.setdefault((row.model, row.defense), []).append(row)
    return groups


def clean_acc(rows: Sequence[ResultRow]) -> float:
    """Clean accuracy on the full evaluation set: guard rows cover only its first inputs."""
    return max(rows, key=lambda row: row.n).clean_acc


def _worst(rows: Iterable[ResultRow]) -> ResultRow:
    """The row with the lowest robust accuracy (NaN last; the first of equals)."""
    return min(rows, key=lambda row: (math.isnan(row.robust_acc), row.robust_acc))


def at_largest_eps(rows: Sequence[ResultRow]) -> list[ResultRow]:
    """Each attack's row at its largest ε, attacks in order of first appearance."""
    largest: dict[str, ResultRow] = {}
    for row in rows:
        if row.attack not in largest or row.eps > largest[row.attack].eps:
            largest[row.attack] = row
    return list(largest.values())


def headline(key: Key, rows: list[ResultRow]) -> Headline:
    """Clean accuracy and, per norm, the worst case over every attack at that norm's largest ε.

    Runs without worst-case rows (older ones) show the lowest single attack instead.
    """
    worst = []
    for norm in dict.fromkeys(row.norm for row in rows):
        in_norm = [row for row in rows if row.norm == norm]
        verdicts = [row for row in in_norm if row.attack == WORST_CASE]
        considered = verdicts or in_norm
        largest = max(row.eps for row in considered)
        row = _worst(r for r in considered if r.eps == largest)
        if row.attack == WORST_CASE:
            worst.append(f"{pct(row.robust_acc)} ({_interval(row)}) · worst case of "
                         f"{len(row.config.get('attacks', {}))} attacks at {_eps_label(row)}")
        else:
            worst.append(f"{pct(row.robust_acc)} · {row.attack} at {_eps_label(row)}")
    return Headline(key[0], key[1], pct(clean_acc(rows)), worst, sum(len(row.flags) for row in rows))


def _interval(row: ResultRow) -> str:
    low, high = row.interval("robust_acc")
    return f"95% CI {pct(low)}–{pct(high)}"


def worst_case(row: ResultRow) -> WorstCase:
    lines = [
        _LogLine(str(e["attack"]), pct(float(e["attack_acc"])), int(e["newly_broken"]), int(e["unique"]),
                 pct(float(e["robust_acc"])))
        for e in row.config.get("log", [])
    ]
    return WorstCase(f"{_where(row)} on {row.n} inputs", pct(row.robust_acc), _interval(row), lines,
                     [str(f) for f in row.config.get("findings", [])], [str(n) for n in row.config.get("notes", [])],
                     row.flags)


def accuracy_tables(rows: list[ResultRow]) -> list[AccuracyTable]:
    """Per norm a table of one model's attacks × ε: robust accuracy, with the flags of each row."""
    tables = []
    for norm in dict.fromkeys(row.norm for row in rows):
        in_norm = [row for row in rows if row.norm == norm]
        eps = sorted({row.eps for row in in_norm})
        lines = []
        for attack in dict.fromkeys(row.attack for row in in_norm):
            cells = {row.eps: row for row in in_norm if row.attack == attack}
            first = next(iter(cells.values()))
            lines.append(_AccuracyLine(
                attack, first.n, pct(first.clean_acc),
                [Cell(pct(cells[e].robust_acc), cells[e].flags) if e in cells else Cell("") for e in eps],
            ))
        tables.append(AccuracyTable(plots.norm_name(norm), [f"{e:g}" for e in eps], lines))
    return tables


def attack_line(row: ResultRow) -> AttackLine:
    return AttackLine(
        attack=row.attack, eps=_eps_label(row), n=row.n,
        robust=pct(row.robust_acc), success=pct(row.success_rate), samples_per_s=_number(row.samples_per_s, 0),
        samples_per_input=row.samples_per_input, grad_evals=_number(row.measures.get("grad_evals", math.nan), 0),
        candidate_success=pct(row.candidate_success),
        diversity_cos=_number(row.diversity_cos, 3), diversity_l2=_number(row.diversity_l2, 2),
        target_success=pct(row.target_success), feature_consistency=_number(row.feature_consistency, 3),
        attribution_drift=_number(row.measures.get("attribution_drift", math.nan), 3),
        neuron_consistency=_number(row.measures.get("neuron_consistency", math.nan), 3),
        flags=row.flags,
    )


def defense_tables(groups: dict[Key, list[ResultRow]]) -> list[DefenseTable]:
    """Per model trained more than one way: each defense against each attack at the attack's largest ε."""
    models: dict[str, list[Key]] = {}
    for key in groups:
        models.setdefault(key[0], []).append(key)
    tables = []
    for model, keys in models.items():
        if len(keys) < 2:
            continue
        largest = {key: {row.attack: row for row in at_largest_eps(groups[key])} for key in keys}
        attacks = list(dict.fromkeys(attack for key in keys for attack in largest[key]))
        headers = [(attack, _eps_of(attack, largest)) for attack in attacks]
        lines = []
        for key in keys:
            per_attack = []
            for attack in attacks:
                row = largest[key].get(attack)
                per_attack.append(
                    (Cell(pct(row.robust_acc), row.flags), _number(row.feature_consistency, 3)) if row
                    else (Cell(_MISSING), _MISSING)
                )
            minutes = _number(groups[key][0].model_train_seconds / 60, 1)
            lines.append(_DefenseLine(key[1], pct(clean_acc(groups[key])), per_attack, minutes))
        tables.append(DefenseTable(model, headers, lines))
    return tables


def _eps_of(attack: str, largest: dict[Key, dict[str, ResultRow]]) -> str:
    """An attack's largest ε as its column header shows it: one value, unless defenses differ (then joined)."""
    labels = dict.fromkeys(_eps_label(rows[attack]) for rows in largest.values() if attack in rows)
    return " / ".join(labels)


def flag_groups(rows: Sequence[ResultRow]) -> list[FlagGroup]:
    """Every flag present with its explanation and the rows it is on; known flags first, in their order."""
    present = list(dict.fromkeys(flag for row in rows for flag in row.flags))
    known = [flag.value for flag in Flag if flag.value in present]
    explanations = {flag.value: text for flag, text in EXPLANATIONS.items()}
    return [
        FlagGroup(flag, explanations.get(flag, "no explanation recorded for this flag"),
                  [_where(row) for row in rows if flag in row.flags])
        for flag in known + sorted(set(present) - set(known))
    ]


def guard_note(row: ResultRow) -> GuardNote:
    """The gradient-masking guard's verdict on one model: its stronger-PGD row carries the findings."""
    findings = row.config["findings"]
    return GuardNote(_where(row), [str(f) for f in findings] if isinstance(findings, list) else [str(findings)])


def _where(row: ResultRow) -> str:
    return f"{row.model} · {row.defense} · {row.attack} at {_eps_label(row)}"

