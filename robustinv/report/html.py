"""The self-contained HTML report: a release's robustness, readable in a minute, rendered from a StoredRun.

One file with inline CSS and every figure embedded as a base64 PNG, so it can be attached to a CI
run or a release and opened offline; it has no script and links nowhere. Names come from suites
and model files and are untrusted: the template autoescapes everything. Apart from `rendered_at`
the output depends only on the run (records keep their stored order; figures are deterministic).

The sections' data (tables, notes, formatted numbers) is `robustinv.report.html_sections`; this
module adds the figures and renders the template.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from robustinv.records import CLEAN, WORST_CASE, Explanation, GateVerdict, ResultRow, SampleGrid
from robustinv.report import attention_plots, plots
from robustinv.report.html_sections import (
    AccuracyTable, AttackGroup, Key, accuracy_tables, at_largest_eps, attack_line, by_model, clean_acc,
    defense_tables, flag_groups, guard_note, headline, pct, worst_case,
)
from robustinv.report.rundir import StoredRun

__all__ = ["render_html"]

# Shown first, in this order; any other package recorded follows alphabetically.
_VERSION_ORDER = ("robustinv", "torch", "adversarial-robustness-toolbox", "python")


@dataclass(frozen=True)
class _Image:
    uri: str
    alt: str


@dataclass(frozen=True)
class _ModelSection:
    anchor: str
    model: str
    defense: str
    clean: str
    tables: list[AccuracyTable]
    curve: _Image


@dataclass(frozen=True)
class _GridSection:
    model: str
    defense: str
    image: _Image


@dataclass(frozen=True)
class _Attention:
    drift: list[_Image]  # one per attack: drift per conv layer, every model and defense
    grids: list[_GridSection]  # one per model and defense: its inputs and maps under each attack


def render_html(run: StoredRun, *, rendered_at: str) -> str:
    """The report of `run` as one HTML document; `rendered_at` is shown as the time it was made."""
    groups = by_model(run.rows)
    return _environment().get_template("report.html.j2").render(
        info=run.info,
        rendered_at=rendered_at,
        gate=run.gate,
        rules_passed=_rules_passed(run.gate),
        headlines=[headline(key, rows) for key, rows in groups.items()],
        worst_cases=[worst_case(row) for row in run.rows if row.attack == WORST_CASE],
        models=[_model_section(i, key, rows) for i, (key, rows) in enumerate(groups.items())],
        attacks=[
            AttackGroup(*key, [attack_line(row) for row in at_largest_eps(rows)]) for key, rows in groups.items()
        ],
        grids=_grid_sections(run.grids),
        attention=_attention(run.explanations),
        defenses=defense_tables(groups),
        flags=flag_groups(run.rows),
        guard=[guard_note(row) for row in run.rows if row.config.get("findings")],
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


def _rules_passed(gate: GateVerdict | None) -> int:
    return 0 if gate is None else sum(outcome.passed for outcome in gate.outcomes)


def _versions(versions: dict[str, str]) -> list[tuple[str, str]]:
    names = [n for n in _VERSION_ORDER if n in versions] + sorted(set(versions) - set(_VERSION_ORDER))
    return [(name, versions[name]) for name in names]


def _model_section(index: int, key: Key, rows: list[ResultRow]) -> _ModelSection:
    """Per norm a table (attacks × ε, robust accuracy with flags) and the robust-accuracy-vs-ε figure."""
    model, defense = key
    clean = clean_acc(rows)
    curve = plots.robustness_curve(rows, clean_acc=clean, title=f"{model} · {defense}")
    alt = f"robust accuracy against ε for {model} ({defense}), every attack, clean accuracy dashed"
    return _ModelSection(f"model-{index}", model, defense, pct(clean), accuracy_tables(rows), _image(curve, alt))


def _grid_sections(grids: Sequence[SampleGrid]) -> list[_GridSection]:
    """One figure per (model, defense): its clean inputs first, then each attack's grid as stored."""
    by_key: dict[Key, list[SampleGrid]] = {}
    for grid in grids:
        by_key.setdefault((grid.model, grid.defense), []).append(grid)
    sections = []
    for (model, defense), group in by_key.items():
        ordered = [g for g in group if g.attack == CLEAN] + [g for g in group if g.attack != CLEAN]
        shown = ", ".join(g.attack for g in ordered)
        alt = f"sample images of {model} ({defense}): {shown}; predictions above each image, wrong ones in red"
        sections.append(_GridSection(model, defense, _image(plots.sample_grid(ordered), alt)))
    return sections


def _attention(explanations: Sequence[Explanation]) -> _Attention | None:
    """Where each attack moves the models' attention: a drift plot per attack, a map grid per model."""
    if not explanations:
        return None
    by_attack: dict[str, list[Explanation]] = {}
    by_key: dict[Key, list[Explanation]] = {}
    for explained in explanations:
        by_attack.setdefault(explained.attack, []).append(explained)
        by_key.setdefault((explained.model, explained.defense), []).append(explained)
    drift = [
        _image(attention_plots.layer_drift(group, title=f"{attack} ε={group[0].eps:g}"),
               f"attribution drift per conv layer under {attack}, one line per model and defense")
        for attack, group in by_attack.items()
    ]
    grids = [
        _GridSection(model, defense, _image(attention_plots.explanation_grid(group),
                                            f"inputs of {model} ({defense}) clean and adversarial with their "
                                            "final cumulative Grad-CAM maps, per attack"))
        for (model, defense), group in by_key.items()
    ]
    return _Attention(drift, grids)


def _image(png: bytes, alt: str) -> _Image:
    return _Image("data:image/png;base64," + base64.b64encode(png).decode("ascii"), alt)
