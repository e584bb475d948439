"""A compact Markdown summary of a run and its gate verdict, for GitHub's job summary page.

Model, defense and attack names come from user files and end up rendered as HTML by GitHub, so
every piece of text is escaped: `<`, `>` and `&` become entities (no HTML, no script), and the
characters Markdown acts on (`|`, `*`, `_`, backticks, brackets, ...) are backslash-escaped so
a name cannot break the table or turn into a link or an image.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from pathlib import Path

from robustinv.errors import RobustinvError
from robustinv.gating import outcome_summary
from robustinv.records import WORST_CASE, GateVerdict, ResultRow, RuleOutcome, model_label
from robustinv.text import printable

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that act inside a
# table cell or a list item (emphasis, code, links and images, cell borders, strikethrough).
# `&`, `<` and `>` are HTML entities instead.
_MARKDOWN_ACTIVE = frozenset("\\`*_[]|~")


def escape(text: str) -> str:
    """Text that renders literally in GitHub Markdown, on one line, control characters spelled out."""
    text = html.escape(printable(" ".join(text.splitlines())), quote=False)
    return "".join(f"\\{c}" if c in _MARKDOWN_ACTIVE else c for c in text)


def render_summary(rows: Sequence[ResultRow], *, suite: str, verdict: GateVerdict | None) -> str:
    """A heading, the worst case per model and ε, one table line per result row, and the gate's verdict."""
    lines = [f"### robustinv: {escape(suite)}", "", *_worst_case_lines(rows)]
    lines += [
        "| model | defense | attack | ε | clean | robust | success | flags |",
        "|---|---|---|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        cells = [escape(row.model), escape(row.defense), escape(row.attack), f"{row.eps:g}",
                 _percent(row.clean_acc), _percent(row.robust_acc), _percent(row.success_rate),
                 escape(", ".join(row.flags)) or "–"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_verdict_lines(verdict)]
    return "\n".join(lines) + "\n"


def _worst_case_lines(rows: Sequence[ResultRow]) -> list[str]:
    """The verdict first: robust accuracy under every attack at once, with its 95% interval."""
    worst = [row for row in rows if row.attack == WORST_CASE]
    if not worst:
        return []
    lines = [
        "**Worst case over every attack** (an input counts as robust only if no attack broke it; 95% Wilson interval)",
        "",
        "| model | defense | norm | ε | clean | worst-case robust | 95% interval | attacks | flags |",
        "|---|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for row in worst:
        low, high = row.interval("robust_acc")
        lines.append("| " + " | ".join([
            escape(row.model), escape(row.defense), escape(row.norm), f"{row.eps:g}", _percent(row.clean_acc),
            f"**{_percent(row.robust_acc)}**", f"{_percent(low)}–{_percent(high)}",
            str(len(row.config.get("attacks", {}))), escape(", ".join(row.flags)) or "–",
        ]) + " |")
    notes = [(row, text) for row in worst for text in (*row.config.get("findings", ()), *row.config.get("notes", ()))]
    if notes:
        lines.append("")
        lines += [f"- {escape(model_label(row.model, row.defense))} ε={row.eps:g}: {escape(text)}" for row, text in notes]
    return [*lines, ""]


def _verdict_lines(verdict: GateVerdict | None) -> list[str]:
    if verdict is None:
        return ["Gate: no gate policy."]
    counts = [f"{len(verdict.failures)} of {len(verdict.outcomes)} rules failed"]
    if verdict.warnings:
        counts.append(f"{len(verdict.warnings)} warning{'s' if len(verdict.warnings) > 1 else ''}")
    counts.append(f"policy {escape(verdict.policy)}")
    if verdict.baseline:
        counts.append(f"baseline {escape(verdict.baseline)}")
    head = f"**Gate: {'PASS' if verdict.passed else 'FAIL'}** ({', '.join(counts)})"
    checked = f"{'Rows verified' if verdict.verified else '**Rows not verified**'}: {escape(verdict.verification_details)}"
    details = [_outcome_line("FAIL", o) for o in verdict.failures] + [_outcome_line("WARN", o) for o in verdict.warnings]
    details += [_outcome_line("PASS", o) for o in verdict.outcomes if o.passed and o.decided_after is not None]
    return [head, "", checked, *([""] + details if details else [])]


def _outcome_line(status: str, outcome: RuleOutcome) -> str:
    return f"- **{status}** {escape(outcome.rule)}: {escape(outcome_summary(outcome))}"


def _percent(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def append_step_summary(text: str) -> Path | None:
    """Append to the file GitHub Actions names in $GITHUB_STEP_SUMMARY; None when not running there."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise RobustinvError(f"cannot append to the step summary {path}: {exc.strerror or exc}") from None
    return path
