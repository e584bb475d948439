"""Keys that say exactly what determines a result: what changes a cell, a defended model, and what does not."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import TINY_SUITE, write_suite
from robustinv.data import Dataset
from robustinv.records import CellKind
from robustinv.run import run_suite
from robustinv.run.schedule import Progress
from robustinv.store import Store
from robustinv.suite import load_suite
from robustinv.training import AdversarialRecipe, ModelSpec, identify_model


def _counting() -> tuple[Progress, dict[str, list[CellKind]]]:
    seen: dict[str, list[CellKind]] = {"computed": [], "stored": [], "failed": []}
    return Progress(on_cell=lambda spec, how: seen[how].append(spec.kind)), seen


def test_explaining_more_inputs_recomputes_only_the_explain_cells(tmp_path: Path) -> None:
    """Attention is measured in cells of its own: the attack cells of a run with another n_explain are reused."""
    text = TINY_SUITE.replace('name = "tiny"', 'name = "tiny"\nn_explain = 10')
    first = load_suite(write_suite(tmp_path, text))
    second = load_suite(write_suite(tmp_path, text.replace("n_explain = 10", "n_explain = 20"), "more.toml"))
    with Store(tmp_path / "store.db") as store:
        before = run_suite(first, store=store, out_dir=tmp_path / "a")
        progress, seen = _counting()
        after = run_suite(second, store=store, out_dir=tmp_path / "b", progress=progress)
    assert sorted(seen["stored"]) == [CellKind.attack] * 4, "every FGSM and PGD cell came from the first run"
    assert sorted(seen["computed"]) == sorted([CellKind.prepare] + [CellKind.explain] * 4)
    assert after.computed == 0 and after.reused == 4
    for old, new in zip(before.rows, after.rows):
        assert (old.attack, old.eps, old.robust_acc) == (new.attack, new.eps, new.robust_acc)
        assert new.run_id == after.info.run_id, "a reused cell's row names the run that reused it"
    assert any(old.measures["attribution_drift"] != new.measures["attribution_drift"]
               for old, new in zip(before.rows, after.rows) if old.attack != "worst_case")


def test_a_defense_key_holds_only_its_own_hyper_parameters(digits: Dataset, tmp_path: Path) -> None:
    """Changing TRADES' β retrains trades, not pgd_at or consistency_at; changing λ only consistency_at."""
    def fingerprint(defense: str, **recipe: float) -> str:
        spec = ModelSpec(name="smallcnn", defenses=["standard", defense],
                         adversarial=AdversarialRecipe(epochs=1, **recipe))  # type: ignore[arg-type]
        return identify_model(spec, digits, seed=0, device=torch.device("cpu"), cache_dir=tmp_path,
                              defense=defense).fingerprint

    assert fingerprint("pgd_at", trades_beta=6.0) == fingerprint("pgd_at", trades_beta=1.0)
    assert fingerprint("pgd_at", consistency_weight=0.1) == fingerprint("pgd_at", consistency_weight=1.0)
    assert fingerprint("trades", trades_beta=6.0) != fingerprint("trades", trades_beta=1.0)
    assert fingerprint("trades", consistency_weight=0.1) == fingerprint("trades", consistency_weight=1.0)
    assert fingerprint("consistency_at", consistency_weight=0.1) != fingerprint("consistency_at", consistency_weight=1.0)
    assert fingerprint("pgd_at", eps=0.3) != fingerprint("pgd_at", eps=0.1), "the shared recipe still counts"
