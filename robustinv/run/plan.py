"""A suite as a graph of cells: serializable specs, each with a content-hash key and the keys it depends on.

Cells, per (model, defense): `prepare` (train or load it), `train` for each attack that learns
(a generator per ε), `attack` for each suite attack at each ε, the guard's `guard` and
`transfer` cells, and a `worst_case` judgement over all of them. A cell's key hashes everything
that determines its result (data, model fingerprint, attack config with its seed, batch sizes,
device, thread count, library versions), so a stored result is reused exactly when it would be
recomputed identically. What one cell needs from another travels as a stored artifact addressed
by key: a model or generator in the content-keyed cache, adversarial examples in the run store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robustinv.attacks import ATTACKS, Attack, AttackConfig
from robustinv.checkpoints import content_key
from robustinv.training.prepare import ModelIdentity
from robustinv.records import STORED_KINDS, CellKind, model_label
from robustinv.judge.guard_plan import GuardPlan
from robustinv.runtime import derive_seed
from robustinv.suite import Suite


@dataclass(frozen=True)
class ModelRef:
    """One (model entry, defense) of the suite, by position, with the fingerprint the run planned for."""

    entry: int
    name: str
    defense: str
    fingerprint: str
    randomized: bool = False

    @property
    def label(self) -> str:
        return model_label(self.name, self.defense)


@dataclass(frozen=True)
class CellSpec:
    """One unit of work. `attack` and `eps` for attack-like cells; `n` limits it to the first n inputs."""

    key: str
    kind: CellKind
    model: ModelRef
    deps: tuple[str, ...] = ()
    attack: AttackConfig | None = None
    eps: float = 0.0
    n: int | None = None
    seed: int = 0
    grid: bool = False  # keep a sample grid (the attack's largest ε)
    keep_adv: bool = False  # keep the adversarial examples (a transfer cell replays them)
    label: str = ""  # the row's attack name
    surrogate: str = ""  # transfer cells: the label of the model the examples were crafted on

    @property
    def stored(self) -> bool:
        return self.kind in STORED_KINDS

    def describe(self) -> str:
        if self.kind in (CellKind.prepare, CellKind.worst_case):
            return f"{self.kind.value} {self.model.label}"
        return f"{self.kind.value} {self.model.label} {self.label} ε={self.eps:g}"

    def attack_object(self) -> Attack:
        assert self.attack is not None
        return ATTACKS.get(self.attack.name)(self.attack)


@dataclass(frozen=True)
class Plan:
    """Every cell of a run, dependencies before dependents; `models` in suite order."""

    models: tuple[ModelRef, ...]
    cells: tuple[CellSpec, ...]
    guard: GuardPlan | None = None
    by_key: dict[str, CellSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {cell.key: cell for cell in self.cells})

    def stored_keys(self) -> list[str]:
        return [cell.key for cell in self.cells if cell.stored]

    def of_model(self, model: ModelRef, *kinds: CellKind) -> list[CellSpec]:
        return [cell for cell in self.cells if cell.model == model and cell.kind in kinds]


@dataclass(frozen=True)
class KeyBasis:
    """What every cell key of a run hashes besides the cell itself."""

    dataset_fingerprint: str
    n_eval: int
    seed: int
    eval_batch_size: int
    device: str
    threads: int
    versions: dict[str, str]
    n_explain: int  # inputs of each attack cell whose attention is measured

    def key(self, kind: CellKind, model: ModelRef, **cell: Any) -> str:
        return content_key({
            "kind": kind.value, "dataset": self.dataset_fingerprint, "n_eval": self.n_eval, "seed": self.seed,
            "eval_batch_size": self.eval_batch_size, "device": self.device, "threads": self.threads,
            "versions": self.versions, "n_explain": self.n_explain, "model": model.label, "model_fingerprint": model.fingerprint, **cell,
        })


def cell_seed(seed: int, model: str, defense: str, label: str, eps: float) -> int:
    """The seed of an attack cell: the suite seed and the cell's coordinates, never the run order."""
    return derive_seed(seed, model, defense, label, eps)


def build_plan(suite: Suite, identities: list[tuple[int, ModelIdentity]], attacks: list[Attack], basis: KeyBasis,
               guard: GuardPlan | None) -> Plan:
    """The cells of `suite` for its prepared-to-be models (entry index, identity) and built attacks."""
    models = tuple(ModelRef(entry, m.name, m.defense, m.fingerprint, m.randomized) for entry, m in identities)
    planner = _Planner(basis, suite.seed, guard)
    cells: list[CellSpec] = []
    for model in models:
        cells += planner.model_cells(model, attacks)
    for model in models:
        if guard is not None and suite.guard.applies_to(model.defense):
            cells += planner.guard_cells(model, models, suite.guard.transfer)
    for model in models:
        judged = tuple(c.key for c in cells if c.model == model and c.stored)
        cells.append(CellSpec(basis.key(CellKind.worst_case, model, cells=judged), CellKind.worst_case, model, judged))
    return Plan(models, tuple(cells), guard)


@dataclass(frozen=True)
class _Planner:
    basis: KeyBasis
    seed: int
    guard: GuardPlan | None

    def model_cells(self, model: ModelRef, attacks: list[Attack]) -> list[CellSpec]:
        prepare = CellSpec(self.basis.key(CellKind.prepare, model), CellKind.prepare, model)
        cells = [prepare]
        for attack in attacks:
            config = attack.config
            for eps in config.eps:
                deps: tuple[str, ...] = (prepare.key,)
                if attack.learns:
                    train = self._attack_cell(CellKind.train, model, config, eps, deps=deps)
                    cells.append(train)
                    deps = (prepare.key, train.key)
                cells.append(self._attack_cell(CellKind.attack, model, config, eps, deps=deps,
                                               grid=eps == max(config.eps), keep_adv=self._is_reference(config, eps)))
        return cells

    def guard_cells(self, model: ModelRef, models: tuple[ModelRef, ...], transfer: bool) -> list[CellSpec]:
        guard = self.guard
        assert guard is not None
        prepare = self.basis.key(CellKind.prepare, model)
        cells = []
        if guard.strong is not None:
            cells.append(self._attack_cell(CellKind.guard, model, guard.strong, guard.eps, deps=(prepare,), n=guard.n))
        surrogate = _surrogate(model, models) if transfer else None
        if surrogate is not None:
            crafted = self._attack_key(CellKind.attack, surrogate, guard.reference, guard.eps)
            cells.append(CellSpec(
                self.basis.key(CellKind.transfer, model, crafted=crafted), CellKind.transfer, model,
                (prepare, crafted), guard.reference, guard.eps, label=guard.transfer_label, surrogate=surrogate.label,
                seed=self._seed(model, guard.reference, guard.eps),
            ))
        cells.append(self._attack_cell(CellKind.guard, model, guard.unbounded, guard.unbounded.eps[0], deps=(prepare,),
                                       n=guard.n))
        return cells

    def _is_reference(self, config: AttackConfig, eps: float) -> bool:
        guard = self.guard
        return guard is not None and (config.display_name, eps) == (guard.reference.display_name, guard.eps)

    def _seed(self, model: ModelRef, config: AttackConfig, eps: float) -> int:
        return cell_seed(self.seed, model.name, model.defense, config.display_name, eps)

    def _attack_key(self, kind: CellKind, model: ModelRef, config: AttackConfig, eps: float,
                    n: int | None = None) -> str:
        stored_kind = CellKind.attack if kind is CellKind.train else kind
        key = self.basis.key(stored_kind, model, attack=config.display_name,
                             config=config.row_config(eps, self._seed(model, config, eps)), n=n)
        return content_key({"train": key}) if kind is CellKind.train else key

    def _attack_cell(self, kind: CellKind, model: ModelRef, config: AttackConfig, eps: float, *,
                     deps: tuple[str, ...], n: int | None = None, grid: bool = False,
                     keep_adv: bool = False) -> CellSpec:
        return CellSpec(self._attack_key(kind, model, config, eps, n), kind, model, deps, config, eps,
                        n if n is not None else config.n, self._seed(model, config, eps), grid, keep_adv,
                        config.display_name)


def _surrogate(model: ModelRef, models: tuple[ModelRef, ...]) -> ModelRef | None:
    """Where transfer examples come from: the entry's own standard model, else the first other standard one."""
    standard = [m for m in models if m != model and m.defense == "standard"]
    same_entry = [m for m in standard if m.name == model.name]
    candidates = same_entry or standard
    return candidates[0] if candidates else None
