"""The base of every typed configuration read from a file: suites, recipes, attacks, gate policies.

Unknown keys are refused and values are frozen. TOML has real booleans, and pydantic's lax mode
reads `true` as 1 wherever a number is expected: `eps = [true]` would be ε = 1 and `min = true`
a bound of 1. A boolean is accepted only by a field that declares one.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _mentions(annotation: Any, wanted: tuple[type, ...]) -> bool:
    """Whether `annotation` (unions, lists, Annotated, … included) names one of `wanted`, or Any."""
    if annotation is Any or annotation in wanted:
        return True
    if typing.get_origin(annotation) is typing.Literal:
        return False
    return any(_mentions(arg, wanted) for arg in typing.get_args(annotation) if not isinstance(arg, (str, int)))


def _holds_bool(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, (list, tuple)) and any(isinstance(v, bool) for v in value))


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None or not _holds_bool(value):
            return value
        annotation = cls.model_fields[info.field_name].annotation
        if _mentions(annotation, (int, float)) and not _mentions(annotation, (bool,)):
            raise ValueError("expected a number, got a boolean")
        return value


__all__ = ["Config"]
