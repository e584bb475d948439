"""TOML input files (suites, gate policies): reading them and turning validation errors into one clear line.

Kept apart from `robustinv.suite` so the gate can read its policy without the attack registry
(and torch) that validating a suite needs.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from robustinv.errors import RobustinvError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: Path, error: type[RobustinvError], what: str) -> dict[str, Any]:
    """A TOML file's contents; a missing or malformed file raises `error` naming the file."""
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: malformed TOML: {exc}") from None


def format_validation_error(
    where: str, exc: ValidationError, prefix: tuple[Any, ...] = (), known_keys: Collection[str] = ()
) -> str:
    """One line: `file: key.path: problem`, plus a count of further problems.

    An unknown key gets the closest of `known_keys` (the keys the file may hold) as a suggestion.
    """
    errors = exc.errors()
    first = errors[0]
    loc = (*prefix, *first["loc"])
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "(top level)"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), known_keys, n=1)
        message = "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
    elif first["type"] == "missing":
        message = "missing key"
    elif first["type"] != "value_error" and "input" in first and not isinstance(first["input"], (dict, list)):
        message += f" (got {first['input']!r})"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    line = f"{where}: {key}: {message}{more}"
    return line.replace("\r", "\\r").replace("\n", "\\n")  # a key or value with a line break stays one line
