"""The base of every typed configuration read from a file: suites, recipes, attacks, gate policies.

Unknown keys are refused and values are frozen. Numbers are strict: TOML has real numbers,
booleans and strings, and pydantic's lax mode converts between them wherever a number is
expected (`eps = [true]` would be ε = 1, `min = "0.5"` a bound of 0.5). A boolean or a string
is accepted only by a field that declares one. An integer must fit in 64 bits (what torch,
NumPy and SQLite can hold: `seed = 18446744073709551616` would overflow deep inside a run) and a
float must be finite (`nan` and `inf` are TOML numbers too).
"""

from __future__ import annotations

import math
import types
import typing
from enum import Enum
from pathlib import PurePath
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

INT64 = (-(2**63), 2**63 - 1)
_CONTAINERS = (list, tuple, set, frozenset)


def _arms(annotation: Any) -> list[Any]:
    """The types a bare value of `annotation` may take (the arms of a union; containers excluded)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _arms(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [arm for member in typing.get_args(annotation) for arm in _arms(member)]
    if origin in (*_CONTAINERS, dict):
        return []
    return [annotation]


def _item_arms(annotation: Any) -> list[Any]:
    """The types an item of a list or tuple (or a value of a table) of `annotation` may take."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _item_arms(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [arm for member in typing.get_args(annotation) for arm in _item_arms(member)]
    if origin in _CONTAINERS:
        return [arm for member in typing.get_args(annotation) if member is not Ellipsis for arm in _arms(member)]
    if origin is dict:
        return _arms(typing.get_args(annotation)[1])
    return []


def _takes(arm: Any, kind: type) -> bool:
    """Whether a field arm declares values of `kind` (a boolean or a string) itself."""
    if arm is Any:
        return True
    if typing.get_origin(arm) is typing.Literal:
        return any(isinstance(choice, kind) for choice in typing.get_args(arm))
    if not isinstance(arm, type):
        return False
    if kind is bool:
        return arm is bool
    return issubclass(arm, (str, PurePath, Enum))


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number_problem(value: Any, arms: list[Any]) -> str | None:
    """Why `value` is no number for a field whose arms want one; None when it is fine."""
    wants_int = int in arms
    if not (wants_int or float in arms):
        return None
    if isinstance(value, bool):
        return None if any(_takes(arm, bool) for arm in arms) else "expected a number, got a boolean"
    if isinstance(value, str):  # text that reads as a number would be converted; other text pydantic refuses itself
        if any(_takes(arm, str) for arm in arms) or not _reads_as_number(value):
            return None
        return f"expected a number, got a string ({value!r})"
    if wants_int and isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        return f"{value} does not fit in 64 bits (integers must lie in [-2**63, 2**63 - 1])"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {value}"
    return None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        problem = _number_problem(value, _arms(annotation))
        if problem is None and isinstance(value, (list, tuple, dict)):
            items = value.values() if isinstance(value, dict) else value
            arms = _item_arms(annotation)
            problem = next((p for item in items if (p := _number_problem(item, arms)) is not None), None)
        if problem is not None:
            raise ValueError(problem)
        return value


__all__ = ["Config"]
