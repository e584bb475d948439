"""A suite as a graph of cells: serializable specs, each with a content-hash key and the keys it depends on.

Cells, per (model, defense): `prepare` (train or load it), `train` for each attack that learns
(a generator per ε), `attack` for each suite attack at each ε over a range of the eval inputs,
the guard's `guard` and `transfer` cells, and an `explain` cell per attack cell that measures
where the attack moved the model's attention. A cell's key hashes everything that determines
its result (data, model fingerprint, attack config with its seed, the input range, batch sizes,
device, thread count, library versions) and nothing else: explaining more inputs changes the
explain cells' keys, not the attack cells'. A stored result is reused exactly when it would be
recomputed identically. What one cell needs from another travels as a stored artifact
addressed by key: a model or generator in the content-keyed cache, adversarial examples in the
run store.

Input ranges are a coordinate of attack-like cells: `[start, stop)` of the eval inputs. A plain
run has one range per attack (its first `n` inputs); a sequential run (`batch`) splits every
attack into consecutive ranges of `batch` inputs, looked at one batch after another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robustinv.attacks import ATTACKS, Attack, AttackConfig
from robustinv.checkpoints import content_key
from robustinv.judge.guard_plan import GuardPlan
from robustinv.records import STORED_KINDS, CellKind, model_label
from robustinv.runtime import derive_seed
from robustinv.suite import Suite
from robustinv.training.prepare import ModelIdentity


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
class Inputs:
    """A range `[start, stop)` of the run's eval inputs."""

    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def take(self, *tensors: Any) -> tuple[Any, ...]:
        return tuple(t[self.start:self.stop] for t in tensors)

    def describe(self) -> str:
        return f"[{self.start}, {self.stop})"


@dataclass(frozen=True)
class CellSpec:
    """One unit of work; `attack`, `eps` and `inputs` for attack-like cells (`batch`: its look in a sequential run)."""

    key: str
    kind: CellKind
    model: ModelRef
    deps: tuple[str, ...] = ()
    attack: AttackConfig | None = None
    eps: float = 0.0
    inputs: Inputs = Inputs(0, 0)
    seed: int = 0
    grid: bool = False  # keep a sample grid (the attack's largest ε, the range holding the first inputs)
    label: str = ""  # the row's attack name
    surrogate: str = ""  # transfer cells: the label of the model the examples were crafted on
    batch: int = 0
    explained: int = 0  # explain cells: how many of the attacked inputs get their attention measured

    @property
    def stored(self) -> bool:
        return self.kind in STORED_KINDS

    def describe(self) -> str:
        if self.kind is CellKind.prepare:
            return f"{self.kind.value} {self.model.label}"
        where = f" {self.inputs.describe()}" if self.kind is not CellKind.train else ""
        return f"{self.kind.value} {self.model.label} {self.label} ε={self.eps:g}{where}"

    def attack_object(self) -> Attack:
        assert self.attack is not None
        return ATTACKS.get(self.attack.name)(self.attack)


@dataclass(frozen=True)
class Plan:
    """Every cell of a run, dependencies before dependents; `models` in suite order; `batches` looks."""

    models: tuple[ModelRef, ...]
    cells: tuple[CellSpec, ...]
    guard: GuardPlan | None = None
    batches: int = 1
    by_key: dict[str, CellSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_key", {cell.key: cell for cell in self.cells})

    def stored_keys(self) -> list[str]:
        return [cell.key for cell in self.cells if cell.stored]

    def of_model(self, model: ModelRef, *kinds: CellKind) -> list[CellSpec]:
        return [cell for cell in self.cells if cell.model == model and cell.kind in kinds]

    def up_to(self, batch: int) -> list[CellSpec]:
        """The cells a run needs to have looked at its first `batch + 1` batches."""
        return [cell for cell in self.cells if cell.batch <= batch]


@dataclass(frozen=True)
class KeyBasis:
    """What every cell key of a run hashes besides the cell itself; `shuffled`: inputs in a seeded order."""

    dataset_fingerprint: str
    n_eval: int
    seed: int
    eval_batch_size: int
    device: str
    threads: int
    versions: dict[str, str]
    shuffled: bool = False

    def key(self, kind: CellKind, model: ModelRef, **cell: Any) -> str:
        return content_key({
            "kind": kind.value, "dataset": self.dataset_fingerprint, "n_eval": self.n_eval, "seed": self.seed,
            "shuffled": self.shuffled, "eval_batch_size": self.eval_batch_size, "device": self.device,
            "threads": self.threads, "versions": self.versions, "model": model.label,
            "model_fingerprint": model.fingerprint, **cell,
        })


def cell_seed(seed: int, model: str, defense: str, label: str, eps: float, inputs: Inputs | None = None) -> int:
    """The seed of a cell: the suite seed and the cell's coordinates, never the run order.

    Every job derives its seeds here: `generate` finds the generator `run` trained (no range), an
    attack over a part of its inputs adds the range.
    """
    if inputs is None:
        return derive_seed(seed, model, defense, label, eps)
    return derive_seed(seed, model, defense, label, eps, inputs.start, inputs.stop)


def build_plan(suite: Suite, identities: list[tuple[int, ModelIdentity]], attacks: list[Attack], basis: KeyBasis,
               guard: GuardPlan | None, *, batch: int | None = None) -> Plan:
    """The cells of `suite` for its prepared-to-be models (entry index, identity) and built attacks.

    With `batch`, every attack-like cell is split into ranges of `batch` inputs (a sequential run);
    its explain cells are left out (attention is measured on whole attacks only).
    """
    models = tuple(ModelRef(entry, m.name, m.defense, m.fingerprint, m.randomized) for entry, m in identities)
    planner = _Planner(basis, suite.seed, guard, batch)
    cells: list[CellSpec] = []
    for model in models:
        cells += planner.model_cells(model, attacks)
    for model in models:
        if guard is not None and suite.guard.applies_to(model.defense):
            cells += planner.guard_cells(model, models, suite.guard.transfer)
    explained = 0 if batch is not None else suite.explained
    if explained:
        cells += [planner.explain_cell(cell, explained) for cell in list(cells)
                  if cell.kind in (CellKind.attack, CellKind.guard, CellKind.transfer)]
    batches = max((cell.batch for cell in cells), default=0) + 1
    return Plan(models, tuple(cells), guard, batches)


@dataclass(frozen=True)
class _Planner:
    basis: KeyBasis
    seed: int
    guard: GuardPlan | None
    batch: int | None

    def ranges(self, extent: int) -> list[tuple[int, Inputs]]:
        """(look, range) pairs covering the first `extent` inputs: one range, or one per batch."""
        if self.batch is None:
            return [(0, Inputs(0, extent))]
        return [(start // self.batch, Inputs(start, min(start + self.batch, extent)))
                for start in range(0, extent, self.batch)]

    def extent(self, config: AttackConfig) -> int:
        return min(config.n or self.basis.n_eval, self.basis.n_eval)

    def model_cells(self, model: ModelRef, attacks: list[Attack]) -> list[CellSpec]:
        prepare = CellSpec(self.basis.key(CellKind.prepare, model), CellKind.prepare, model)
        cells = [prepare]
        for attack in attacks:
            config = attack.config
            for eps in config.eps:
                deps: tuple[str, ...] = (prepare.key,)
                if attack.learns:
                    seed = cell_seed(self.seed, model.name, model.defense, config.display_name, eps)
                    key = content_key({"train": self.basis.key(CellKind.train, model, attack=config.display_name,
                                                               config=config.row_config(eps, seed))})
                    cells.append(CellSpec(key, CellKind.train, model, deps, config, eps, seed=seed,
                                          label=config.display_name))
                    deps = (prepare.key, key)
                cells += self._attack_cells(CellKind.attack, model, config, eps, self.extent(config), deps=deps,
                                            grid=eps == max(config.eps))
        return cells

    def guard_cells(self, model: ModelRef, models: tuple[ModelRef, ...], transfer: bool) -> list[CellSpec]:
        guard = self.guard
        assert guard is not None
        prepare = self.basis.key(CellKind.prepare, model)
        cells = []
        if guard.strong is not None:
            cells += self._attack_cells(CellKind.guard, model, guard.strong, guard.eps, guard.n, deps=(prepare,))
        surrogate = _surrogate(model, models) if transfer else None
        if surrogate is not None:
            extent = self.extent(guard.reference)
            for look, inputs in self.ranges(extent):
                crafted = self._attack_key(CellKind.attack, surrogate, guard.reference, guard.eps, inputs, extent)
                cells.append(CellSpec(
                    self.basis.key(CellKind.transfer, model, crafted=crafted), CellKind.transfer, model,
                    (prepare, crafted), guard.reference, guard.eps, inputs,
                    self._seed(model, guard.reference, guard.eps, inputs, extent), label=guard.transfer_label,
                    surrogate=surrogate.label, batch=look,
                ))
        cells += self._attack_cells(CellKind.guard, model, guard.unbounded, guard.unbounded.eps[0], guard.n,
                                    deps=(prepare,))
        return cells

    def explain_cell(self, attacked: CellSpec, explained: int) -> CellSpec:
        prepare = self.basis.key(CellKind.prepare, attacked.model)
        key = self.basis.key(CellKind.explain, attacked.model, attacked=attacked.key, explained=explained)
        return CellSpec(key, CellKind.explain, attacked.model, (prepare, attacked.key), attacked.attack, attacked.eps,
                        attacked.inputs, attacked.seed, attacked.grid, attacked.label, batch=attacked.batch,
                        explained=explained)

    def _seed(self, model: ModelRef, config: AttackConfig, eps: float, inputs: Inputs, extent: int) -> int:
        """The attack's seed over all its inputs (`extent`); a part of them adds its range."""
        whole = inputs == Inputs(0, extent)
        return cell_seed(self.seed, model.name, model.defense, config.display_name, eps, None if whole else inputs)

    def _attack_key(self, kind: CellKind, model: ModelRef, config: AttackConfig, eps: float, inputs: Inputs,
                    extent: int) -> str:
        return self.basis.key(kind, model, attack=config.display_name,
                              config=config.row_config(eps, self._seed(model, config, eps, inputs, extent)),
                              inputs=[inputs.start, inputs.stop])

    def _attack_cells(self, kind: CellKind, model: ModelRef, config: AttackConfig, eps: float, extent: int, *,
                      deps: tuple[str, ...], grid: bool = False) -> list[CellSpec]:
        extent = min(extent, self.extent(config))
        return [
            CellSpec(self._attack_key(kind, model, config, eps, inputs, extent), kind, model, deps, config, eps,
                     inputs, self._seed(model, config, eps, inputs, extent), grid and inputs.start == 0,
                     config.display_name, batch=look)
            for look, inputs in self.ranges(extent)
        ]


def _surrogate(model: ModelRef, models: tuple[ModelRef, ...]) -> ModelRef | None:
    """Where transfer examples come from: the entry's own standard model, else the first other standard one."""
    standard = [m for m in models if m != model and m.defense == "standard"]
    same_entry = [m for m in standard if m.name == model.name]
    candidates = same_entry or standard
    return candidates[0] if candidates else None
