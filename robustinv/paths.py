"""Where robustinv keeps what it can rebuild: trained models, generators, unpacked data."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationInfo

from robustinv.errors import RobustinvError


def cache_dir() -> Path:
    """`$ROBUSTINV_CACHE`, else `$XDG_CACHE_HOME/robustinv`, else `~/.cache/robustinv`; refused when it is a file."""
    explicit = os.environ.get("ROBUSTINV_CACHE")
    xdg = os.environ.get("XDG_CACHE_HOME")
    if explicit:
        path, source = Path(explicit).expanduser(), "$ROBUSTINV_CACHE"
    else:
        path, source = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "robustinv", "the default cache"
    problem = folder_problem(path)
    if problem is not None:
        raise RobustinvError(f"robustinv's model cache ({source}): {problem}; set `cache_dir` in the suite "
                             "or $ROBUSTINV_CACHE to a folder")
    return path


def default_data_root() -> Path:
    """Where datasets download to when a suite names no `root`."""
    return cache_dir() / "data"


def resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Relative paths in a suite resolve against the suite file's folder (validation context)."""
    if value is None:
        return None
    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    if value.is_absolute() or base is None:
        return value
    try:
        return (Path(base) / value).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop, an unreadable folder on the way
        raise ValueError(f"{value}: cannot follow this path ({exc})") from None


def folder_problem(path: Path) -> str | None:
    """Why `path` cannot be (or become) a folder robustinv writes to: it, or a folder on its way, is a file."""
    for place in (path, *path.parents):
        try:
            if place.is_dir():
                return None
            if place.exists() or place.is_symlink():
                return f"{place} is not a folder" + (f", so {path} cannot be created" if place != path else "")
        except OSError as exc:  # a symlink loop, a path component without permission
            return f"{place} cannot be used as a folder ({exc.strerror or exc})"
    return None
