"""Reading a run folder's JSON: every problem is a `RunFolderError` naming the file and the entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robustinv.errors import RobustinvError
from robustinv.records import json_safe


class RunFolderError(RobustinvError):
    """A run folder whose files are missing, damaged, edited out of shape or from different runs."""


def json_bytes(payload: Any) -> bytes:
    """JSON without NaN or infinities (they have no JSON spelling and become null)."""
    return (json.dumps(json_safe(payload), indent=2, allow_nan=False, ensure_ascii=False) + "\n").encode()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (robustinv writes null for a missing number)")


def read_json(data: bytes, path: Path) -> Any:
    try:
        return json.loads(read_text(data, path), parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise RunFolderError(f"{path}: cannot read ({exc})") from None


def read_text(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunFolderError(f"{path}: not UTF-8 text ({exc.reason})") from None


def json_object(value: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RunFolderError(f"{path}: {where}: expected an object, got {type(value).__name__}")
    return value
