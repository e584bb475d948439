"""Where robustinv keeps what it can rebuild: trained models, generators, unpacked data."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationInfo


def cache_dir() -> Path:
    """`$ROBUSTINV_CACHE`, else `$XDG_CACHE_HOME/robustinv`, else `~/.cache/robustinv`."""
    explicit = os.environ.get("ROBUSTINV_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "robustinv"


def default_data_root() -> Path:
    """Where datasets download to when a suite names no `root`."""
    return cache_dir() / "data"


def resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Relative paths in a suite resolve against the suite file's folder (validation context)."""
    if value is None:
        return None
    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    return value if value.is_absolute() or base is None else (Path(base) / value).resolve()
