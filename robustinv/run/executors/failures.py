"""How a cell that did not finish reaches the driver, whichever executor ran it, and whose fault it was.

A worker never sends back the exception its cell raised: an exception may not pickle, or not
unpickle (a class whose `__init__` takes other arguments than its `args`), and under a process
pool either breaks the pool. `capture` catches everything a cell raises and returns a
`CellFailure` instead: whether it was the user's doing (a `RobustinvError`: the suite, the data,
the model; or a model that leaves its cell with `sys.exit` or another `BaseException`) or a
robustinv bug (any other exception), the exception's type, its message and, for a bug, the
worker's traceback as text. The driver raises it again (`CellFailure.exception`) as an exception
the command line maps to exit 2 or 3.

A worker can also die under a cell without raising anything (`os._exit`, a signal, the OOM
killer). `worker_died` says so naming the model and the cell: under a model of the user's own
code (an `arch = "module:callable"` or a TorchScript file) the model is blamed (exit 2); under
robustinv's own architectures a dead worker is an internal error (exit 3).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from robustinv.errors import DataError, ModelError, RobustinvError
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting
from robustinv.text import first_line

T = TypeVar("T")
_PACKAGE = Path(__file__).resolve().parents[2]  # robustinv's own code is never the user's

_USER_ERRORS: dict[str, type[RobustinvError]] = {"model": ModelError, "data": DataError, "input": RobustinvError}


@dataclass(frozen=True)
class CellFailure:
    """A cell's exception as plain text: `blame` is "model", "data" or "input" (the user's) or "internal"."""

    blame: str
    kind: str  # the exception's type name
    message: str
    traceback: str = ""

    def exception(self) -> Exception:
        """The exception the driver raises for this failure: a `RobustinvError` for the user's, `CellCrash` for ours."""
        if self.blame in _USER_ERRORS:
            return _USER_ERRORS[self.blame](self.message)
        crash = CellCrash(self.kind, self.message)
        crash.__cause__ = RemoteTraceback(self.traceback)
        return crash


class RemoteTraceback(Exception):
    """The traceback of an exception raised in another process, as text (shown in the internal-error log)."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0]) if self.args else ""


class CellCrash(Exception):
    """A robustinv bug inside a cell that ran in another process; `remote_type` is its exception's type."""

    def __init__(self, remote_type: str, message: str) -> None:
        super().__init__(message)
        self.remote_type = remote_type


class WorkerLost(Exception):
    """A worker process died under a cell (killed, out of memory, a crash in native code)."""


class ModelKilledWorker(WorkerLost, ModelError):
    """A worker process died under a cell of a model of the user's own code: the model's doing."""


def capture(setting: RunSetting, spec: CellSpec, run: Callable[[], T]) -> T | CellFailure:
    """`run()`, or what it raised as a `CellFailure`; only KeyboardInterrupt (Ctrl-C, a cancelled task) propagates."""
    try:
        return run()
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        error = users_error(setting, spec, exc)
        if isinstance(error, RobustinvError):
            blame = "model" if isinstance(error, ModelError) else "data" if isinstance(error, DataError) else "input"
            return CellFailure(blame, type(error).__name__, str(error))
        return CellFailure("internal", type(exc).__name__, first_line(exc), "".join(traceback.format_exception(exc)))
    except BaseException as exc:  # sys.exit and the like: robustinv's cells raise none of them
        return CellFailure("model", type(exc).__name__, str(left_cell(spec, exc)))


def users_error(setting: RunSetting, spec: CellSpec, exc: Exception) -> Exception:
    """`exc` as the user's error when it is one: a `RobustinvError`, or an exception raised in the model's own code.

    The model's forward pass raises through `CheckedModel` as a `ModelError` already; this finds the
    rest (a model's `train()` or `state_dict()` override, a backward hook): an exception whose
    traceback passes through the file of the model's `arch` module or a module beside the suite.
    """
    if isinstance(exc, RobustinvError):
        return exc
    where = _user_frame(setting, spec, exc)
    if where is None:
        return exc
    return ModelError(f"model {spec.model.label!r} raised {type(exc).__name__}: {first_line(exc)} (at {where}, "
                      f"in cell {spec.key[:12]} ({spec.describe()}))")


def _user_frame(setting: RunSetting, spec: CellSpec, exc: BaseException) -> str | None:
    """`file:line` of the innermost frame of `exc` (or an exception it chains) in the model's own code."""
    arch = str(setting.suite.models[spec.model.entry].arch)
    module = sys.modules.get(arch.partition(":")[0]) if ":" in arch else None
    own = {Path(module.__file__).resolve()} if module is not None and module.__file__ else set()
    folder = setting.base_dir.resolve() if setting.base_dir is not None else None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame in reversed(traceback.extract_tb(current.__traceback__)):
            path = Path(frame.filename).resolve()
            beside_suite = folder is not None and path.is_relative_to(folder)
            if not path.is_relative_to(_PACKAGE) and (path in own or beside_suite):
                return f"{frame.filename}:{frame.lineno}"
        current = current.__cause__ or current.__context__
    return None


def left_cell(spec: CellSpec, exc: BaseException) -> ModelError:
    """A model that ended its cell with `sys.exit` or another BaseException, named with the cell."""
    how = f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else \
        f"raised {type(exc).__name__} (a BaseException, not an Exception)"
    return ModelError(f"model {spec.model.label!r} {how} in cell {spec.key[:12]} ({spec.describe()})")


def user_code(setting: RunSetting, spec: CellSpec) -> bool:
    """Whether the cell's model runs the user's code: an `arch = "module:callable"` or a TorchScript file."""
    entry = setting.suite.models[spec.model.entry]
    return entry.torchscript is not None or ":" in str(entry.arch)


def worker_died(setting: RunSetting, spec: CellSpec, how: str) -> WorkerLost:
    """The error for a cell whose worker died twice (it is retried once): the model's fault for user code."""
    where = f"cell {spec.key[:12]} ({spec.describe()})"
    if user_code(setting, spec):
        return ModelKilledWorker(f"model {spec.model.label!r}: the worker process running {where} died ({how}), "
                                 "also when it ran again: the model ends or kills its process, or runs out of memory")
    return WorkerLost(f"the worker process running {where} died ({how}), also when it ran again: out of memory, "
                      "killed, or a crash in native code")
