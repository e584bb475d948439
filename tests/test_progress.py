"""What `robustinv run` shows while it runs: lines in a CI log under every executor, a bar on a terminal, or nothing."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from click.testing import CliRunner

from robustinv.cli import main
from robustinv.progress_log import ProgressLines
from robustinv.records import CellKind
from robustinv.run.plan import CellSpec, ModelRef

from conftest import write_suite

SUITE = """
name = "progress"
seed = 2
n_explain = 0
cache_dir = "{cache}"

[dataset]
name = "digits"
n_eval = 30

[[models]]
name = "smallcnn"
[models.train]
epochs = 2
batch_size = 256

[[attacks]]
name = "fgsm"
eps = [0.1, 0.2]

[guard]
models = "none"
"""

MODEL = ModelRef(entry=0, name="lenet5", defense="pgd_at", fingerprint="f")


def spec(key: str, kind: CellKind = CellKind.attack) -> CellSpec:
    return CellSpec(key=key, kind=kind, model=MODEL, eps=0.3, label="pgd")


def record(logger: str, *, here: bool = True, level: int = logging.INFO) -> logging.LogRecord:
    made = logging.LogRecord(logger, level, __file__, 1, "message", None, None)
    made.process = os.getpid() if here else os.getpid() + 1
    return made


def test_a_line_per_finished_cell_and_per_epoch() -> None:
    lines: list[str] = []
    now = [0.0]
    display = ProgressLines(lines.append, clock=lambda: now[0])
    hooks = display.hooks()
    hooks.on_start(3)
    hooks.on_cell(spec("s"), "stored")
    prepare, attack = spec("p", CellKind.prepare), spec("a")
    hooks.on_running([prepare])
    now[0] = 30.0
    hooks.on_event(prepare, 1, 3)
    now[0] = 60.0
    hooks.on_event(prepare, 2, 3)
    hooks.on_cell(prepare, "computed")
    hooks.on_running([attack])
    now[0] = 101.25
    hooks.on_cell(attack, "failed")
    stored, failed = spec("s").describe(), attack.describe()
    assert lines == [
        f"cell 1/3 stored: {stored}",
        "train lenet5[pgd_at]: epoch 1/3 (30 s, ~60 s left)",
        "train lenet5[pgd_at]: epoch 2/3 (60 s, ~30 s left)",
        f"cell 2/3 done: {prepare.describe()} (60.0 s)",
        f"cell 3/3 failed: {failed} (41.2 s)",
    ]
    assert failed.startswith("attack lenet5[pgd_at] pgd ε=0.3")


def test_each_epoch_and_cell_is_said_once_whichever_process_trained_it() -> None:
    lines: list[str] = []
    display = ProgressLines(lines.append)
    prepare = spec("p", CellKind.prepare)
    assert not display.keep(record("robustinv.run.cells"))  # the cell line says it
    assert display.keep(record("robustinv.run.cells", level=logging.WARNING))
    assert display.keep(record("robustinv.run.driver"))
    epoch = record("robustinv.training.loop")
    assert display.keep(epoch) and display.keep(epoch)  # an epoch trained here: its record, seen by two handlers
    assert not display.keep(record("robustinv.training.loop", here=False))  # a worker's: its event says it
    display.hooks().on_event(prepare, 1, 2)
    display.hooks().on_event(prepare, 2, 2)
    assert lines == ["train lenet5[pgd_at]: epoch 2/2 (0 s, ~0 s left)"]


def run_cli(tmp_path: Path, *options: str, quiet: bool = False) -> tuple[int, list[str]]:
    suite = write_suite(tmp_path, SUITE.format(cache=tmp_path / "cache"))
    arguments = ["run", str(suite), "--out", str(tmp_path / "out"), "--store", str(tmp_path / "r.db"), *options]
    result = CliRunner().invoke(main, ["-q", *arguments] if quiet else arguments)
    return result.exit_code, result.stderr.splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "process"])
def test_a_ci_log_has_a_line_per_cell_and_epoch(executor: str, tmp_path: Path) -> None:
    code, lines = run_cli(tmp_path, "--executor", executor)
    assert code == 0, lines
    done = [re.fullmatch(r"cell (\d+)/(\d+) done: (.+?)(?: \(\d+\.\d s\))?", line)
            for line in lines if line.startswith("cell ")]
    assert done and all(done), lines
    numbers = [(int(m[1]), int(m[2])) for m in done if m]
    assert numbers == [(n, len(done)) for n in range(1, len(done) + 1)], lines
    described = [m[3] for m in done if m]
    assert len(set(described)) == len(described) and described[0] == "prepare smallcnn", lines
    for eps in ("0.1", "0.2"):
        assert any(what.startswith(f"attack smallcnn fgsm ε={eps}") for what in described), lines
    for epoch in (1, 2):
        assert len([line for line in lines if re.match(rf"train smallcnn.*: epoch {epoch}/2 ", line)]) == 1, lines
    assert not any("clean accuracy" in line or "robust" in line for line in lines), lines


def test_quiet_prints_neither_lines_nor_epochs(tmp_path: Path) -> None:
    code, lines = run_cli(tmp_path, quiet=True)
    assert code == 0 and lines == []


@pytest.mark.slow
def test_a_terminal_gets_the_bar_and_not_the_lines(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, SUITE.format(cache=tmp_path / "cache"))
    command = [sys.executable, "-c", "from robustinv.cli import main; main()", "run", str(suite),
               "--out", str(tmp_path / "out"), "--store", str(tmp_path / "r.db")]
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty has 0 rows
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal) as child:
        os.close(terminal)
        seen = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    os.close(controller)
    text = seen.decode("utf-8", errors="replace")
    assert child.returncode == 0, text
    assert "3/3" in text and "cell/s" in text, text  # tqdm's bar, in cells
    assert not re.search(r"cell \d+/3 done", text), text
