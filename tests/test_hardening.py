"""Hardening beyond the hostile-input table: stale results, models that misbehave, output that must stay
valid (XML, terminal), run folders written all or nothing, internal errors, signals and concurrency."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import sqlite3
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pandas as pd
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from junitparser import JUnitXml
from pydantic import BaseModel, ValidationError
from safetensors.torch import load_file, save_file

from cli import main
from conftest import TINY_SUITE, write_suite
from test_resume import committed_cells
from robustinv.attacks import ATTACKS
from robustinv.attacks.fgsm import Fgsm
from robustinv.checkpoints import load_checkpoint, load_state_file, save_checkpoint
from robustinv.data import load_dataset
from robustinv.config import Config
from robustinv.errors import ModelError, RobustinvError
from robustinv.paths import cache_dir
from robustinv.records import reserved_label_problem
from robustinv.models.checked import CheckedModel
from robustinv.store import RunStatus, Store, StoreError
from robustinv.suite import SuiteError, load_suite, parse_suite
from robustinv.training.spec import ModelSpec

ROBUSTINV = Path(sys.executable).parent / "robustinv"
GATE_READY = TINY_SUITE.replace("steps = 5", "steps = 10")  # a PGD that reaches the ε boundary: no flags


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def rows(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv")


def weights_suite(arch: str, *, names: tuple[str, ...] = ("m",)) -> str:
    """TINY_SUITE with user models loaded from w.safetensors (no training)."""
    entries = "".join(f'[[models]]\nname = "{name}"\narch = "{arch}"\nweights = "w.safetensors"\n\n' for name in names)
    head, _, rest = TINY_SUITE.partition("[[models]]")
    attacks = rest[rest.index("[[attacks]]"):]
    return head + entries + attacks


def plain_weights(folder: Path) -> None:
    torch.manual_seed(0)
    save_file({"1.weight": torch.randn(10, 64) * 0.3, "1.bias": torch.zeros(10)}, str(folder / "w.safetensors"))


# Class 1: stale results --------------------------------------------------------------------------

STALE_MODEL = '''
from torch import nn

from helpers import transform
from robustinv import model_builder


class Net(nn.Sequential):
    def forward(self, x):
        return transform(super().forward(x))


@model_builder
def build():
    return Net(nn.Flatten(), nn.Linear(64, 10))
'''


def test_editing_an_imported_module_between_two_runs_recomputes_every_cell(tmp_path: Path) -> None:
    (tmp_path / "usermodel.py").write_text(STALE_MODEL)
    (tmp_path / "helpers.py").write_text("def transform(logits):\n    return logits\n")
    plain_weights(tmp_path)
    suite = write_suite(tmp_path, weights_suite("usermodel:build"))
    out = tmp_path / "out"
    assert invoke("run", str(suite), "--out", str(out))[0] == 0
    before = rows(out)
    # The same weights file and builder; only the helper module the model imports changes.
    (tmp_path / "helpers.py").write_text("def transform(logits):\n    return -logits\n")
    code, stdout, stderr = invoke("run", str(suite), "--out", str(out))
    assert code == 0, stderr
    assert "resumed:" not in stdout, "no cell may be reused: the model's code changed"
    after = rows(out)
    assert (before["model_fingerprint"] != after["model_fingerprint"]).all()
    assert after["clean_acc"].iloc[0] != before["clean_acc"].iloc[0]
    # The report shows the numbers of the code that ran: the negated logits' accuracy, computed directly.
    state = load_file(str(tmp_path / "w.safetensors"))
    x, y = load_dataset("digits").eval_subset(60, 1)
    logits = -(x.flatten(1) @ state["1.weight"].T + state["1.bias"])
    assert after["clean_acc"].iloc[0] == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    # Unchanged code: the third run reuses every cell.
    code, stdout, _ = invoke("run", str(suite), "--out", str(out))
    assert code == 0 and re.search(r"resumed: \d+ cells reused, 0 computed", stdout)


# Class 5: models that misbehave -------------------------------------------------------------------

MISBEHAVING = '''
import torch
from torch import nn

from robustinv import model_builder


class Mutating(nn.Sequential):
    """Scribbles over its input, as a careless preprocessing step does."""

    def forward(self, x):
        out = super().forward(x)
        x.mul_(0.0).add_(1.0)
        return out


class DropoutOn(nn.Sequential):
    def forward(self, x):
        return super().forward(nn.functional.dropout(x, 0.5, training=True))


@model_builder
def honest():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


@model_builder
def mutating():
    return Mutating(nn.Flatten(), nn.Linear(64, 10))


@model_builder
def dropout_on():
    return DropoutOn(nn.Flatten(), nn.Linear(64, 10))
'''


def test_a_model_that_edits_its_input_in_place_is_refused_and_never_sees_the_harness_tensor(tmp_path: Path) -> None:
    (tmp_path / "misbehaving.py").write_text(MISBEHAVING)
    plain_weights(tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = invoke("run", str(write_suite(tmp_path, weights_suite("misbehaving:mutating"))), "--out",
                                  str(out))
    assert code == 2 and "error: model 'm' modifies its input tensor in place" in stderr, stderr
    assert "Traceback" not in stdout + stderr and not out.exists()
    # Even before it is refused, the model only ever gets a copy: the caller's tensor is untouched.
    class Mutating(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = super().forward(x.flatten(1))
            x.zero_()
            return out

    x = torch.rand(3, 1, 8, 8)
    kept = x.clone()
    with pytest.raises(ModelError, match="in place"):
        CheckedModel(Mutating(64, 10), "m", 10)(x)
    assert torch.equal(x, kept)


def test_a_model_random_in_eval_mode_is_flagged_and_fails_the_gate(tmp_path: Path) -> None:
    (tmp_path / "misbehaving.py").write_text(MISBEHAVING)
    plain_weights(tmp_path)
    suite = write_suite(tmp_path, weights_suite("misbehaving:dropout_on"))
    (tmp_path / "policy.toml").write_text('[[rules]]\nmetric = "clean_acc"\nmin = 0.0\n')
    code, _, stderr = invoke("run", str(suite), "--out", str(tmp_path / "out"), "--gate", str(tmp_path / "policy.toml"))
    assert code == 1, stderr
    assert "different outputs" in stderr and "flagged by the sanity checks (randomized" in stderr
    assert all("randomized" in str(flags) for flags in rows(tmp_path / "out")["flags"])


# Class 6: names that would break XML or the terminal ----------------------------------------------

def test_control_characters_in_names_keep_junit_valid_and_the_terminal_clean(tmp_path: Path) -> None:
    text = GATE_READY.replace('name = "smallcnn"', 'name = "red\\u001bcnet\\u0007"\narch = "smallcnn"')
    text = text.replace('name = "pgd"', 'name = "pgd"\nlabel = "pgd\\u0000\\u000b"')
    policy = tmp_path / "policy.toml"
    policy.write_text('[[rules]]\nname = "bell\\u0007 \\u001b[2J rule"\nmetric = "robust_acc"\nmin = 0.0\n'
                      '[[rules]]\nmetric = "clean_acc"\nmin = 0.99\n')
    out = tmp_path / "out"
    code, stdout, stderr = invoke("run", str(write_suite(tmp_path, text)), "--out", str(out), "--gate", str(policy))
    assert code == 1, stderr
    for stream in (stdout, stderr):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", stream), "a control character reached the terminal"
    assert "red\\x1bcnet\\x07" in stdout and "bell\\x07 \\x1b[2J rule" in stderr
    xml = (out / "junit.xml").read_text(encoding="utf-8")
    ET.fromstring(xml.encode())  # parses
    suite = next(iter(JUnitXml.fromfile(str(out / "junit.xml"))))
    names = [case.name for case in suite]
    assert names[0].startswith("bell\\x07 \\x1b[2J rule") and suite.failures == 1
    assert "\\x1b" in (out / "summary.md").read_text(encoding="utf-8")
    assert "\x1b" in json.loads((out / "results.json").read_text())["results"][0]["model"], "kept verbatim in JSON"


# Class 2 and 7: a run folder holds one run, complete ----------------------------------------------

def test_an_ungated_run_into_a_gated_runs_folder_shows_no_verdict(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, GATE_READY)
    (tmp_path / "policy.toml").write_text('[[rules]]\nmetric = "clean_acc"\nmin = 0.0\n')
    out = tmp_path / "out"
    assert invoke("run", str(suite), "--out", str(out), "--gate", str(tmp_path / "policy.toml"))[0] == 0
    assert (out / "gate.json").is_file() and "Gate: PASS" in (out / "summary.md").read_text()
    other = write_suite(tmp_path, GATE_READY.replace('name = "tiny"', 'name = "tiny-2"'), name="other.toml")
    code, _, stderr = invoke("run", str(other), "--out", str(out))
    assert code == 0, stderr
    assert not (out / "gate.json").exists() and not (out / "junit.xml").exists()
    assert "Gate: no gate policy." in (out / "summary.md").read_text()
    assert "Gate: PASS" not in (out / "report.html").read_text() and "tiny-2" in (out / "report.html").read_text()


def test_a_full_disk_while_writing_the_report_leaves_the_previous_files_and_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    suite, out, db = write_suite(tmp_path, TINY_SUITE), tmp_path / "out", tmp_path / "runs.db"
    assert invoke("run", str(suite), "--out", str(out), "--store", str(db))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    write_bytes = Path.write_bytes

    def full_disk(path: Path, data: bytes) -> int:
        if path.name.startswith(".report.html"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    other = write_suite(tmp_path, TINY_SUITE.replace("seed = 1", "seed = 2"), name="other.toml")
    code, stdout, stderr = invoke("run", str(other), "--out", str(out), "--store", str(db))
    assert code == 2 and "No space left on device" in stderr and "Traceback" not in stdout + stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before, "old set or new set, no mix"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")], "no temporary file left"
    with Store(db) as store:
        statuses = [entry.run.status for entry in store.history()]
    assert statuses == [RunStatus.failed, RunStatus.finished]  # newest first


def test_a_full_disk_on_a_first_run_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_space)
    out = tmp_path / "out"
    code, stdout, stderr = invoke("run", str(write_suite(tmp_path, TINY_SUITE)), "--out", str(out))
    assert code == 2 and "No space left on device" in stderr and "Traceback" not in stdout + stderr
    assert {p.name for p in out.iterdir()} <= {"cells"} if out.exists() else True


# Class 4: only robustinv's own bugs are internal errors, and never exit 1 -------------------------

def test_an_internal_error_exits_3_with_the_traceback_in_a_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a robustinv bug")

    monkeypatch.setattr("robustinv.run.driver.judge", bug)
    code, stdout, stderr = invoke("run", str(write_suite(tmp_path, TINY_SUITE)), "--out", str(tmp_path / "out"),
                                  env={"ROBUSTINV_LOG_DIR": str(tmp_path / "logs")})
    assert code == 3, stderr
    assert "internal error: ZeroDivisionError: a robustinv bug (traceback in" in stderr
    assert "Traceback" not in stdout + stderr
    [log] = (tmp_path / "logs").iterdir()
    assert "Traceback" in log.read_text() and "def bug" not in stderr


def test_ctrl_c_during_a_run_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Fgsm, "generate", interrupt)
    out = tmp_path / "out"  # a store of its own: the session's store may hold these cells, computed by another test
    code, stdout, stderr = invoke("run", str(write_suite(tmp_path, TINY_SUITE)), "--out", str(out),
                                  "--store", str(tmp_path / "own.db"))
    assert code == 130 and stderr.strip().endswith("interrupted") and "Traceback" not in stdout + stderr
    assert {p.name for p in out.iterdir()} <= {"cells"} if out.exists() else True


# Class 9: signals, concurrency, read-only stores --------------------------------------------------

SLOW_SUITE = TINY_SUITE.replace("steps = 5", "steps = 400").replace("n_eval = 60", "n_eval = 300")


def start_slow_run(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    suite, out, db = write_suite(tmp_path, SLOW_SUITE), tmp_path / "out", tmp_path / "runs.db"
    log = (tmp_path / "slow.log").open("wb")
    process = subprocess.Popen([str(ROBUSTINV), "run", str(suite), "--out", str(out), "--store", str(db)],
                               stdout=log, stderr=log)
    deadline = time.monotonic() + 300
    while committed_cells(db) < 1:
        assert process.poll() is None, (tmp_path / "slow.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "no cell committed within 300 s"
        time.sleep(0.05)
    return process, out, db


@pytest.mark.slow
def test_sigterm_marks_the_run_interrupted_and_a_second_run_on_the_folder_is_refused(tmp_path: Path) -> None:
    process, out, db = start_slow_run(tmp_path)
    try:
        suite = tmp_path / "suite.toml"
        code, _, stderr = invoke("run", str(suite), "--out", str(out), "--store", str(db))
        assert code == 2 and "is in use" in stderr and f"process {process.pid}" in stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert (tmp_path / "slow.log").read_text().strip().endswith("terminated")
    with Store(db) as store:
        [entry] = store.history()
    assert entry.run.status is RunStatus.interrupted and entry.cells >= 1


def _can_run_as_nobody() -> bool:
    """Whether an unprivileged user could start this interpreter (root's home is often closed)."""
    interpreter = Path(sys.executable).resolve()
    return all(os.stat(folder).st_mode & 0o001 for folder in interpreter.parents)


def test_a_read_only_store_is_read_without_writing_to_it(tmp_path: Path) -> None:
    db = tmp_path / "store" / "runs.db"
    assert invoke("run", str(write_suite(tmp_path, TINY_SUITE)), "--out", str(tmp_path / "out"), "--store", str(db))[0] == 0
    before = db.read_bytes()
    with Store(db, readonly=True) as store:
        [entry] = store.history()
        assert entry.run.status is RunStatus.finished
        with pytest.raises(StoreError, match="readonly"):
            store.record_gate(entry.run.run_id, True)
    assert db.read_bytes() == before, "a read-only store is not written to"
    code, stdout, _ = invoke("history", "--store", str(db))
    assert code == 0 and "tiny" in stdout


@pytest.mark.skipif(os.geteuid() == 0 and not _can_run_as_nobody(), reason="no unprivileged user can run this Python")
def test_history_reads_a_store_it_cannot_write(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    assert invoke("run", str(write_suite(tmp_path, TINY_SUITE)), "--out", str(tmp_path / "out"), "--store", str(db))[0] == 0
    shared = Path(tempfile.mkdtemp(prefix="robustinv-readonly-"))  # reachable by another user, unlike tmp_path
    store = shared / "store"
    try:
        store.mkdir()
        shutil.copy(db, store / "runs.db")
        (store / "runs.db").chmod(0o444)
        store.chmod(0o555)
        shared.chmod(0o755)
        command = [str(ROBUSTINV), "history", "--store", str(store / "runs.db")]
        as_nobody = {"user": 65534, "env": {**os.environ, "HOME": str(shared)}, "cwd": str(shared)}
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                              **(as_nobody if os.geteuid() == 0 else {}))  # type: ignore[call-overload]
        assert done.returncode == 0, done.stderr
        assert "tiny" in done.stdout and "finished" in done.stdout
        assert sorted(p.name for p in store.iterdir()) == ["runs.db"]
    finally:
        store.chmod(0o755)
        shutil.rmtree(shared)


def test_the_console_script_is_the_package_entry_point() -> None:
    [script] = [e for e in entry_points(group="console_scripts") if e.name == "robustinv"]
    assert script.value == "robustinv.cli:main"


# Class 6 and 8: numbers are numbers, 64-bit and finite; labels read as a reader sees them; files are files --------

def numeric_fields(config_type: type[BaseModel]) -> dict[str, object]:
    """The fields whose values (or items) must be numbers and accept no text, each with a number written as text."""
    from robustinv.config import _arms, _item_arms, _takes

    def numeric(arms: list[object]) -> bool:
        return (int in arms or float in arms) and not any(_takes(arm, str) for arm in arms)

    found: dict[str, object] = {}
    for name, field in config_type.model_fields.items():
        if numeric(_arms(field.annotation)):
            found[name] = "1"
        elif numeric(_item_arms(field.annotation)):
            found[name] = {"pgd": "1"} if "dict" in str(field.annotation) else ["0.1"]
    return found


@pytest.mark.parametrize("attack", ATTACKS.names())
def test_every_numeric_key_of_every_attack_refuses_a_string(attack: str) -> None:
    config_type = ATTACKS.get(attack).config_type
    fields = numeric_fields(config_type)
    assert "eps" in fields and "batch_size" in fields
    for name, value in fields.items():
        with pytest.raises(ValidationError) as raised:
            config_type.model_validate({"name": attack, "eps": [0.1], name: value})
        problems = [e for e in raised.value.errors() if e["loc"][:1] == (name,)]
        assert problems and "expected a number, got a string" in problems[0]["msg"], (name, raised.value)


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("seed", 2**64, "does not fit in 64 bits"),
    ("seed", -1, "greater than or equal to 0"),
    ("threads", 100_000, "less than or equal to 1024"),
    ("eval_batch_size", 2**63, "does not fit in 64 bits"),
    ("eval_batch_size", "512", "expected a number, got a string"),
    ("seed", 1.5, "integer"),
])
def test_suite_numbers_are_strict_and_bounded(key: str, value: object, problem: str) -> None:
    data = tomllib.loads(TINY_SUITE)
    with pytest.raises(SuiteError, match=re.escape(problem)):
        parse_suite({**data, key: value})


class Bounds(Config):
    """A gate rule's kind of fields: optional numbers beside text."""

    metric: str
    min: float | None = None
    eps: list[float] = []


def test_floats_must_be_finite_and_numbers_no_text() -> None:
    from robustinv.training.recipe import TrainRecipe

    for value in (math.nan, math.inf):
        with pytest.raises(ValidationError, match="expected a finite number"):
            TrainRecipe(lr=value)
    with pytest.raises(ValidationError, match=re.escape("expected a number, got a string ('0.5')")):
        Bounds.model_validate({"metric": "clean_acc", "min": "0.5"})
    with pytest.raises(ValidationError, match=re.escape("expected a number, got a string ('1e-1')")):
        Bounds.model_validate({"metric": "clean_acc", "eps": [0.2, "1e-1"]})
    assert Bounds.model_validate({"metric": "1", "min": 1}).min == 1.0  # text stays text, TOML's integers numbers


@pytest.mark.parametrize(("label", "problem"), [
    (" ", "a blank label"), ("", "a blank label"), ("clean ", "reads as 'clean'"),
    ("Worst_Case", "reads as 'worst_case'"), ("ＣＬＥＡＮ", "reads as 'clean'"), ("PGD-Guard", "'-guard'"),
    ("\t", "a blank label"),
])
def test_reserved_labels_are_compared_as_a_reader_sees_them(label: str, problem: str) -> None:
    found = reserved_label_problem(label)
    assert found is not None and problem in found
    assert reserved_label_problem("pgd-40") is None


def test_arch_kwargs_go_only_to_a_callable(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="'smallcnn' is a registered architecture"):
        ModelSpec(name="smallcnn", arch_kwargs={"width": 8})
    with pytest.raises(ValidationError, match="drop 'arch', 'arch_kwargs'"):
        ModelSpec(name="m", torchscript=tmp_path / "m.ts", arch_kwargs={"width": 8})
    assert ModelSpec(name="m", arch="pkg.nets:build", arch_kwargs={"width": 8}).arch_kwargs == {"width": 8}


def test_a_cache_that_is_a_file_is_refused_where_it_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file")
    monkeypatch.setenv("ROBUSTINV_CACHE", str(blocker / "below"))
    with pytest.raises(RobustinvError, match=re.escape(f"{blocker} is not a folder")):
        cache_dir()
    data = {**tomllib.loads(TINY_SUITE), "cache_dir": str(blocker)}
    with pytest.raises(SuiteError, match=re.escape(f"cache_dir: {blocker} is not a folder")):
        parse_suite(data)


@pytest.mark.parametrize("make", ["fifo", "loop", "device", "folder", "missing"])
def test_a_model_file_that_is_no_regular_file_is_named_without_reading_it(tmp_path: Path, make: str) -> None:
    path = tmp_path / "w.pt"
    if make == "fifo":
        os.mkfifo(path)  # reading it would block forever
    elif make == "loop":
        path.symlink_to(path)
    elif make == "device":
        path.symlink_to("/dev/zero")  # reading it would never end
    elif make == "folder":
        path.mkdir()
    expected = {"fifo": "is a FIFO", "loop": "is a symlink loop", "device": "is a character device",
                "folder": "is a folder", "missing": "does not exist"}[make]
    with pytest.raises(ModelError, match=re.escape(f"weights file {path} {expected}")):
        load_state_file(path)


def test_a_damaged_cached_checkpoint_is_an_input_error(tmp_path: Path) -> None:
    stem = tmp_path / "model"
    save_checkpoint(stem, {"w": torch.zeros(2)}, {"seed": 1})
    (tmp_path / "model.json").write_text("{ truncated")
    with pytest.raises(ModelError, match="is damaged"):
        load_checkpoint(stem)


def test_a_damaged_store_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path):
        pass
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = -1")  # robustinv's application id stays: a damaged header, not another file
    db.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="is damaged: its header says schema -1"):
            Store(path, readonly=readonly)


@pytest.mark.parametrize("manifest", ["{ truncated", "[1, 2]", '{"suite": "x"}', "FIFO"])
def test_a_damaged_production_manifest_is_refused_before_anything_runs(tmp_path: Path, manifest: str) -> None:
    from robustinv.inversion.production import check_out_dir

    if manifest == "FIFO":
        os.mkfifo(tmp_path / "manifest.json")
    else:
        (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(RobustinvError, match="manifest"):
        check_out_dir(tmp_path)
    assert check_out_dir(tmp_path / "new") is None


def test_explain_reports_the_training_images_it_used(tmp_path: Path) -> None:
    from robustinv.interpret.gan import ExplainerRecipe, ExplainMode
    from robustinv.jobs.explain import ExplainRequest, explain_model

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((40, 1, 8, 8), dtype=np.float32), y=np.arange(40) % 4)
    text = TINY_SUITE.replace('name = "digits"\nn_eval = 60', f'name = "npz"\nroot = "{tmp_path / "d.npz"}"')
    suite = load_suite(write_suite(tmp_path, f'cache_dir = "{tmp_path / "cache"}"\n' + text))
    request = ExplainRequest(suite, "smallcnn", "standard", (ExplainMode.gsft,), None, 5000,
                             ExplainerRecipe(epochs=1), tmp_path)
    run = explain_model(request)
    assert run.outcome.n_train == 32  # the 32 training images of the 80/20 split, not the 5000 asked for
