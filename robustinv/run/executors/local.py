"""`serial`: every cell in this process, one after another (the default; what CI runs)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from robustinv.run.cells import Done, execute
from robustinv.run.executors.base import EXECUTORS, Event, Executor, ExecutorOptions
from robustinv.run.executors.failures import left_cell, users_error
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting


@EXECUTORS.register("serial")
class Serial(Executor):
    """Every cell in this process, one after another (the default)."""

    name = "serial"

    def __init__(self, options: ExecutorOptions) -> None:
        super().__init__(options)
        self._events: list[Event] = []

    @property
    def slots(self) -> int:
        return 1

    def submit(self, setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any]) -> Future[Done]:
        future: Future[Done] = Future()
        try:
            future.set_result(execute(setting, spec, inputs, lambda key, step, steps: self._events.append(
                (key, step, steps))))
        except Exception as exc:  # the caller reports the cell's failure with its key
            future.set_exception(users_error(setting, spec, exc))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit in a model: the model's error, not the end of robustinv
            future.set_exception(left_cell(spec, exc))
        return future

    def events(self) -> list[Event]:
        found, self._events = self._events, []
        return found
