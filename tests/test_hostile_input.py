"""Hostile and broken input, one table: every case exits with its code and one line naming the problem.

Each case writes what it needs into a fresh folder and runs one command. Every case asserts:
the exit code (2 for input errors, 1 where a gate must fail closed), the message, no
traceback, no output half-written (a `run` leaves no folder but resumable cells; `gate` and
`report` leave the run folder byte for byte as it was), and nothing executed: a sentinel file
that the hostile payloads try to create never appears. The classes are those of the hardening
issue: forged run files, code from suites, tracebacks, reserved names, booleans as numbers and
the smaller ones; stale results, mutating models, XML and terminal safety, half-written
output and concurrency have tests of their own in tests/test_hardening.py.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from cli import main
from robustinv.checkpoints import load_state_file
from robustinv.errors import ModelError

from conftest import TINY_SUITE
import hostile_runs as hr
from hostile_folders import (
    HOLDING, against_baseline, as_robust_as_accurate, baseline_named, busy, every_row, last_pass_of_itself,
    on_recorded_run, other_evaluation, pgd_above_fgsm_without_capabilities, pgd_config, renamed, worst_members,
)
from robustinv.store.folder_lock import LOCK_NAME

SENTINEL = "sentinel"  # what every payload below tries to create (or, for rmtree, delete)

USER_MODELS = '''
from pathlib import Path

import torch
from torch import nn

from robustinv import model_builder


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        return self.linear(x.flatten(1)) * float("nan")


class BatchLimited(nn.Module):
    """Fine on the two-image probe, fails on a real batch."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        if len(x) > 8:
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.linear(x.flatten(1))


class IntLogits(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        return self.linear(x.flatten(1)).round().long()


class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        return self.linear(x.flatten(1)), None


class ShapeOnBigBatches(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        out = self.linear(x.flatten(1))
        return out if len(x) <= 8 else out[:8]


class NotAModel:
    def __init__(self, path="sentinel"):
        Path(path).touch()


def touch_sentinel(path="sentinel"):
    Path(path).touch()
    return nn.Linear(64, 10)


not_marked_lambda = lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


@model_builder
def nan_model():
    return NaNNet()


@model_builder
def seven_classes():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 7))


@model_builder
def rgb_only():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10))


@model_builder
def plain():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


@model_builder
def not_a_module():
    return "a string"


@model_builder
def raises():
    raise ValueError("bad width")
'''

# Writes what the case needs into a folder and returns the CLI arguments; the second argument hands
# out the module's finished run (trained once, only for the cases that edit it).
Setup = Callable[[Path, Callable[[], Path]], list[str]]


@dataclass(frozen=True)
class Case:
    setup: Setup
    message: str
    code: int = 2


# --- run cases ---------------------------------------------------------------------------------

def run_text(make: Callable[[Path], str]) -> Setup:
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        (folder / "usermodels.py").write_text(USER_MODELS)
        (folder / "suite.toml").write_text(make(folder), encoding="utf-8")
        return ["run", str(folder / "suite.toml"), "--out", str(folder / "out")]
    return setup


def suite(edit: Callable[[str], str] = lambda t: t) -> Setup:
    return run_text(lambda folder: edit(TINY_SUITE))


def add_attack(table: str) -> Setup:
    return suite(lambda t: t + "\n[[attacks]]\n" + table)


def with_model(spec: str) -> Setup:
    def make(folder: Path) -> str:
        text = TINY_SUITE.replace('name = "smallcnn"', f'name = "m"\n{spec}')
        return text.replace("[models.train]\nepochs = 2\nbatch_size = 64\n", "") if "weights" in spec else text
    return run_text(make)


def calling(arch: str, kwargs: str) -> Setup:
    """A suite whose arch would run something if it were called (or imported) with these kwargs."""
    def make(folder: Path) -> str:
        (folder / "keep").mkdir(exist_ok=True)
        kwargs_text = kwargs.replace("SENTINEL", str(folder / SENTINEL)).replace("KEEP", str(folder / "keep"))
        return TINY_SUITE.replace('name = "smallcnn"', f'name = "m"\narch = "{arch}"\narch_kwargs = {kwargs_text}')
    return run_text(make)


def with_npz(make: Callable[[], dict[str, np.ndarray]] | None = None, *, raw: bytes | None = None) -> Setup:
    def text(folder: Path) -> str:
        path = folder / "data.npz"
        if raw is not None:
            path.write_bytes(raw)
        else:
            assert make is not None
            np.savez(path, **make())
        return TINY_SUITE.replace('name = "digits"\nn_eval = 60', 'name = "npz"\nroot = "data.npz"')
    return run_text(text)


def truncated_npz() -> Setup:
    stream = io.BytesIO()
    np.savez(stream, x=np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32), y=np.arange(40) % 10)
    data = stream.getvalue()
    return with_npz(raw=data[: len(data) // 2])


def truncated_idx(folder: Path) -> str:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, 8, 8), dtype=np.uint8)
    labels = (np.arange(20) % 10).astype(np.uint8)
    for split in ("train", "t10k"):
        image_bytes = bytes([0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 8, 0, 0, 0, 8]) + images.tobytes()
        if split == "t10k":
            image_bytes = image_bytes[:100]  # cut inside the pixel data
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(image_bytes))
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 20]) + labels.tobytes()))
    return TINY_SUITE.replace('name = "digits"\nn_eval = 60', f'name = "idx"\nroot = "{folder.as_posix()}"')


GOOD_IMAGES = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
LABELS = np.arange(40) % 10


def images(x: np.ndarray, y: np.ndarray = LABELS) -> Callable[[], dict[str, np.ndarray]]:
    return lambda: {"x": x, "y": y}


def with_weights(write: Callable[[Path], None], name: str) -> Setup:
    def make(folder: Path) -> str:
        write(folder / name)
        text = TINY_SUITE.replace('name = "smallcnn"', f'name = "m"\narch = "usermodels:plain"\nweights = "{name}"')
        return text.replace("[models.train]\nepochs = 2\nbatch_size = 64\n", "")
    return run_text(make)


def plain_weights(dtype: torch.dtype) -> Callable[[Path], None]:
    return lambda path: save_file({"1.weight": torch.zeros(10, 64, dtype=dtype), "1.bias": torch.zeros(10)}, str(path))


def nan_weights(path: Path) -> None:
    save_file({"linear.weight": torch.zeros(10, 64), "linear.bias": torch.zeros(10)}, str(path))


def truncated_pt(path: Path) -> None:
    torch.save({"1.weight": torch.zeros(10, 64), "1.bias": torch.zeros(10)}, path)
    path.write_bytes(path.read_bytes()[:300])


def nan_model() -> Setup:
    def make(folder: Path) -> str:
        nan_weights(folder / "w.safetensors")
        text = TINY_SUITE.replace('name = "smallcnn"', 'name = "m"\narch = "usermodels:nan_model"\nweights = "w.safetensors"')
        return text.replace("[models.train]\nepochs = 2\nbatch_size = 64\n", "")
    return run_text(make)


# --- gate and report cases on a finished run ---------------------------------------------------

GATED_POLICY = '[[rules]]\nmetric = "clean_acc"\nmin = 0.0\n'
GATE_READY = TINY_SUITE.replace("steps = 5", "steps = 10")  # a PGD that reaches the ε boundary: no flags


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gated tiny run, in the session's results store; cases copy it before editing."""
    folder = tmp_path_factory.mktemp("finished")
    (folder / "suite.toml").write_text(GATE_READY, encoding="utf-8")
    (folder / "policy.toml").write_text(GATED_POLICY, encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(folder / "suite.toml"), "--out", str(folder / "run"),
                                       "--gate", str(folder / "policy.toml")])
    assert result.exit_code == 0, result.stderr
    return folder / "run"


Edit = Callable[[Path], None]  # edits a copy of the finished run folder


def on_run(edit: Edit = lambda run: None, *, command: str = "gate", fresh_store: bool = True,
           policy: str = GATED_POLICY) -> Setup:
    """`gate` (or `report`) on an edited copy of the finished run; a fresh store unless told otherwise."""
    def setup(folder: Path, finished: Callable[[], Path]) -> list[str]:
        run = Path(shutil.copytree(finished(), folder / "run"))
        edit(run)
        (folder / "policy.toml").write_text(policy, encoding="utf-8")
        store = ["--store", str(folder / "fresh.db")] if fresh_store else []
        if command == "report":
            return ["report", str(run)]
        return ["gate", str(run), "--policy", str(folder / "policy.toml"), *store]
    return setup


def edit_results(change: Callable[[dict], None]) -> Edit:
    def edit(run: Path) -> None:
        payload = json.loads((run / "results.json").read_text())
        change(payload)
        (run / "results.json").write_text(json.dumps(payload))
    return edit


def set_row(column: str, value: object, index: int = 0) -> Edit:
    return edit_results(lambda p: p["results"][index].__setitem__(column, value))


def drop_row_key(column: str) -> Edit:
    return edit_results(lambda p: p["results"][0].pop(column))


def raw_results(transform: Callable[[str], str]) -> Edit:
    def edit(run: Path) -> None:
        path = run / "results.json"
        path.write_text(transform(path.read_text()))
    return edit


def replace_value(column: str, literal: str) -> Edit:
    """Write a literal JSON would not produce (Infinity, NaN) as the first row's value."""
    def transform(text: str) -> str:
        payload = json.loads(text)
        payload["results"][0][column] = "@@"
        return json.dumps(payload).replace('"@@"', literal, 1)
    return raw_results(transform)


def edit_file(name: str, change: Callable[[Path], None]) -> Edit:
    return lambda run: change(run / name)


def edit_json_file(name: str, change: Callable[[object], object]) -> Edit:
    def edit(run: Path) -> None:
        path = run / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return edit


def first_grid(change: Callable[[dict], None]) -> Callable[[object], object]:
    def apply(grids: object) -> object:
        assert isinstance(grids, list)
        change(grids[0])
        return grids
    return apply


def worst_above_pgd(payload: dict) -> None:
    """A forged worst case: above an attack it combines, on the same inputs."""
    worst = next(r for r in payload["results"] if r["attack"] == "worst_case" and r["eps"] == 0.3)
    worst["robust_acc"] = worst["clean_acc"]


def unflag_robust_above_clean(payload: dict) -> None:
    row = payload["results"][0]
    row["robust_acc"], row["flags"] = row["clean_acc"], []
    row["clean_acc"] = max(0.0, row["clean_acc"] - 0.2)


def hide_findings(payload: dict) -> None:
    """A worst-case row with masking findings but without its `masking?` flag."""
    worst = next(r for r in payload["results"] if r["attack"] == "worst_case")
    worst["config"]["findings"] = ["FGSM beats PGD at ε=0.3: 0.0% vs 1.7%"]
    worst["flags"] = []


# --- the table ---------------------------------------------------------------------------------

CASES: dict[str, Case] = {
    # Suites: malformed files, wrong types, out-of-range values.
    "malformed TOML": Case(suite(lambda t: t.replace("[[attacks]]", "[[attacks", 1)), "malformed TOML"),
    "truncated TOML": Case(suite(lambda t: t[: t.index("steps = 5") + 6]), "malformed TOML"),
    "wrong type": Case(suite(lambda t: t.replace("seed = 1", 'seed = "one"')), "seed: Input should be a valid integer"),
    "unknown key": Case(suite(lambda t: t.replace("epochs = 2", "epoch = 2")), "did you mean 'epochs'?"),
    "eps zero": Case(suite(lambda t: t.replace("eps = [0.1, 0.3]", "eps = [0.0]", 1)), "every ε must be > 0"),
    "eps above one": Case(suite(lambda t: t.replace("eps = [0.1, 0.3]", "eps = [1.5]", 1)), "Linf ε above 1"),
    "k below one": Case(add_attack('name = "inversion"\neps = 0.3\nsamples_per_input = 0\n'), "samples_per_input"),
    "restarts below one": Case(suite(lambda t: t.replace("steps = 5", "steps = 5\nrestarts = 0")), "restarts"),
    # Booleans where numbers belong.
    "eps = [true]": Case(suite(lambda t: t.replace("eps = [0.1, 0.3]", "eps = [true]", 1)),
                         "attacks[0].eps: expected a number, got a boolean"),
    "seed = true": Case(suite(lambda t: t.replace("seed = 1", "seed = true")), "seed: expected a number"),
    "n_eval = true": Case(suite(lambda t: t.replace("n_eval = 60", "n_eval = true")), "n_eval: expected a number"),
    "steps = true": Case(suite(lambda t: t.replace("steps = 5", "steps = true")), "steps: expected a number"),
    "epochs = false": Case(suite(lambda t: t.replace("epochs = 2", "epochs = false")), "epochs: expected a number"),
    "guard n = true": Case(suite(lambda t: t + "\n[guard]\nn = true\n"), "guard.n: expected a number"),
    "policy min = true": Case(on_run(policy='[[rules]]\nmetric = "clean_acc"\nmin = true\n'),
                              "rules[0].min: expected a number, got a boolean"),
    "policy eps = false": Case(on_run(policy='[[rules]]\nmetric = "clean_acc"\neps = false\nmin = 0.1\n'),
                               "rules[0].eps: expected a number"),
    # Names that collide with the harness's own rows.
    "label clean": Case(suite(lambda t: t.replace('name = "pgd"', 'name = "pgd"\nlabel = "clean"')),
                        "'clean' is the name of robustinv's own clean sample row"),
    "label worst_case": Case(suite(lambda t: t.replace('name = "fgsm"', 'name = "fgsm"\nlabel = "worst_case"')),
                             "worst-case row"),
    "label -guard": Case(suite(lambda t: t.replace('name = "fgsm"', 'name = "fgsm"\nlabel = "pgd-guard"')),
                         "labels ending in '-guard' name the gradient-masking guard's rows"),
    "label -transfer": Case(suite(lambda t: t.replace('name = "fgsm"', 'name = "fgsm"\nlabel = "pgd-transfer"')),
                            "'-transfer'"),
    "label -unbounded": Case(suite(lambda t: t.replace('name = "fgsm"', 'name = "fgsm"\nlabel = "x-unbounded"')),
                             "'-unbounded'"),
    "model name with brackets": Case(suite(lambda t: t.replace('name = "smallcnn"', 'name = "m[pgd_at]"\narch = "smallcnn"')),
                                     "square brackets are reserved"),
    # A suite must not be able to run code by naming a callable.
    "arch os:system": Case(calling("os:system", '{ command = "touch SENTINEL" }'), "Python's standard library"),
    "arch shutil:rmtree": Case(calling("shutil:rmtree", '{ path = "KEEP" }'), "Python's standard library"),
    "arch subprocess:run": Case(calling("subprocess:run", '{ args = ["touch", "SENTINEL"] }'), "standard library"),
    "arch builtins:exec": Case(calling("builtins:exec", '{ source = "open(\'SENTINEL\', \'w\')" }'), "standard library"),
    "arch torch:save": Case(calling("torch:save", '{ obj = 1, f = "SENTINEL" }'),
                            "'save' is neither a torch.nn.Module subclass nor a function marked"),
    "arch numpy:save": Case(calling("numpy:save", '{ file = "SENTINEL", arr = [1] }'), "neither a torch.nn.Module"),
    "unmarked user function": Case(calling("usermodels:touch_sentinel", '{ path = "SENTINEL" }'),
                                   "@robustinv.model_builder"),
    "user class not a module": Case(calling("usermodels:NotAModel", '{ path = "SENTINEL" }'), "neither a torch.nn.Module"),
    "unmarked lambda": Case(calling("usermodels:not_marked_lambda", "{}"), "neither a torch.nn.Module"),
    "builder returns a string": Case(with_model('arch = "usermodels:not_a_module"'), "returned str, not a torch.nn.Module"),
    "builder raises": Case(with_model('arch = "usermodels:raises"'), "calling usermodels:raises failed: ValueError"),
    "no such callable": Case(with_model('arch = "usermodels:nothing"'), "has no callable 'nothing'"),
    # Data: empty, truncated, degenerate and absurd arrays.
    "empty dataset": Case(with_npz(images(np.zeros((0, 1, 8, 8), np.float32), LABELS[:0])), "no images"),
    "truncated npz": Case(truncated_npz(), "cannot read"),
    "truncated IDX": Case(run_text(truncated_idx), "truncated"),
    "labels out of range": Case(with_npz(images(GOOD_IMAGES, LABELS - 1)), "labels must lie in"),
    "absurd labels": Case(with_npz(images(GOOD_IMAGES, np.where(LABELS == 3, 10**12, LABELS))),
                          "labels must lie in [0, 99999]"),
    "float labels": Case(with_npz(images(GOOD_IMAGES, LABELS + 0.5)), "labels must be integers"),
    "images above one": Case(with_npz(images(GOOD_IMAGES + 1)), "must lie in [0, 1]"),
    "NaN images": Case(with_npz(images(np.where(GOOD_IMAGES > 0.5, np.nan, GOOD_IMAGES).astype(np.float32))),
                       "NaN or infinite"),
    "0-d images": Case(with_npz(images(np.array(0.5, np.float32))), "'x' is a single value"),
    "0-d labels": Case(with_npz(lambda: {"x": GOOD_IMAGES, "y": np.array(3)}), "'y' is a single value"),
    "zero-height images": Case(with_npz(images(np.zeros((40, 1, 0, 8), np.float32))), "have no pixels"),
    "5-d images": Case(with_npz(images(np.zeros((40, 1, 8, 8, 1), np.float32))), "float images must be"),
    "bool images": Case(with_npz(images(GOOD_IMAGES > 0.5)), "images must be uint8 or float"),
    "x_test without y_test": Case(with_npz(lambda: {"x": GOOD_IMAGES, "y": LABELS, "x_test": GOOD_IMAGES}),
                                  "has 'x_test' but no 'y_test'"),
    "labels longer than images": Case(with_npz(lambda: {"x": GOOD_IMAGES, "y": np.arange(41) % 10}),
                                      "40 images in 'x' but 41 labels"),
    "object array": Case(with_npz(lambda: {"x": np.array([{"a": 1}] * 40, dtype=object), "y": LABELS}),
                         "cannot read"),
    "root for digits": Case(suite(lambda t: t.replace('name = "digits"', 'name = "digits"\nroot = "."')),
                            "dataset 'digits' is bundled with its package and reads no files"),
    # Models that misbehave.
    "model returns NaN": Case(nan_model(), "NaN"),
    "wrong number of classes": Case(with_model('arch = "usermodels:seven_classes"'), "expected (2, 10) logits"),
    "channel mismatch": Case(with_model('arch = "usermodels:rgb_only"'), "does not accept"),
    "fails on larger batches": Case(with_model('arch = "usermodels:BatchLimited"'),
                                    "model 'm' failed on a batch of 64 images of shape (1, 8, 8): RuntimeError"),
    "integer logits": Case(with_model('arch = "usermodels:IntLogits"'), "returns torch.int64 logits"),
    "tuple output": Case(with_model('arch = "usermodels:TupleOut"'), "returned tuple, not a tensor of logits"),
    "wrong shape on larger batches": Case(with_model('arch = "usermodels:ShapeOnBigBatches"'),
                                          "returns (8, 10) for 64 images"),
    # Weights.
    "corrupt checkpoint": Case(with_weights(lambda p: p.write_bytes(b"\x00garbage" * 10), "w.safetensors"),
                               "corrupt or truncated"),
    "truncated checkpoint": Case(with_weights(truncated_pt, "w.pt"), "corrupt or truncated"),
    "int8 weights": Case(with_weights(plain_weights(torch.int8), "w.safetensors"),
                         "'1.weight' is torch.int8 but the model's '1.weight' is torch.float32"),
    "bool weights": Case(with_weights(plain_weights(torch.bool), "w.safetensors"), "is torch.bool"),
    # Forged or damaged run files: refused (exit 2) or failing the gate closed (exit 1), never passing.
    "robust_acc 1.5": Case(on_run(set_row("robust_acc", 1.5)), "results[0].robust_acc: 1.5 is outside [0, 1]"),
    "robust_acc Infinity": Case(on_run(replace_value("robust_acc", "Infinity")), "Infinity is not valid JSON"),
    "clean_acc NaN literal": Case(on_run(replace_value("clean_acc", "NaN")), "NaN is not valid JSON"),
    "robust_acc null": Case(on_run(set_row("robust_acc", None)), "robust_acc: expected a number, got NoneType"),
    "robust_acc as text": Case(on_run(set_row("robust_acc", "0.9")), "robust_acc: expected a number, got str"),
    "robust_acc true": Case(on_run(set_row("robust_acc", True)), "robust_acc: expected a number, got bool"),
    "n zero": Case(on_run(set_row("n", 0)), "results[0].n: 0 is outside [1, inf]"),
    "n as float": Case(on_run(set_row("n", 60.0)), "n: expected an integer"),
    "negative eps": Case(on_run(set_row("eps", -0.3)), "eps: -0.3 is outside"),
    "negative seconds": Case(on_run(set_row("seconds", -1)), "seconds: -1 is outside"),
    "cosine above one": Case(on_run(set_row("feature_consistency", 3.0)), "feature_consistency: 3 is outside"),
    "flags as text": Case(on_run(set_row("flags", "masking?")), "flags: expected a list of strings"),
    "config as a list": Case(on_run(set_row("config", [])), "config: expected an object"),
    "model as a number": Case(on_run(set_row("model", 7)), "model: expected a string"),
    "missing column": Case(on_run(drop_row_key("robust_acc")), "results[0].robust_acc: missing"),
    "unknown column": Case(on_run(set_row("verdict", "PASS")), "results[0].verdict: unknown column"),
    "row of another run": Case(on_run(set_row("run_id", "someone-else")), "is not this run"),
    "results not a list": Case(on_run(edit_results(lambda p: p.__setitem__("results", {}))),
                               "results: expected a list"),
    "run info missing": Case(on_run(edit_results(lambda p: p["run"].pop("seed"))), "run.seed: missing"),
    "run info wrong type": Case(on_run(edit_results(lambda p: p["run"].__setitem__("n_eval", "60"))),
                                "run.n_eval: expected int"),
    "top level array": Case(on_run(raw_results(lambda t: "[" + t + "]")), "(top level): expected an object"),
    "truncated results.json": Case(on_run(raw_results(lambda t: t[: len(t) // 2])), "results.json: cannot read"),
    "results.json not UTF-8": Case(on_run(edit_file("results.json", lambda p: p.write_bytes(b"\xff\xfe{}"))),
                                   "not UTF-8 text"),
    "gate.json of another run": Case(on_run(edit_json_file("gate.json", lambda g: {**g, "run_id": "x"}),  # type: ignore[dict-item]
                                            command="report"), "judged run 'x'"),
    "gate.json wrong type": Case(on_run(edit_json_file("gate.json", lambda g: {**g, "outcomes": 3}),  # type: ignore[dict-item]
                                        command="report"), "not a robustinv gate file"),
    "samples.json predictions": Case(on_run(edit_json_file("samples.json", first_grid(
        lambda g: g.__setitem__("predictions", [[1]])))), "predictions must be"),
    "samples.json confidences": Case(on_run(edit_json_file("samples.json", first_grid(
        lambda g: g.__setitem__("confidences", [[2.0] * len(g["true_labels"])]))), command="report"),
        "confidences must be"),
    "samples without images": Case(on_run(edit_file("samples.safetensors", lambda p: p.unlink())),
                                   "come together; one is missing"),
    "damaged images": Case(on_run(edit_file("samples.safetensors", lambda p: p.write_bytes(b"\x00" * 16))),
                           "samples.safetensors: cannot read"),
    "bad targets csv": Case(on_run(edit_file("inversion_targets.csv", lambda p: p.write_text("a,b\n1,2\n"))),
                            "inversion_targets.csv: expected the columns"),
    "stored run edited": Case(on_run(set_row("robust_acc", 0.99), fresh_store=False),
                              "does not match run", code=2),
    "worst case above an attack": Case(on_run(edit_results(worst_above_pgd)), "worst>attack)",
                                       code=1),
    "robust above clean, unflagged": Case(on_run(edit_results(unflag_robust_above_clean)), "robust>clean", code=1),
    "masking findings, unflagged": Case(on_run(edit_results(hide_findings)), "(masking?)", code=1),
    # A run folder the results store knows, edited after the run (see tests/hostile_folders.py).
    "renamed, raised, verdict deleted": Case(on_recorded_run(renamed("forged", as_robust_as_accurate)),
                                             "holds run 'forged', which the results store"),
    "renamed only": Case(on_recorded_run(renamed("forged")), "but the store recorded run"),
    "raised, store knows the run": Case(on_recorded_run(as_robust_as_accurate), "does not match run"),
    # Baselines: read strictly, checked against the store, never the judged run.
    "baseline edited, store knows it": Case(against_baseline(as_robust_as_accurate, known=True), "does not match run"),
    "baseline renamed, store knows its folder": Case(against_baseline(renamed("forged"), known=True),
                                                     "but the store recorded run"),
    "baseline robust_acc 1.5": Case(against_baseline(every_row(lambda r: r.__setitem__("robust_acc", 1.5))),
                                    "baseline/results.json: results[0].robust_acc: 1.5 is outside [0, 1]"),
    "baseline truncated": Case(against_baseline(raw_results(lambda t: t[: len(t) // 3])), "baseline/results.json: cannot read"),
    "baseline row of another run": Case(against_baseline(set_row("run_id", "x")), "is not this run"),
    "baseline gate.json of another run": Case(against_baseline(lambda b: (b / "gate.json").write_text(
        json.dumps({"run_id": "x", "policy": "p", "outcomes": []}))), "judged run 'x'"),
    "baseline is the judged folder": Case(baseline_named(lambda folder, run: str(run)),
                                          "that is the folder of the run being judged"),
    "baseline holds the judged run": Case(baseline_named(lambda folder, run: str(shutil.copytree(run, folder / "b"))),
                                          "the run being judged"),
    "baseline not a run folder": Case(baseline_named(lambda folder, run: str(folder)), "not a run folder"),
    "baseline missing": Case(baseline_named(lambda folder, run: str(folder / "nowhere")), "not a run folder"),
    "last-pass without a store": Case(baseline_named(lambda folder, run: "last-pass"), "no results store at"),
    "last-pass is the judged run": Case(last_pass_of_itself, "whose gate passed, besides the run being judged"),
    "baseline worst case above an attack": Case(against_baseline(edit_results(worst_above_pgd)),
                                                "the baseline's row is flagged by the sanity checks", code=1),
    "baseline names an unknown attack": Case(against_baseline(set_row("config", {"name": "nothing"})),
                                             "the baseline: ", code=1),
    # Descriptions the re-checks no longer read, and must agree with the rows.
    "attack renamed in config": Case(on_run(set_row("config", {"name": "fgsm2"})),
                                     "which robustinv has not registered", code=1),
    "attack name removed": Case(on_run(edit_results(lambda p: p["results"][0]["config"].pop("name"))),
                                "its config names no attack", code=1),
    "capabilities edited": Case(on_run(every_row(lambda r: r["config"].__setitem__("capabilities", []), "fgsm")),
                                "but fgsm's are single_step", code=1),
    "capabilities removed, PGD above FGSM": Case(on_run(edit_results(pgd_above_fgsm_without_capabilities)),
                                                 "(pgd>fgsm)", code=1),
    "worst case drops a member": Case(on_run(worst_members(lambda m: m.pop("pgd"))),
                                      "but the rows at its ε are", code=1),
    "worst case invents a member": Case(on_run(worst_members(lambda m: m.__setitem__("apgd", 60))),
                                        "apgd (n=60)", code=1),
    "worst case member n": Case(on_run(worst_members(lambda m: m.__setitem__("pgd", 5))), "pgd (n=5)", code=1),
    # A baseline evaluated differently is not compared.
    "baseline of another n": Case(against_baseline(other_evaluation(lambda r: r.__setitem__("n", 100))),
                                  "not comparable with the baseline", code=1),
    "baseline with more restarts": Case(against_baseline(pgd_config("restarts", 3)), "pgd config.restarts 1 vs 3", code=1),
    "baseline with other steps": Case(against_baseline(pgd_config("steps", 40)), "pgd config.steps 10 vs 40", code=1),
    "baseline with another seed": Case(against_baseline(other_evaluation(lambda r: r.__setitem__("seed", 7))),
                                       "evaluated it differently: seed ", code=1),
    "baseline of other data": Case(against_baseline(other_evaluation(
        lambda r: r.__setitem__("dataset_fingerprint", "other"))), 'dataset_fingerprint', code=1),
    # Two commands, one folder: refused while another process writes it.
    "run into a folder in use": Case(busy(suite(), lambda args: Path(args[args.index("--out") + 1])), "is in use"),
    "gate on a folder in use": Case(busy(on_run(), lambda args: Path(args[1])), "is in use: a run of suite 'tiny'"),
    "report on a folder in use": Case(busy(on_run(command="report"), lambda args: Path(args[1])), "is in use"),
    "baseline folder in use": Case(busy(against_baseline(lambda baseline: None),
                                        lambda args: Path(args[args.index("--baseline") + 1])), "baseline is in use"),
}


# --- workers, resources, files and numbers (tests/hostile_runs.py) ------------------------------
CASES.update({
    # A user model that raises, exits or kills its process: exit 2 naming the model, under every executor.
    "process: model raises": Case(hr.model_run("workermodels:Misbehaves", *hr.PROCESS),
                                  "model 'm' failed on a batch of"),
    "process: model calls sys.exit": Case(hr.model_run("workermodels:Exits", *hr.PROCESS),
                                          "model 'm' called sys.exit(3) in cell"),
    "serial: model calls sys.exit": Case(hr.model_run("workermodels:Exits"), "model 'm' called sys.exit(3) in cell"),
    "process: model calls os._exit": Case(hr.model_run("workermodels:OsExits", *hr.PROCESS),
                                          "died (exit status 3), also when it ran again"),
    "process: model kills its worker": Case(hr.model_run("workermodels:KillsItself", *hr.PROCESS),
                                            "model 'm': the worker process running cell"),
    "serial: model raises a BaseException": Case(hr.model_run("workermodels:Escapes"),
                                                 "model 'm' raised Escape (a BaseException, not an Exception)"),
    "process: model raises a BaseException": Case(hr.model_run("workermodels:Escapes", *hr.PROCESS),
                                                  "model 'm' raised Escape (a BaseException"),
    "process: unpicklable error outside forward": Case(hr.model_run("workermodels:TrainRaises", *hr.PROCESS),
                                                       "model 'm' raised Unpicklable: train and mode (at "),
    "serial: error outside forward": Case(hr.model_run("workermodels:TrainRaises"), "model 'm' raised Unpicklable"),
    "model exits on the probe": Case(hr.model_run("workermodels:ExitsOnProbe"), "user code called sys.exit(3) at"),
    "builder exits": Case(hr.model_run("workermodels:exits_when_built"), "user code called sys.exit(4) at"),
    "module exits on import": Case(hr.model_run("exits_on_import:build"), "user code called sys.exit(5) at"),
    # Absurd resource values, refused before any data is read.
    "threads absurd": Case(hr.suite_run(lambda t: t.replace("seed = 1", "seed = 1\nthreads = 100000")),
                           "threads: Input should be less than or equal to 1024"),
    "seed of 2**64": Case(hr.suite_run(lambda t: t.replace("seed = 1", "seed = 18446744073709551616")),
                          "seed: 18446744073709551616 does not fit in 64 bits"),
    "negative seed": Case(hr.suite_run(lambda t: t.replace("seed = 1", "seed = -1")),
                          "seed: Input should be greater than or equal to 0"),
    "batch size of 2**63": Case(hr.suite_run(lambda t: t.replace("seed = 1", f"seed = 1\neval_batch_size = {2**63}")),
                                "eval_batch_size: 9223372036854775808 does not fit in 64 bits"),
    "--workers absurd": Case(hr.suite_run(lambda t: t, "--executor", "process", "--workers", "100000"),
                             "--workers 100000: give 1 to"),
    # Data the model or ART cannot use, files that are no files, damaged stores and manifests.
    "one class": Case(hr.one_class, "a classifier needs at least 2"),
    "weights a FIFO": Case(hr.weights_at(hr.fifo), "w.safetensors is a FIFO, not a regular file"),
    "weights a symlink loop": Case(hr.weights_at(hr.symlink_loop), "a.pt is a symlink loop"),
    "weights /dev/zero": Case(hr.weights_at(hr.device), "w.pt is a character device, not a regular file"),
    "weights a folder": Case(hr.weights_at(hr.a_folder), "w.safetensors is a folder, not a file"),
    "torchscript a FIFO": Case(hr.weights_at(hr.fifo_script, "torchscript"), "m.ts is a FIFO, not a regular file"),
    "weights under a symlink loop": Case(hr.under_a_loop, "models[0].weights: loop/w.pt: cannot follow this path"),
    "cache_dir a file": Case(hr.cache_is_a_file, "cache_dir: "),
    "damaged store header": Case(hr.damaged_store, "is damaged: its header says schema -1"),
    "generate: damaged manifest": Case(hr.generate_into('{"suite": "tiny", '), "manifest.json is damaged"),
    "generate: manifest not an object": Case(hr.generate_into(hr.manifest_of_another_kind()),
                                             "is not a robustinv manifest"),
    # Files that inflate far beyond their size.
    "IDX holding more than its header": Case(hr.idx_folder((20, 8, 8), 64 << 20),
                                             "holds more than its header promises"),
    "IDX header promising 1.5 G values": Case(hr.idx_folder((23_437_500, 8, 8), 0), "reads at most 268,435,456"),
    "npz member promising 64 G values": Case(hr.npz_promising((10**9, 1, 8, 8)), "'x' of shape (1000000000, 1, 8, 8)"),
    # Reserved labels as a reader sees them, strings where numbers belong, arch_kwargs a zoo model ignores.
    "blank label": Case(suite(lambda t: t.replace('name = "pgd"', 'name = "pgd"\nlabel = " "')), "a blank label"),
    "label 'clean '": Case(suite(lambda t: t.replace('name = "pgd"', 'name = "pgd"\nlabel = "clean "')),
                           "reads as 'clean'"),
    "label 'Worst_Case'": Case(suite(lambda t: t.replace('name = "pgd"', 'name = "pgd"\nlabel = "Worst_Case"')),
                               "reads as 'worst_case'"),
    "eps as a string": Case(suite(lambda t: t.replace("eps = [0.1, 0.3]", 'eps = ["0.1"]', 1)),
                            "attacks[0].eps: expected a number, got a string ('0.1')"),
    "steps as a string": Case(suite(lambda t: t.replace("steps = 5", 'steps = "5"')),
                              "steps: expected a number, got a string"),
    "policy min as a string": Case(on_run(policy='[[rules]]\nmetric = "clean_acc"\nmin = "0.5"\n'),
                                   "rules[0].min: expected a number, got a string ('0.5')"),
    "arch_kwargs on a zoo model": Case(suite(lambda t: t.replace('name = "smallcnn"',
                                                                 'name = "smallcnn"\narch_kwargs = { width = 8 }')),
                                       "arch_kwargs: 'smallcnn' is a registered architecture"),
})

def invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_clear_line(code: int, stdout: str, stderr: str, message: str, expected_code: int = 2) -> None:
    assert code == expected_code, stderr
    assert message in stderr, stderr
    assert "Traceback" not in stdout + stderr
    starts = ("error:", "interrupted") if expected_code != 1 else ("gate FAIL",)
    assert len([line for line in stderr.splitlines() if line.startswith(starts)]) == 1, stderr


def assert_nothing_half_written(out: Path, *, holder: bool = False) -> None:
    """Only the results store's committed cells (what a rerun resumes from) may be left behind by `run`.

    `holder`: another process holds the folder's lock; its lock file is its own.
    """
    left = {p.name for p in out.iterdir()} if out.exists() else set()
    assert left - ({LOCK_NAME} if holder else set()) <= {"cells"}, f"half-written outputs left behind: {sorted(left)}"


def test_the_table_covers_every_class() -> None:
    assert len(CASES) >= 95


# The cases under worker processes or Ray start processes that import torch: `make test-fast` leaves them out.
@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.slow) if case.startswith(("process:", "ray:"))
                                  else case for case in CASES])
def test_hostile_input(tmp_path: Path, case: str, request: pytest.FixtureRequest) -> None:
    spec = CASES[case]
    try:
        args = spec.setup(tmp_path, lambda: request.getfixturevalue("finished_run"))
        run_folder = Path(args[1]) if args[0] in ("gate", "report") else None
        before = snapshot(run_folder) if run_folder is not None else None
        code, stdout, stderr = invoke(args)
        assert_one_clear_line(code, stdout, stderr, spec.message, spec.code)
        assert not (tmp_path / SENTINEL).exists(), "a payload ran"
        if (tmp_path / "keep").exists() or "rmtree" in case:
            assert (tmp_path / "keep").is_dir(), "a payload deleted a folder"
        if run_folder is None:
            assert_nothing_half_written(tmp_path / "out", holder=tmp_path / "out" in HOLDING.held)
        elif spec.code == 2:
            assert snapshot(run_folder) == before, "a refused run folder was changed"
    finally:
        HOLDING.release()


def test_unwritable_output_folder(tmp_path: Path) -> None:
    (tmp_path / "suite.toml").write_text(TINY_SUITE, encoding="utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out"  # a folder cannot be made inside a file, even by root
    code, stdout, stderr = invoke(["run", str(tmp_path / "suite.toml"), "--out", str(out)])
    assert code == 2 and "cannot write results" in stderr and "Traceback" not in stdout + stderr


class _CreatesFile:
    """Unpickling this object would create a file: what a malicious checkpoint does."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.target), "pwned"))  # type: ignore[return-value]


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "created-by-unpickling"
    evil = tmp_path / "model.pt"
    with evil.open("wb") as handle:
        pickle.dump({"weight": _CreatesFile(str(target))}, handle)
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_CreatesFile(str(proof))))
    assert proof.read_text() == "pwned", "the payload is real: plain unpickling creates a file"
    with pytest.raises(ModelError, match="refusing to load .* arbitrary unpickling.*Re-save it"):
        load_state_file(evil)  # a raw pickle; tests/test_models.py covers torch.save's zip format
    assert not target.exists()
    # The same through the CLI: one line, exit 2, no file.
    args = with_weights(lambda path: None, "model.pt")(tmp_path, lambda: tmp_path)
    code, stdout, stderr = invoke(args)
    assert_one_clear_line(code, stdout, stderr, "refusing to load")
    assert_nothing_half_written(tmp_path / "out")
    assert not target.exists()
