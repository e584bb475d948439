"""The self-contained HTML report: a release's robustness, readable in a minute, rendered from a StoredRun.

One file with inline CSS and every figure embedded as a base64 PNG, so it can be attached to a CI
run or a release and opened offline; it has no script and links nowhere. Names come from suites
and model files and are untrusted: the template autoescapes everything. Apart from `rendered_at`
the output depends only on the run (records keep their stored order; figures are deterministic).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from robustinv.records import CLEAN, WORST_CASE, GateVerdict, ResultRow, SampleGrid
from robustinv.report import plots
from robustinv.report.rundir import StoredRun
from robustinv.sanity import EXPLANATIONS, Flag

__all__ = ["render_html"]

_MISSING = "–"
# Shown first, in this order; any other package recorded follows alphabetically.
_VERSION_ORDER = ("robustinv", "torch", "adversarial-robustness-toolbox", "python")

_Key = tuple[str, str]  # (model, defense)


@dataclass(frozen=True)
class _Image:
    uri: str
    alt: str


@dataclass(frozen=True)
class _Cell:
    """A table value with the sanity flags of the row it came from (shown as a marker)."""

    text: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Headline:
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
    robust: list[_Cell]  # one per column of the table's ε header; empty text where not run


@dataclass(frozen=True)
class _AccuracyTable:
    norm: str
    eps: list[str]
    lines: list[_AccuracyLine]


@dataclass(frozen=True)
class _ModelSection:
    anchor: str
    model: str
    defense: str
    clean: str
    tables: list[_AccuracyTable]
    curve: _Image


@dataclass(frozen=True)
class _AttackLine:
    attack: str
    eps: str
    n: int
    robust: str
    success: str
    samples_per_s: str
    samples_per_input: int
    candidate_success: str
    diversity_cos: str
    diversity_l2: str
    target_success: str
    feature_consistency: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class _AttackGroup:
    model: str
    defense: str
    lines: list[_AttackLine]


@dataclass(frozen=True)
class _GridSection:
    model: str
    defense: str
    image: _Image


@dataclass(frozen=True)
class _DefenseLine:
    defense: str
    clean: str
    per_attack: list[tuple[_Cell, str]]  # (robust accuracy, feature consistency) at the attack's largest ε
    train_minutes: str


@dataclass(frozen=True)
class _DefenseTable:
    model: str
    attacks: list[tuple[str, str]]  # (attack, "L∞ ε=0.3")
    lines: list[_DefenseLine]


@dataclass(frozen=True)
class _FlagGroup:
    flag: str
    explanation: str
    rows: list[str]


@dataclass(frozen=True)
class _GuardNote:
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
class _WorstCase:
    """One worst-case row: the verdict at one ε, how the attacks got there, what to distrust and what to know."""

    where: str
    robust: str
    interval: str
    lines: list[_LogLine]
    findings: list[str]
    notes: list[str]
    flags: tuple[str, ...]


def render_html(run: StoredRun, *, rendered_at: str) -> str:
    """The report of `run` as one HTML document; `rendered_at` is shown as the time it was made."""
    groups = _by_model(run.rows)
    return _environment().get_template("report.html.j2").render(
        info=run.info,
        rendered_at=rendered_at,
        gate=run.gate,
        rules_passed=_rules_passed(run.gate),
        headlines=[_headline(key, rows) for key, rows in groups.items()],
        worst_cases=[_worst_case(row) for row in run.rows if row.attack == WORST_CASE],
        models=[_model_section(i, key, rows) for i, (key, rows) in enumerate(groups.items())],
        attacks=[
            _AttackGroup(*key, [_attack_line(row) for row in _at_largest_eps(rows)]) for key, rows in groups.items()
        ],
        grids=_grid_sections(run.grids),
        defenses=_defense_tables(groups),
        flags=_flag_groups(run.rows),
        guard=[_guard_note(row) for row in run.rows if row.config.get("findings")],
        versions=_versions(run.info.versions),
        suite_toml=run.suite_toml,
    )


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # autoescape=True rather than select_autoescape: the template's name ends in .j2, not .html.
    return Environment(
        loader=PackageLoader("robustinv", "report/templates"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def _pct(value: float) -> str:
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


def _by_model(rows: Iterable[ResultRow]) -> dict[_Key, list[ResultRow]]:
    """Rows per (model, defense), both in order of first appearance (dicts keep insertion order)."""
    groups: dict[_Key, list[ResultRow]] = {}
    for row in rows:
        groups.setdefault((row.model, row.defense), []).append(row)
    return groups


def _clean_acc(rows: Sequence[ResultRow]) -> float:
    """Clean accuracy on the full evaluation set: guard rows cover only its first inputs."""
    return max(rows, key=lambda row: row.n).clean_acc


def _worst(rows: Iterable[ResultRow]) -> ResultRow:
    """The row with the lowest robust accuracy (NaN last; the first of equals)."""
    return min(rows, key=lambda row: (math.isnan(row.robust_acc), row.robust_acc))


def _at_largest_eps(rows: Sequence[ResultRow]) -> list[ResultRow]:
    """Each attack's row at its largest ε, attacks in order of first appearance."""
    largest: dict[str, ResultRow] = {}
    for row in rows:
        if row.attack not in largest or row.eps > largest[row.attack].eps:
            largest[row.attack] = row
    return list(largest.values())


def _rules_passed(gate: GateVerdict | None) -> int:
    return 0 if gate is None else sum(outcome.passed for outcome in gate.outcomes)


def _headline(key: _Key, rows: list[ResultRow]) -> _Headline:
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
            worst.append(f"{_pct(row.robust_acc)} ({_interval(row)}) · worst case of "
                         f"{len(row.config.get('attacks', {}))} attacks at {_eps_label(row)}")
        else:
            worst.append(f"{_pct(row.robust_acc)} · {row.attack} at {_eps_label(row)}")
    return _Headline(key[0], key[1], _pct(_clean_acc(rows)), worst, sum(len(row.flags) for row in rows))


def _interval(row: ResultRow) -> str:
    low, high = row.interval("robust_acc")
    return f"95% CI {_pct(low)}–{_pct(high)}"


def _worst_case(row: ResultRow) -> _WorstCase:
    lines = [
        _LogLine(str(e["attack"]), _pct(float(e["attack_acc"])), int(e["newly_broken"]), int(e["unique"]),
                 _pct(float(e["robust_acc"])))
        for e in row.config.get("log", [])
    ]
    return _WorstCase(f"{_where(row)} on {row.n} inputs", _pct(row.robust_acc), _interval(row), lines,
                      [str(f) for f in row.config.get("findings", [])], [str(n) for n in row.config.get("notes", [])],
                      row.flags)


def _model_section(index: int, key: _Key, rows: list[ResultRow]) -> _ModelSection:
    """Per norm a table (attacks × ε, robust accuracy with flags) and the robust-accuracy-vs-ε figure."""
    model, defense = key
    clean = _clean_acc(rows)
    tables = []
    for norm in dict.fromkeys(row.norm for row in rows):
        in_norm = [row for row in rows if row.norm == norm]
        eps = sorted({row.eps for row in in_norm})
        lines = []
        for attack in dict.fromkeys(row.attack for row in in_norm):
            cells = {row.eps: row for row in in_norm if row.attack == attack}
            first = next(iter(cells.values()))
            lines.append(_AccuracyLine(
                attack, first.n, _pct(first.clean_acc),
                [_Cell(_pct(cells[e].robust_acc), cells[e].flags) if e in cells else _Cell("") for e in eps],
            ))
        tables.append(_AccuracyTable(plots.norm_name(norm), [f"{e:g}" for e in eps], lines))
    curve = plots.robustness_curve(rows, clean_acc=clean, title=f"{model} · {defense}")
    alt = f"robust accuracy against ε for {model} ({defense}), every attack, clean accuracy dashed"
    return _ModelSection(f"model-{index}", model, defense, _pct(clean), tables, _image(curve, alt))


def _attack_line(row: ResultRow) -> _AttackLine:
    return _AttackLine(
        attack=row.attack, eps=_eps_label(row), n=row.n,
        robust=_pct(row.robust_acc), success=_pct(row.success_rate), samples_per_s=_number(row.samples_per_s, 0),
        samples_per_input=row.samples_per_input, candidate_success=_pct(row.candidate_success),
        diversity_cos=_number(row.diversity_cos, 3), diversity_l2=_number(row.diversity_l2, 2),
        target_success=_pct(row.target_success), feature_consistency=_number(row.feature_consistency, 3),
        flags=row.flags,
    )


def _grid_sections(grids: Sequence[SampleGrid]) -> list[_GridSection]:
    """One figure per (model, defense): its clean inputs first, then each attack's grid as stored."""
    by_key: dict[_Key, list[SampleGrid]] = {}
    for grid in grids:
        by_key.setdefault((grid.model, grid.defense), []).append(grid)
    sections = []
    for (model, defense), group in by_key.items():
        ordered = [g for g in group if g.attack == CLEAN] + [g for g in group if g.attack != CLEAN]
        shown = ", ".join(g.attack for g in ordered)
        alt = f"sample images of {model} ({defense}): {shown}; predictions above each image, wrong ones in red"
        sections.append(_GridSection(model, defense, _image(plots.sample_grid(ordered), alt)))
    return sections


def _defense_tables(groups: dict[_Key, list[ResultRow]]) -> list[_DefenseTable]:
    """Per model trained more than one way: each defense against each attack at the attack's largest ε."""
    models: dict[str, list[_Key]] = {}
    for key in groups:
        models.setdefault(key[0], []).append(key)
    tables = []
    for model, keys in models.items():
        if len(keys) < 2:
            continue
        largest = {key: {row.attack: row for row in _at_largest_eps(groups[key])} for key in keys}
        attacks = list(dict.fromkeys(attack for key in keys for attack in largest[key]))
        headers = [(attack, _eps_of(attack, largest)) for attack in attacks]
        lines = []
        for key in keys:
            per_attack = []
            for attack in attacks:
                row = largest[key].get(attack)
                per_attack.append(
                    (_Cell(_pct(row.robust_acc), row.flags), _number(row.feature_consistency, 3)) if row
                    else (_Cell(_MISSING), _MISSING)
                )
            minutes = _number(groups[key][0].model_train_seconds / 60, 1)
            lines.append(_DefenseLine(key[1], _pct(_clean_acc(groups[key])), per_attack, minutes))
        tables.append(_DefenseTable(model, headers, lines))
    return tables


def _eps_of(attack: str, largest: dict[_Key, dict[str, ResultRow]]) -> str:
    """An attack's largest ε as its column header shows it: one value, unless defenses differ (then joined)."""
    labels = dict.fromkeys(_eps_label(rows[attack]) for rows in largest.values() if attack in rows)
    return " / ".join(labels)


def _flag_groups(rows: Sequence[ResultRow]) -> list[_FlagGroup]:
    """Every flag present with its explanation and the rows it is on; known flags first, in their order."""
    present = list(dict.fromkeys(flag for row in rows for flag in row.flags))
    known = [flag.value for flag in Flag if flag.value in present]
    explanations = {flag.value: text for flag, text in EXPLANATIONS.items()}
    return [
        _FlagGroup(flag, explanations.get(flag, "no explanation recorded for this flag"),
                   [_where(row) for row in rows if flag in row.flags])
        for flag in known + sorted(set(present) - set(known))
    ]


def _guard_note(row: ResultRow) -> _GuardNote:
    """The gradient-masking guard's verdict on one model: its stronger-PGD row carries the findings."""
    findings = row.config["findings"]
    return _GuardNote(_where(row), [str(f) for f in findings] if isinstance(findings, list) else [str(findings)])


def _where(row: ResultRow) -> str:
    return f"{row.model} · {row.defense} · {row.attack} at {_eps_label(row)}"


def _versions(versions: dict[str, str]) -> list[tuple[str, str]]:
    names = [n for n in _VERSION_ORDER if n in versions] + sorted(set(versions) - set(_VERSION_ORDER))
    return [(name, versions[name]) for name in names]


def _image(png: bytes, alt: str) -> _Image:
    return _Image("data:image/png;base64," + base64.b64encode(png).decode("ascii"), alt)
