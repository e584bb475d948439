"""User architectures: `arch = "package.module:callable"`, imported, allowed, fingerprinted by source.

A suite imports user code, so it is code and should be reviewed like code. What it may *call*
is narrower: a suite names the callable and its keyword arguments, and calling an arbitrary
importable function with arguments from a file (`shutil:rmtree`, `os:system`) would run
anything. Only `torch.nn.Module` subclasses, functions marked with `@model_builder`, and
torchvision's registered model builders are called; anything else is refused before it runs.
Python's standard library holds no models, so its modules are not even imported.

Cached weights and result cells depend on the architecture's code. `UserBuilder.code` hashes
the source files it came from: the file that defines the callable and every module under the
suite's folder that importing it loaded, so editing a helper module the model imports
invalidates them too.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from robustinv.errors import ModelError
from robustinv.text import first_line

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__robustinv_model_builder__"


def model_builder(function: F) -> F:
    """Mark a function as a model builder a suite may call: `arch = "module:function"`.

        @robustinv.model_builder
        def build(width: int = 32) -> nn.Module: ...
    """
    setattr(function, _MARK, True)
    return function


@dataclass(frozen=True)
class UserBuilder:
    """An allowed callable of a user architecture and the fingerprint of the code it came from."""

    arch: str
    factory: Callable[..., Any]
    code: str

    def build(self, kwargs: dict[str, Any]) -> nn.Module:
        try:
            module = self.factory(**kwargs)
        except Exception as exc:  # user code may raise anything
            raise ModelError(f"calling {self.arch} failed: {type(exc).__name__}: {first_line(exc)}") from None
        if not isinstance(module, nn.Module):
            raise ModelError(f"{self.arch} returned {type(module).__name__}, not a torch.nn.Module")
        return module


def import_builder(arch: str, base_dir: Path | None) -> UserBuilder:
    """Import `module:callable` (modules beside the suite win) and check it may be called."""
    module_name, _, attr = arch.partition(":")
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names:
        raise ModelError(f"arch {arch!r}: {top!r} is part of Python's standard library, which holds no models")
    local = base_dir is not None and _defined_in(module_name, base_dir)
    if local:
        assert base_dir is not None
        _forget_modules(top, base_dir)  # re-import, so the code that runs is the code on disk
        sys.path.insert(0, str(base_dir))
    before = set(sys.modules)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(f"cannot import {module_name!r} for arch {arch!r}: {type(exc).__name__}: {exc}") from None
    finally:
        if local:
            sys.path.remove(str(base_dir))
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"arch {arch!r}: module {module_name!r} has no callable {attr!r}")
    if not _allowed(factory):
        raise ModelError(
            f"arch {arch!r}: {attr!r} is neither a torch.nn.Module subclass nor a function marked with "
            "@robustinv.model_builder; a suite calls only those, so it cannot run arbitrary functions"
        )
    loaded = [sys.modules[name] for name in sorted(set(sys.modules) - before) if name in sys.modules]
    files = {_file_of(module)} | {_file_of(m) for m in loaded if base_dir is not None and _under(_file_of(m), base_dir)}
    return UserBuilder(arch, factory, _hash_files(f for f in files if f is not None))


def _allowed(factory: Any) -> bool:
    if isinstance(factory, type):
        return issubclass(factory, nn.Module)
    return getattr(factory, _MARK, False) is True or _torchvision_builder(factory)


def _torchvision_builder(factory: Any) -> bool:
    try:
        from torchvision.models import get_model_builder, list_models
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return False
    return any(get_model_builder(name) is factory for name in list_models())


def _defined_in(module_name: str, folder: Path) -> bool:
    relative = Path(*module_name.split("."))
    return (folder / relative.with_suffix(".py")).is_file() or (folder / relative / "__init__.py").is_file()


def _forget_modules(top: str, folder: Path) -> None:
    """Drop `top` (imported from anywhere) and every module loaded from `folder` from the import cache."""
    for name, module in list(sys.modules.items()):
        if name == top or name.startswith(top + ".") or _under(_file_of(module), folder):
            del sys.modules[name]


def _file_of(module: Any) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if isinstance(file, str) else None


def _under(path: Path | None, folder: Path) -> bool:
    return path is not None and path.is_relative_to(folder.resolve())


def _hash_files(paths: Any) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        try:
            digest.update(path.read_bytes())
        except OSError:  # a module without a readable source (a compiled extension moved away)
            digest.update(b"?")
    return digest.hexdigest()[:16]
