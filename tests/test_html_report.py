"""The HTML report: every section, escaping of hostile names, self-containment, byte-determinism.

Runs are built by hand (a few rows, tiny uint8 images): no model, no data, no network.
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
import subprocess
import sys
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from robustinv.records import GateLevel, GateVerdict, ResultRow, RuleOutcome, RunInfo, SampleGrid
from robustinv.report.html import render_html
from robustinv.report.rundir import StoredRun
from robustinv.judge.sanity import EXPLANATIONS, Flag

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
WHEN = "2024-05-01T12:00:00+00:00"
SECTIONS = ("verdict", "accuracy", "attacks", "samples", "defenses", "flags", "run")
IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]*)"')


def make_row(**values: Any) -> ResultRow:
    """A plausible ResultRow; keyword arguments override any field."""
    defaults: dict[str, Any] = dict(
        run_id="run-1", dataset="mnist", model="lenet5", defense="standard", attack="pgd", norm="linf", eps=0.3,
        n=100, clean_acc=0.99, robust_acc=0.5, success_rate=0.49, mean_linf=0.3, max_linf=0.3, mean_l2=3.0,
        max_l2=4.0, seconds=2.0, samples_per_s=50.0, train_seconds=0.0, samples_per_input=1,
        candidate_success=0.49, diversity_cos=math.nan, diversity_l2=math.nan, target_success=math.nan,
        feature_consistency=0.8, flags=(), config={"name": "pgd"}, seed=0, model_fingerprint="m",
        dataset_fingerprint="d", model_source="trained", model_train_seconds=90.0,
    )
    return ResultRow(**{**defaults, **values})


def make_grid(model: str, defense: str, attack: str, eps: float, draws: int, seed: int) -> SampleGrid:
    """4 random 8×8 grey inputs; every other prediction of an attacked grid is wrong."""
    images = np.random.default_rng(seed).integers(0, 256, (draws, 4, 1, 8, 8), dtype=np.uint8)
    true = (1, 2, 3, 4)
    predictions = tuple(tuple(t if attack == "clean" or i % 2 else 7 for i, t in enumerate(true)) for _ in range(draws))
    confidences = tuple(tuple(0.5 + 0.1 * i + 0.01 * d for i in range(4)) for d in range(draws))
    return SampleGrid(model, defense, attack, eps, true, predictions, confidences, images)


def model_rows(model: str, defense: str, *, dataset: str = "mnist", attack_names: tuple[str, str] = ("fgsm", "pgd"),
               clean: float = 0.99, strength: float = 1.0) -> list[ResultRow]:
    """FGSM and PGD at three ε and an inverting generator at the largest: the shape of a real run."""
    rows = []
    for name, factor in zip(attack_names, (1.0, 1.5)):
        for eps in (0.1, 0.2, 0.3):
            robust = max(clean - strength * factor * eps * 2, 0.0)
            rows.append(make_row(
                model=model, defense=defense, dataset=dataset, attack=name, eps=eps, clean_acc=clean,
                robust_acc=robust, success_rate=1 - robust / clean, config={"name": name},
            ))
    rows.append(make_row(
        model=model, defense=defense, dataset=dataset, attack="inversion", eps=0.3, clean_acc=clean,
        robust_acc=0.4 * clean, samples_per_input=4, diversity_cos=0.62, diversity_l2=1.7, target_success=0.55,
        samples_per_s=2400.0, config={"name": "inversion"},
    ))
    return rows


def run_info(**values: Any) -> RunInfo:
    defaults: dict[str, Any] = dict(
        run_id="20240501T115500Z-ab12cd", suite="release", seed=0, device="cpu", started="2024-05-01T11:55:00+00:00",
        finished="2024-05-01T11:59:00+00:00", dataset="mnist", dataset_fingerprint="d0d0", n_eval=100,
        versions={"torch": "2.4.0", "python": "3.11.2", "numpy": "1.26.4", "robustinv": "0.1.0",
                  "adversarial-robustness-toolbox": "1.18.0"},
    )
    return RunInfo(**{**defaults, **values})


def full_run() -> StoredRun:
    """Two defenses, sample grids, sanity flags, guard findings and a failing gate."""
    standard = model_rows("lenet5", "standard", strength=1.5)
    standard[4] = replace(standard[4], flags=(Flag.pgd_weaker_than_fgsm.value,))
    defended = model_rows("lenet5", "pgd_at", clean=0.97, strength=0.5)
    defended = [replace(r, model_train_seconds=600.0) for r in defended]
    defended[5] = replace(defended[5], flags=(Flag.masking.value,))
    findings = ["inversion leaves 38.8% against PGD's 52.0% at ε=0.3"]
    defended += [
        make_row(defense="pgd_at", attack="pgd-guard", n=50, clean_acc=0.96, robust_acc=0.35, flags=("masking?",),
                 config={"name": "pgd", "findings": findings}),
        make_row(defense="pgd_at", attack="pgd-transfer", clean_acc=0.97, robust_acc=0.9,
                 config={"name": "transfer", "surrogate": "lenet5"}),
    ]
    grids = [
        make_grid(model, defense, attack, eps, draws, seed)
        for model, defense in (("lenet5", "standard"), ("lenet5", "pgd_at"))
        for seed, (attack, eps, draws) in enumerate((("clean", 0.0, 1), ("fgsm", 0.3, 1), ("pgd", 0.3, 1),
                                                     ("inversion", 0.3, 4)))
    ]
    gate = GateVerdict(policy="release-gate", baseline="v1.3", outcomes=(
        RuleOutcome("robust_acc >= 0.6 [attack=pgd, eps=0.3]", GateLevel.fail, False, 0.09, ">= 0.6",
                    "lenet5/standard pgd ε=0.3 left 9.0%", 2),
        RuleOutcome("clean_acc >= 0.95", GateLevel.fail, True, 0.97, ">= 0.95", "worst clean accuracy 97.0%", 2),
        RuleOutcome("no flags", GateLevel.warn, False, 2.0, "== 0", "2 rows carry sanity flags", 16),
    ))
    return StoredRun(run_info(), standard + defended, [], grids, 'name = "release"\nseed = 0\n', gate)


def minimal_run() -> StoredRun:
    """One defense, no grids, no gate, no flags."""
    return StoredRun(run_info(), model_rows("smallcnn", "standard"), [], [], 'name = "release"\n')


def hostile_run() -> StoredRun:
    """Every name a suite or model file controls is a script tag."""
    rows = model_rows(HOSTILE, HOSTILE, dataset=HOSTILE, attack_names=(HOSTILE, "pgd"))
    rows[0] = replace(rows[0], flags=(HOSTILE,))
    rows.append(make_row(model=HOSTILE, defense=HOSTILE, attack=f"{HOSTILE}-guard", flags=("masking?",),
                         config={"name": "pgd", "findings": [HOSTILE]}))
    rows += model_rows(HOSTILE, "standard", attack_names=(HOSTILE, "pgd"))
    grids = [make_grid(HOSTILE, HOSTILE, "clean", 0.0, 1, 0), make_grid(HOSTILE, HOSTILE, HOSTILE, 0.3, 2, 1)]
    gate = GateVerdict(HOSTILE, HOSTILE, (RuleOutcome(HOSTILE, GateLevel.fail, False, None, HOSTILE, HOSTILE, 0),))
    info = run_info(suite=HOSTILE, dataset=HOSTILE, run_id=HOSTILE, device=HOSTILE,
                    versions={HOSTILE: HOSTILE, "torch": "2.4"})
    return StoredRun(info, rows, [], grids, f"name = '{HOSTILE}'\n", gate)


@pytest.fixture(scope="module")
def full_html() -> str:
    return render_html(full_run(), rendered_at=WHEN)


def text_only(html: str) -> str:
    """The document without its embedded images (base64 can spell anything)."""
    return re.sub(r'data:image/png;base64,[A-Za-z0-9+/=]*', "data:", html)


def test_every_section_present_in_order(full_html: str) -> None:
    positions = [full_html.index(f'<section id="{name}">') for name in SECTIONS]
    assert positions == sorted(positions)
    assert ">FAIL<" in full_html and "1 of 3 rules passed" in full_html
    assert "lenet5/standard pgd ε=0.3 left 9.0%" in full_html and "2 rows carry sanity flags" in full_html
    assert "worst clean accuracy 97.0%" not in full_html  # passed rules are counted, not listed
    assert "release-gate" in full_html and "v1.3" in full_html


def test_headline_names_worst_attack_at_largest_eps(full_html: str) -> None:
    headline = full_html[full_html.index('<table class="headline">'):full_html.index('<section id="accuracy">')]
    # standard: PGD at 0.3 leaves max(0.99 - 1.5 * 1.5 * 0.6, 0) = 0%; FGSM leaves 9.0%, inversion 39.6%.
    assert "0.0% · pgd at L∞ ε=0.3" in headline
    # pgd_at: the guard's stronger PGD (35.0%) is the worst at 0.3, below the generator's 38.8%.
    assert "35.0% · pgd-guard at L∞ ε=0.3" in headline
    assert ">99.0%<" in headline and ">97.0%<" in headline  # clean accuracy of the full set, not the guard's subset


def test_tables_plots_and_comparisons(full_html: str) -> None:
    accuracy = full_html[full_html.index('<section id="accuracy">'):full_html.index('<section id="attacks">')]
    assert accuracy.count("<article") == 2 and accuracy.count("<img") == 2
    assert "<th>ε=0.1</th><th>ε=0.2</th><th>ε=0.3</th>" in accuracy
    attacks = full_html[full_html.index('<section id="attacks">'):full_html.index('<section id="samples">')]
    assert "<td>2,400</td><td>4</td>" in attacks and "<td>0.620</td><td>1.70</td><td>55.0%</td>" in attacks
    defenses = full_html[full_html.index('<section id="defenses">'):full_html.index('<section id="flags">')]
    assert "<th scope=\"row\">standard</th>" in defenses and "<th scope=\"row\">pgd_at</th>" in defenses
    assert '<td class="start">1.5</td>' in defenses and '<td class="start">10.0</td>' in defenses  # training min
    samples = full_html[full_html.index('<section id="samples">'):full_html.index('<section id="defenses">')]
    assert samples.count("<img") == 2


def test_flags_explained_with_their_rows_and_guard_findings(full_html: str) -> None:
    flags = full_html[full_html.index('<section id="flags">'):full_html.index('<section id="run">')]
    for flag in (Flag.pgd_weaker_than_fgsm, Flag.masking):
        assert flag.value.replace(">", "&gt;") in flags
        assert EXPLANATIONS[flag].replace("'", "&#39;") in flags
    assert "lenet5 · pgd_at · pgd-guard at L∞ ε=0.3" in flags
    assert "inversion leaves 38.8% against PGD&#39;s 52.0% at ε=0.3" in flags


def test_run_metadata(full_html: str) -> None:
    run = full_html[full_html.index('<section id="run">'):]
    names = re.findall(r"<tr><th>([^<]+)</th>", run)
    assert names[:7] == ["run id", "suite", "dataset", "seed", "device", "started", "finished"]
    assert names[7:] == ["robustinv", "torch", "adversarial-robustness-toolbox", "python", "numpy"]
    assert '<pre>name = &#34;release&#34;\nseed = 0\n</pre>' in run


def test_numbers_are_percentages_and_nan_a_dash(full_html: str) -> None:
    text = text_only(full_html)
    assert not re.search(r"\bnan\b|\binf\b", text, re.IGNORECASE)
    assert "<td>–</td>" in text  # diversity of single-candidate attacks
    assert "<td>99.0%</td>" in text


def test_without_grids_gate_or_second_defense() -> None:
    html = render_html(minimal_run(), rendered_at=WHEN)
    assert "No gate policy given" in html and ">PASS<" not in html and ">FAIL<" not in html
    assert '<section id="samples">' not in html and '<section id="defenses">' not in html
    assert 'href="#samples"' not in html and 'href="#defenses"' not in html
    assert "No row failed a sanity check" in html and "Gradient-masking guard" not in html
    assert html.count("<img") == 1


def test_passing_gate() -> None:
    run = full_run()
    assert run.gate is not None
    passing = replace(run, gate=replace(run.gate, outcomes=run.gate.outcomes[1:2]))
    html = render_html(passing, rendered_at=WHEN)
    assert ">PASS<" in html and "1 of 1 rules passed" in html and '<ul class="rules">' not in html


def test_hostile_names_are_escaped() -> None:
    html = render_html(hostile_run(), rendered_at=HOSTILE)
    assert "<script" not in html.lower()
    assert ESCAPED in html
    assert f'alt="robust accuracy against ε for {ESCAPED}' in html


def test_dollar_signs_do_not_start_mathtext() -> None:
    """matplotlib would parse `$...$` in a legend or title as TeX math, and fail on `$\\frac{$`."""
    run = minimal_run()
    names = ["$\\frac{$", "a$b$c"]
    rows = [replace(r, model=names[0], attack=names[1]) for r in run.rows]
    grids = [make_grid(names[0], "standard", "clean", 0.0, 1, 0), make_grid(names[0], "standard", names[1], 0.3, 1, 1)]
    html = render_html(replace(run, rows=rows, grids=grids), rendered_at=WHEN)
    assert html.count("<img") == 2


def test_self_contained(full_html: str) -> None:
    for html in (full_html, render_html(hostile_run(), rendered_at=WHEN)):
        text = text_only(html).lower()
        for forbidden in ("http://", "https://", "<link", "<script", "url(", "@import", "<iframe", "<object"):
            assert forbidden not in text
        assert not re.search(r'(src|href)\s*=\s*["\']?//', text)
        assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', text))
        sources = IMG_SRC.findall(html)
        assert sources and len(sources) == html.count("<img")
        for source in sources:
            assert source.startswith("data:image/png;base64,")
            with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1], validate=True))) as image:
                assert image.format == "PNG" and image.width > 50 and image.height > 50
                image.load()
                assert "Software" not in image.info


def test_deterministic(full_html: str) -> None:
    run = full_run()
    assert render_html(run, rendered_at=WHEN) == full_html
    other = render_html(run, rendered_at="2030-01-01 00:00 UTC")
    assert other != full_html and other.replace("2030-01-01 00:00 UTC", WHEN) == full_html


@pytest.mark.slow
def test_deterministic_across_processes(full_html: str) -> None:
    """Another interpreter, another hash seed: the same bytes (nothing depends on set or hash order)."""
    script = (
        "import sys; sys.path[:0] = ['tests']\n"
        "from test_html_report import WHEN, full_run\n"
        "from robustinv.report.html import render_html\n"
        "sys.stdout.buffer.write(render_html(full_run(), rendered_at=WHEN).encode())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, check=True,
                          timeout=300)
    assert done.stdout.decode() == full_html


def test_the_worst_case_leads_the_headline_with_its_log_findings_and_notes() -> None:
    log = [{"attack": "pgd", "attack_acc": 0.93, "newly_broken": 6, "unique": 1, "robust_acc": 0.93},
           {"attack": HOSTILE, "attack_acc": 0.92, "newly_broken": 2, "unique": 2, "robust_acc": 0.91}]
    worst = make_row(defense="pgd_at", attack="worst_case", robust_acc=0.91, flags=("masking?",), config={
        "name": "worst_case", "attacks": {"pgd": 100, HOSTILE: 50}, "log": log,
        "findings": [f"{HOSTILE} alone broke 6.0% of the inputs"], "notes": ["pgd not converged: 2.0 points lower"],
    })
    run = StoredRun(run_info(), [make_row(defense="pgd_at", robust_acc=0.93), worst], [], [], 'name = "r"\n')
    html = render_html(run, rendered_at=WHEN)
    headline = html[html.index('<table class="headline">'):html.index("How the worst case was reached")]
    assert "91.0% (95% CI 83.8%–95.2%) · worst case of 2 attacks at L∞ ε=0.3" in headline
    reached = html[html.index("How the worst case was reached"):html.index('<section id="accuracy">')]
    assert "<td>92.0%</td><td>2</td><td>2</td><td>91.0%</td>" in reached and ESCAPED in reached
    assert "pgd not converged: 2.0 points lower" in reached and "<script" not in html.lower()
