"""The records, the store, the gate, the reports and the light commands start without torch, torchvision or ART.

Each check runs in a fresh interpreter: this test process has imported torch long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "torchvision", "art")

_REPORT_HEAVY = f"""
import json, sys
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def heavy_modules_after(code: str) -> list[str]:
    """The heavy packages in `sys.modules` after a fresh interpreter runs `code`."""
    done = subprocess.run([sys.executable, "-c", code + _REPORT_HEAVY], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("modules", [
    "robustinv.gating, robustinv.report, robustinv.store, robustinv.cli",
    "robustinv, robustinv.records, robustinv.judge.sanity, robustinv.judge.verdict, robustinv.judge.worst_case, robustinv.stats",
    "robustinv.sequential, robustinv.gating.sequential, robustinv.judge.judgement, robustinv.records.columns",
    "robustinv.report.html, robustinv.report.plots, robustinv.report.rundir, robustinv.tomlfile",
])
def test_light_modules_import_without_torch(modules: str) -> None:
    assert heavy_modules_after(f"import {modules}") == []


@pytest.mark.parametrize("args", [["--help"], ["history", "--help"], ["gate", "--help"], ["report", "--help"]])
def test_light_commands_start_without_torch(args: list[str]) -> None:
    code = f"""
from robustinv.cli import main
try:
    main({args!r}, standalone_mode=False)
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""
    assert heavy_modules_after(code) == []


def test_history_runs_without_torch(tmp_path: Path) -> None:
    store = tmp_path / "robustinv.db"
    code = f"""
from pathlib import Path
from robustinv.cli import main
from robustinv.store import Store
Store(Path({str(store)!r})).close()
main(["history", "--store", {str(store)!r}], standalone_mode=False)
"""
    assert heavy_modules_after(code) == []


@pytest.mark.slow
def test_the_public_names_still_load_on_use() -> None:
    code = "import robustinv\nassert robustinv.ATTACKS.names()\nassert robustinv.load_suite.__module__ == 'robustinv.suite'\n"
    assert "torch" in heavy_modules_after(code)


def test_report_and_gate_run_without_torch(tmp_path: Path) -> None:
    from test_fuzz import FILES  # the record files of a small hand-built run, gated and with a sample grid

    run = tmp_path / "run"
    run.mkdir()
    for name, data in FILES.items():
        (run / name).write_bytes(data)
    (tmp_path / "gate.toml").write_text('[[rules]]\nmetric = "robust_acc"\nmin = 0.2\n', encoding="utf-8")
    code = f"""
from robustinv.cli import main
main(["report", {str(run)!r}], standalone_mode=False)
try:
    main(["gate", {str(run)!r}, "--policy", {str(tmp_path / "gate.toml")!r}, "--store", {str(tmp_path / "s.db")!r}],
         standalone_mode=False)
except SystemExit as exc:
    assert exc.code in (0, 1, None), exc.code
"""
    assert heavy_modules_after(code) == []
    assert (run / "report.html").is_file() and (run / "junit.xml").is_file()
