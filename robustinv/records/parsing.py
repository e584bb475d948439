"""Strict parsing of a stored result row: every value checked, nothing trusted from a file."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from robustinv.records.columns import Column, declared
from robustinv.records.rows import COLUMNS, WORST_CASE, ResultRow


class RecordError(ValueError):
    """A stored record that does not hold what its type says: a wrong type, a value out of range, a bad key."""


_REQUIRED = frozenset({"eps", "clean_acc", "robust_acc"})  # never NaN in a real row


def row_from_dict(record: Any, schema: Mapping[str, Column] | None = None) -> ResultRow:
    """A row from its JSON form, every value checked; null numbers (JSON has no NaN) become NaN.

    Refuses (RecordError, naming the column) an unknown or missing column, a value of the wrong
    type (a boolean or a string where a number belongs), and a number outside its declared range
    (`robustinv.records.columns`; `schema` holds the measures' declarations, a column declared
    nowhere takes any finite number): an accuracy outside [0, 1], an infinite value, a
    non-positive ε. The Wilson interval columns are derived from the row, so they are
    recomputed rather than trusted.
    """
    if not isinstance(record, dict):
        raise RecordError(f"a result row must be an object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(COLUMNS))
    if unknown:
        raise RecordError(f"{unknown[0]}: unknown column")
    values: dict[str, Any] = {}
    for f in fields(ResultRow):
        if f.name not in record:
            if f.default_factory is not MISSING:  # a column added since the row was written
                continue
            raise RecordError(f"{f.name}: missing")
        values[f.name] = _checked_value(f.name, str(f.type), record[f.name], schema or {})
    _check_config(values["config"], worst_case=values["attack"] == WORST_CASE)
    return ResultRow(**values)


class _Shape(BaseModel):
    """The parts of a row's free-form config that robustinv itself reads back (other keys pass through)."""

    model_config = ConfigDict(extra="allow", strict=True)


class _ReferenceCheck(_Shape):
    check: str
    message: str


class _Diagnostics(_Shape):
    checks: list[_ReferenceCheck] = []
    log: dict[str, float] = {}
    zero_gradient_share: float = Field(0.0, ge=0, le=1)


class _LogEntry(_Shape):
    attack: str
    newly_broken: int = Field(ge=0)
    unique: int = Field(ge=0)
    robust_acc: float = Field(ge=0, le=1)
    attack_acc: float = Field(ge=0, le=1)


class _RowConfig(_Shape):
    name: str | None = None
    capabilities: list[str] = []
    error: str | None = None
    diagnostics: _Diagnostics | None = None


class _WorstCaseConfig(_RowConfig):
    attacks: dict[str, int]
    log: list[_LogEntry] = []
    findings: list[str] = []
    notes: list[str] = []


def _check_config(config: dict[str, Any], *, worst_case: bool) -> None:
    try:
        (_WorstCaseConfig if worst_case else _RowConfig).model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RecordError(f"config.{where}: {first['msg']}") from None


def _checked_value(name: str, kind: str, value: Any, schema: Mapping[str, Column]) -> Any:
    def wrong(expected: str) -> RecordError:
        return RecordError(f"{name}: expected {expected}, got {_shown(value)}")

    if kind == "str":
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        problem = declared(schema, name).problem(float(value))
        if problem is not None:
            raise RecordError(f"{name}: {problem}")
        return value
    if kind == "float":
        if value is None and name not in _REQUIRED:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        number = float(value)
        if math.isnan(number) and name not in _REQUIRED:
            return number
        if math.isnan(number):
            raise RecordError(f"{name}: nan is not a finite number")
        problem = declared(schema, name).problem(number)
        if problem is None and name == "eps" and number == 0:
            problem = "0 is not a positive ε"
        if problem is not None:
            raise RecordError(f"{name}: {problem}")
        return number
    if kind == "tuple[str, ...]":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        return tuple(value)
    if kind == "dict[str, float]":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise wrong("an object")
        checked = {}
        for key, number in value.items():
            try:
                checked[key] = _checked_value(key, "float", number, schema)
            except RecordError as exc:
                raise RecordError(f"{name}.{exc}") from None
        return checked
    if kind == "dict[str, Any]":
        if not isinstance(value, dict):
            raise wrong("an object")
        return value
    raise AssertionError(f"ResultRow.{name}: no check for type {kind}")  # pragma: no cover


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
