"""Fuzzing what users and editors hand robustinv: npz arrays, run files, baseline folders and cell artifacts.

Whatever they hold, the answer is a valid record or one clear RobustinvError, never another
exception; and a run file that loads passes through the gate without one either.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sqlite3
from contextlib import ExitStack, closing
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save as save_tensors

from robustinv.commands.gate import load_baseline
from robustinv.data import load_dataset
from robustinv.errors import DataError, RobustinvError
from robustinv.gating import Policy, Rule, gate_run
from robustinv.records import (
    CellKind, CellResult, GateLevel, GateVerdict, RecordError, ResultRow, RuleOutcome, RunInfo, RunResult, SampleGrid,
    rows_digest,
)
from robustinv.report import report_files
from robustinv.report import attention_plots, plots
from robustinv.report.rundir import GATE_JSON, RESULTS_JSON, SAMPLES_JSON, SAMPLES_TENSORS, parse_run, record_files
from robustinv.store import RunStatus, Store

# --- npz arrays ----------------------------------------------------------------------------------

DTYPES = [np.uint8, np.float32, np.float64, np.int64, np.int8, np.bool_, np.float16]


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=5)))
    dtype = draw(st.sampled_from(DTYPES))
    values = draw(st.sampled_from(["unit", "wide", "special"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    data = rng.random(shape) if values == "unit" else rng.normal(0, 300, shape)
    if values == "special" and data.size:
        data.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1.0]))
    with np.errstate(invalid="ignore", over="ignore"):
        return data.astype(dtype)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["x", "y", "x_test", "y_test", "other"]), arrays(), max_size=5))
def test_any_npz_loads_as_a_valid_dataset_or_raises_a_data_error(tmp_path: Path, contents: dict[str, np.ndarray]) -> None:
    path = tmp_path / "fuzz.npz"
    np.savez(path, **contents)
    try:
        dataset = load_dataset("npz", path, download=False)
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test)):
        assert x.ndim == 4 and min(x.shape) > 0 and x.dtype == torch.float32
        assert bool(torch.isfinite(x).all()) and 0 <= float(x.min()) and float(x.max()) <= 1
        assert int(y.min()) >= 0 and int(y.max()) < dataset.num_classes


# --- run files -----------------------------------------------------------------------------------

ROW = ResultRow(
    run_id="r1", dataset="digits", model="net", defense="standard", attack="pgd", norm="linf", eps=0.3, n=4,
    clean_acc=0.75, robust_acc=0.25, success_rate=2 / 3, mean_linf=0.3, max_linf=0.3, mean_l2=1.5, max_l2=1.75,
    seconds=0.5, samples_per_s=8.0, train_seconds=0.0, samples_per_input=1, candidate_success=2 / 3,
    diversity_cos=math.nan, diversity_l2=math.nan, target_success=math.nan, feature_consistency=0.875, flags=(),
    config={"name": "pgd", "eps": 0.3, "seed": 7}, seed=7, model_fingerprint="abc", dataset_fingerprint="def",
    model_source="trained", model_train_seconds=1.5,
)
AUTOATTACK = replace(ROW, attack="autoattack", robust_acc=0.25, config={
    "name": "autoattack", "eps": 0.3, "seed": 7,
    "diagnostics": {"checks": [{"check": "check_n_classes", "message": "m"}], "log": {"clean": 0.75, "apgd-ce": 0.25},
                    "zero_gradient_share": 0.0},
})
WORST = replace(ROW, attack="worst_case", config={
    "name": "worst_case", "attacks": {"pgd": 4, "autoattack": 4},
    "log": [{"attack": "pgd", "newly_broken": 2, "unique": 0, "robust_acc": 0.25, "attack_acc": 0.25},
            {"attack": "autoattack", "newly_broken": 0, "unique": 0, "robust_acc": 0.25, "attack_acc": 0.25}],
    "findings": [], "notes": ["pgd not converged"],
})
GRID = SampleGrid("net", "standard", "pgd", 0.3, (1, 2), ((1, 3),), ((0.5, 0.9),), np.zeros((1, 2, 1, 2, 2), np.uint8))
VERDICT = GateVerdict("p.toml", None, (RuleOutcome("robust_acc >= 0.2", GateLevel.fail, True, 0.25, ">= 0.2", "ok", 2),))
INFO = RunInfo("r1", "tiny", 0, "cpu", "2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00", "digits", "def", 4,
               {"torch": "2"})
FILES = record_files(RunResult(INFO, [ROW, AUTOATTACK, WORST], grids=[GRID]), 'name = "tiny"\n', VERDICT)
POLICY = Policy(rules=[Rule(metric="robust_acc", min=0.2), Rule(metric="clean_acc", max_drop=1.0)])

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=6))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=6), inner, max_size=3), max_leaves=6)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document: keys of objects, indices of lists."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def edited(draw: st.DrawFn, name: str) -> bytes:
    """The file `name` of a real run with one place replaced by any JSON value, or deleted."""
    document = json.loads(FILES[name])
    where = draw(st.sampled_from(paths(document)))
    changed = copy.deepcopy(document)
    if not where:
        return json.dumps(draw(json_value)).encode()
    parent = changed
    for part in where[:-1]:
        parent = parent[part]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = draw(json_value)
    return json.dumps(changed).encode()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([RESULTS_JSON, SAMPLES_JSON, GATE_JSON]).flatmap(lambda name: st.tuples(st.just(name), edited(name))))
def test_an_edited_run_file_loads_checked_or_raises_one_clear_error(edit: tuple[str, bytes]) -> None:
    name, data = edit
    try:
        run = parse_run({**FILES, name: data}, Path("run"))
    except RobustinvError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("run/")
        return
    for row in run.rows:  # what loaded holds what its types say
        assert 0 <= row.clean_acc <= 1 and 0 <= row.robust_acc <= 1 and row.n >= 1 and math.isfinite(row.eps)
        assert isinstance(row.flags, tuple) and isinstance(row.config, dict)
    verdict = gate_run(POLICY, run.rows, policy_name="p.toml", baseline=[ROW, WORST], baseline_name="base")
    assert len(verdict.outcomes) == 2


REPLACEMENTS: list[Any] = [None, True, -1.5, 7, "x", [], {}, [1], {"a": 1}]


@pytest.mark.slow
@pytest.mark.parametrize("name", [RESULTS_JSON, SAMPLES_JSON, GATE_JSON])
def test_every_place_of_every_run_file_with_any_value_loads_checked_or_raises_one_clear_error(
    name: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exhaustive companion of the fuzz test: every place of every JSON run file, every kind of value.

    The report's figures are drawn from each variant but not rasterized to PNG: rasterizing about
    700 figures is matplotlib's work (90% of this test's time), not a check of the renderers.
    """
    for module in (plots, attention_plots):
        monkeypatch.setattr(module, "png_bytes", lambda fig: b"\x89PNG")
    document = json.loads(FILES[name])
    for where in paths(document)[1:]:
        for value in [*REPLACEMENTS, "delete"]:
            changed = copy.deepcopy(document)
            parent = changed
            for part in where[:-1]:
                parent = parent[part]
            if value == "delete":
                if not isinstance(parent, dict):
                    continue
                del parent[where[-1]]
            else:
                parent[where[-1]] = value
            try:
                run = parse_run({**FILES, name: json.dumps(changed).encode()}, Path("run"))
            except RobustinvError as exc:
                assert "\n" not in str(exc), (name, where, value)
                continue
            gate_run(POLICY, run.rows, policy_name="p.toml", baseline=[ROW, WORST], baseline_name="base")
            report_files(run, rendered_at="now")  # every renderer reads what loaded without an exception


def safetensors_bytes(dtype: str, shape: tuple[int, ...], itemsize: int) -> bytes:
    """A one-tensor safetensors file `grid0` of any dtype by name, also those numpy has none for (BF16)."""
    size = itemsize * math.prod(shape)
    header = json.dumps({"grid0": {"dtype": dtype, "shape": list(shape), "data_offsets": [0, size]}}).encode()
    return len(header).to_bytes(8, "little") + header + bytes(size)


@pytest.mark.parametrize(("dtype", "itemsize", "shape"), [
    ("U8", 1, (1, 2, 1, 2, 2)), ("F32", 4, (1, 2, 1, 2, 2)), ("BOOL", 1, (1, 2, 1, 2, 2)), ("BF16", 2, (1, 2, 1, 2, 2)),
    ("F8_E4M3", 1, (1, 2, 1, 2, 2)), ("U8", 1, (2, 1, 2, 2)), ("U8", 1, (2, 2, 1, 2, 2)),
])
def test_sample_images_of_any_dtype_and_shape_load_checked_or_raise_one_clear_error(
    dtype: str, itemsize: int, shape: tuple[int, ...],
) -> None:
    images = safetensors_bytes(dtype, shape, itemsize)
    try:
        run = parse_run({**FILES, SAMPLES_TENSORS: images}, Path("run"))
    except RobustinvError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("run/")
        assert (dtype, shape) != ("U8", (1, 2, 1, 2, 2))
        return
    assert (dtype, shape) == ("U8", (1, 2, 1, 2, 2))
    grid = run.grids[0]
    assert isinstance(grid.images, np.ndarray) and grid.images.dtype == np.uint8 and grid.images.shape == shape
    report_files(run, rendered_at="now")


def test_a_sample_grid_takes_only_a_uint8_array_of_five_dimensions() -> None:
    meta = json.loads(json.dumps(GRID.meta()))  # its JSON form: lists, not tuples
    assert SampleGrid.from_meta(meta, np.zeros((1, 2, 1, 2, 2), np.uint8)).images.shape == (1, 2, 1, 2, 2)
    for images in (np.zeros((1, 2, 1, 2, 2), np.float32), np.zeros((2, 1, 2, 2), np.uint8), [[0]]):
        with pytest.raises(RecordError, match="uint8 array"):
            SampleGrid.from_meta(meta, images)  # type: ignore[arg-type]


def _forgeries() -> list[tuple[str, str, Any]]:
    """Per column of a result row: deleted, of the wrong type, and (for numbers) out of its range."""
    out_of_range = {"int": -1, "float": -1.0}
    cases: list[tuple[str, str, Any]] = []
    for f in fields(ResultRow):
        kind = str(f.type)
        if f.default_factory is MISSING:  # a column with a default (`measures`) may be absent from older runs
            cases.append((f.name, "missing", "delete"))
        cases.append((f.name, "wrong type", 7 if kind == "str" else [] if kind.startswith("dict[") else "x"))
        if kind == "dict[str, float]":
            cases.append((f.name, "out of range", {"m": "x"}))
        if kind in out_of_range:
            cosine = f.name in ("diversity_cos", "feature_consistency")
            cases.append((f.name, "out of range", 1.5 if f.name.endswith(("_acc", "_rate", "_success")) else
                          -2.0 if cosine else out_of_range[kind]))
    return cases


@pytest.mark.parametrize(("column", "forgery", "value"), _forgeries())
def test_a_forged_column_never_passes_the_gate(column: str, forgery: str, value: Any) -> None:
    document = json.loads(FILES[RESULTS_JSON])
    row = document["results"][0]
    if value == "delete":
        del row[column]
    else:
        row[column] = value
    try:
        run = parse_run({**FILES, RESULTS_JSON: json.dumps(document).encode()}, Path("run"))
    except RobustinvError as exc:
        assert column in str(exc)
        return
    verdict = gate_run(POLICY, run.rows, policy_name="p.toml", baseline=[ROW, AUTOATTACK, WORST], baseline_name="b")
    assert not verdict.passed, f"{forgery} {column} = {value!r} passed the gate"


# --- cell artifacts --------------------------------------------------------------------------------

CELL_ROW = replace(ROW, n=4)
CELL = CellResult(CELL_ROW, np.array([True, False, True, True]), x_adv=np.zeros((4, 1, 2, 2), np.float32))


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    """The artifact's bytes cut, flipped, grown, or replaced by another valid safetensors file of any arrays."""
    how = draw(st.sampled_from(["cut", "flip", "grow", "arrays"]))
    if how == "cut":
        return original[: draw(st.integers(0, len(original) - 1))]
    if how == "flip":
        at = draw(st.integers(0, len(original) - 1))
        return original[:at] + bytes([original[at] ^ draw(st.integers(1, 255))]) + original[at + 1:]
    if how == "grow":
        return original + draw(st.binary(min_size=1, max_size=16))
    names = st.sampled_from(["robust", "x_adv", "grid_images", "other"])
    return save_tensors(draw(st.dictionaries(names, arrays().map(np.ascontiguousarray), min_size=1, max_size=3)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), restamped=st.booleans())
def test_a_damaged_cell_artifact_is_computed_again_never_trusted_or_crashing(
    tmp_path: Path, data: st.DataObject, restamped: bool,
) -> None:
    """Whatever the artifact holds, the cell loads as committed or not at all; `restamped`: its digest rewritten too."""
    with Store(tmp_path / "s.db") as store:
        run, _ = store.open_run(run_id="r1", suite="tiny", suite_key="k", out_dir=tmp_path / "out", started="t")
        store.commit_cell(run.run_id, "k", CellKind.attack, CELL)
        artifact = tmp_path / "out" / "cells" / "k.safetensors"
        original = artifact.read_bytes()
        changed = data.draw(damaged(original))
        artifact.write_bytes(changed)
        if restamped:  # as if the store's row had been rewritten to match: only the shape checks stand
            with closing(sqlite3.connect(store.path)) as db, db:
                db.execute("UPDATE cells SET artifact_digest = ?", (hashlib.sha256(changed).hexdigest(),))
        loaded = store.load_cell("r1", "k")
    if loaded is None:
        return
    assert restamped or changed == original, "a changed artifact was reused"
    assert loaded.robust.dtype == np.bool_ and loaded.robust.shape == (CELL_ROW.n,)
    assert loaded.x_adv is None or (loaded.x_adv.dtype == np.float32 and len(loaded.x_adv) == CELL_ROW.n)


# --- baseline folders ------------------------------------------------------------------------------

def baseline_folder(root: Path, results: bytes) -> Path:
    folder = root / "baseline"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in {**FILES, RESULTS_JSON: results}.items():
        (folder / name).write_bytes(content)
    return folder


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(results=edited(RESULTS_JSON), known=st.booleans())
def test_an_edited_baseline_is_refused_or_verified_or_said_unverified(tmp_path: Path, results: bytes,
                                                                       known: bool) -> None:
    """A baseline folder is read strictly, checked against a store that recorded it, and gated without a crash."""
    folder = baseline_folder(tmp_path / ("known" if known else "unknown"), results)
    store_path = folder.parent / "s.db"
    original = parse_run(FILES, folder).rows
    if known and not store_path.exists():
        with Store(store_path) as store:
            store.open_run(run_id="r1", suite="tiny", suite_key="k", out_dir=folder, started="t")
            store.finish_run("r1", RunStatus.finished, results_digest=rows_digest(original))
    with ExitStack() as stack:
        opened = stack.enter_context(Store(store_path)) if known else None
        try:
            found = load_baseline(str(folder), opened, store_path, suite="tiny", judged_dir=tmp_path / "judged",
                                  judged_run="judged")
        except RobustinvError as exc:
            assert "\n" not in str(exc)
            return
    assert found is not None
    if known:
        assert found.provenance.verified and rows_digest(found.rows) == rows_digest(original), "an edit got through"
    else:
        assert not found.provenance.verified
    verdict = gate_run(POLICY, [replace(r, run_id="judged") for r in original], policy_name="p", baseline=found.rows,
                       baseline_name="b", provenance=(found.provenance,))
    assert len(verdict.outcomes) == 2 and verdict.verified == known
