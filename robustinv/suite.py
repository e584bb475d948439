"""Suites: a TOML file validated into a typed `Suite`, with errors that name file, key and problem."""

from __future__ import annotations

from enum import Enum
from collections.abc import Collection
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from robustinv import tomlfile
from robustinv.checkpoints import content_key
from robustinv.config import Config
from robustinv.attacks import ATTACKS, AttackConfig
from robustinv.data.spec import DatasetSpec
from robustinv.errors import RobustinvError, UnknownNameError
from robustinv.judge.guard import GuardConfig
from robustinv.training.spec import ModelSpec
from robustinv.paths import folder_problem, resolve_path
from robustinv.records import reserved_label_problem
from robustinv.tomlfile import read_toml
from robustinv.training.recipe import AdversarialRecipe, TrainRecipe


class SuiteError(RobustinvError):
    """A suite file that cannot be read or does not validate."""


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


MAX_THREADS = 1024  # torch threads per cell; far more makes OpenMP fail to start its threads (a crash, no message)
MAX_SEED = 2**63 - 1  # seeds are non-negative 64-bit integers

DEFAULT_EXPLAINED = 100  # inputs per attack cell whose attention is measured, unless a suite says otherwise


class Suite(Config):
    """A declarative benchmark: one dataset, models (with their defenses), attacks with their ε grids, a seed."""

    name: str = Field(min_length=1)
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seeds everything; what torch, NumPy and the store hold")
    device: Device = Device.auto
    eval_batch_size: int = Field(512, ge=1)
    threads: int = Field(1, ge=1, le=MAX_THREADS,
                         description="torch threads per cell; part of every result's key (see kernel_profile)")
    executor: str = Field("serial", min_length=1, description="where cells run: serial, process or ray "
                          "(--executor overrides); checked where the run starts, with the other executors listed")
    n_explain: int | None = Field(None, ge=0, description=f"inputs per attack cell whose attention is measured "
                                  f"(0: none; {DEFAULT_EXPLAINED} or all of them when omitted)")
    cache_dir: Path | None = None
    dataset: DatasetSpec
    models: list[ModelSpec] = Field(min_length=1)
    attacks: list[SerializeAsAny[AttackConfig]] = Field(min_length=1)
    guard: GuardConfig = Field(default_factory=GuardConfig)

    _resolve = field_validator("cache_dir")(resolve_path)

    @field_validator("cache_dir")
    @classmethod
    def _cache_is_a_folder(cls, path: Path | None) -> Path | None:
        problem = None if path is None else folder_problem(path)
        if problem is not None:
            raise ValueError(problem)
        return path

    @property
    def explained(self) -> int:
        """How many of an attack cell's inputs get their attention measured (at most all of them)."""
        return DEFAULT_EXPLAINED if self.n_explain is None else self.n_explain

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        for kind, names in (("model", [m.name for m in self.models]),
                            ("attack", [a.display_name for a in self.attacks])):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                hint = " (give each a distinct 'label')" if kind == "attack" else ""
                raise ValueError(f"{kind} names repeat: {', '.join(repeated)}{hint}")
        for attack in self.attacks:
            problem = reserved_label_problem(attack.display_name)
            if problem is not None:
                raise ValueError(f"attack {attack.display_name!r}: {problem}; give it another 'label'")
        if self.n_explain is not None and self.dataset.n_eval is not None and self.n_explain > self.dataset.n_eval:
            raise ValueError(f"n_explain ({self.n_explain}) exceeds dataset.n_eval ({self.dataset.n_eval}): "
                             "attention is measured on a subset of the evaluated inputs")
        for model in self.models:
            if "[" in model.name or "]" in model.name:
                raise ValueError(f"model name {model.name!r}: square brackets are reserved for "
                                 "`name[defense]`, how robustinv names a defended reference")
        return self


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file; relative paths in it resolve against its folder."""
    return parse_suite(read_toml(path, SuiteError, "suite"), source=path)


def parse_suite(data: dict[str, Any], *, source: Path | None = None) -> Suite:
    """Validate suite data; each `[[attacks]]` entry is checked against its own attack's config."""
    where = str(source) if source is not None else "<suite>"
    context = {"base_dir": source.resolve().parent if source is not None else None}
    attacks = data.get("attacks")
    if isinstance(attacks, list):
        data = {**data, "attacks": [_parse_attack(entry, i, where, context) for i, entry in enumerate(attacks)]}
    try:
        return Suite.model_validate(data, context=context)
    except ValidationError as exc:
        raise SuiteError(format_validation_error(where, exc)) from None


def _parse_attack(entry: Any, index: int, where: str, context: dict[str, Any]) -> Any:
    if not isinstance(entry, dict):
        return entry  # Suite validation reports the wrong type with its location
    if "name" not in entry:
        raise SuiteError(f"{where}: attacks[{index}].name: missing key (one of {', '.join(ATTACKS.names())})")
    try:
        config_type = ATTACKS.get(str(entry["name"])).config_type
    except UnknownNameError as exc:
        raise SuiteError(f"{where}: attacks[{index}].name: {exc}") from None
    try:
        return config_type.model_validate(entry, context=context)
    except ValidationError as exc:
        raise SuiteError(format_validation_error(where, exc, prefix=("attacks", index))) from None


def _known_keys() -> set[str]:
    models: list[type[BaseModel]] = [Suite, DatasetSpec, ModelSpec, TrainRecipe, AdversarialRecipe, GuardConfig]
    models += [ATTACKS.get(name).config_type for name in ATTACKS.names()]
    return {key for model in models for key in model.model_fields}


def format_validation_error(
    where: str, exc: ValidationError, prefix: tuple[Any, ...] = (), known_keys: Collection[str] | None = None
) -> str:
    """`robustinv.tomlfile.format_validation_error` with every suite key (by default) to suggest from."""
    return tomlfile.format_validation_error(where, exc, prefix, known_keys or _known_keys())


def suite_key(suite: Suite) -> str:
    """The content key of what the suite computes: its resolved form, less where it runs (the executor)."""
    return content_key({"suite": tomli_w.dumps(suite.model_dump(mode="json", exclude_none=True, exclude={"executor"}))})


def dump_suite(suite: Suite) -> str:
    """The resolved suite (defaults filled, paths absolute) as TOML."""
    return tomli_w.dumps(suite.model_dump(mode="json", exclude_none=True))
