"""The documentation site builds with `mkdocs build --strict`, and the short README links only to files that exist.

A subprocess, because the build is mkdocs' own command line: its `--strict` mode turns every
warning (a broken link or anchor, a page missing from the navigation, a docstring the API
reference cannot parse) into a failed build. The build reads the docstrings statically and
needs no network.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
PAGES = ("index", "suites", "attacks", "inversion", "defenses", "interpretation", "gate", "scale", "api", "reference",
         "results", "extending", "development")
README = REPO / "README.md"
README_MAX_LINES = 250


def _missing_docs_packages() -> list[str]:
    missing = []
    for name in DOCS_PACKAGES:
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # the parent package of a dotted name is missing
            found = None
        if found is None:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _missing_docs_packages()
    if missing:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(missing)}): pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    return out


def test_every_page_is_built(site: Path) -> None:
    for page in PAGES:
        path = site / "index.html" if page == "index" else site / page / "index.html"
        assert path.is_file(), f"{page}: not built"


def test_the_api_reference_is_generated_from_docstrings(site: Path) -> None:
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    for identifier in ("robustinv.api.evaluate", "robustinv.api.gate", "robustinv.run.run_suite",
                       "robustinv.records.GateVerdict", "robustinv.measures.register_measure",
                       "robustinv.sequential.SequentialTest", "robustinv.gating.sequential.SequentialGate"):
        assert f'id="{identifier}"' in reference, identifier
    assert "judge it as a suite would" in reference, "evaluate's docstring is rendered"


def test_the_readme_is_a_short_quickstart_whose_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link) and not link.startswith("#")]
    assert local, "the quickstart links into the docs"
    for link in local:
        assert (REPO / link).exists(), f"README.md: link {link!r} points to no file"
