"""The executor contract: submit a cell, get a future of its `Done`; drain progress events; say when a worker died."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar

from robustinv.errors import RobustinvError
from robustinv.registry import Registry
from robustinv.run.cells import Done
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting

Event = tuple[str, int, int]  # (cell key, step, steps)


@dataclass(frozen=True)
class ExecutorOptions:
    """`workers`: cells at once (default: the CPUs divided by the threads per cell); `address`: a Ray cluster."""

    threads: int = 1
    workers: int | None = None
    address: str | None = None
    gpus_per_cell: float = 0.0

    def slots(self) -> int:
        return self.workers or max(1, (os.cpu_count() or 1) // self.threads)


MAX_WORKERS_PER_CPU = 4  # more worker processes than this only queue for the CPUs, each holding torch in memory


def max_workers() -> int:
    return MAX_WORKERS_PER_CPU * (os.cpu_count() or 1)


class Executor(ABC):
    """Runs cells; `slots` of them at a time. Use as a context manager."""

    name: ClassVar[str]

    def __init__(self, options: ExecutorOptions) -> None:
        self.options = options

    @property
    def slots(self) -> int:
        return self.options.slots()

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def preflight(cls, workers: int | None = None) -> None:
        """Refuse, before any data is read, what this executor cannot do here: absurd `workers`, a missing package."""
        if workers is not None and not 1 <= workers <= max_workers():
            raise RobustinvError(f"--workers {workers}: give 1 to {max_workers()} worker processes "
                                 f"({MAX_WORKERS_PER_CPU} per CPU of this machine's {os.cpu_count() or 1})")

    def start(self) -> None:
        """Start workers (or join a cluster)."""

    def close(self) -> None:
        """Stop workers; cells still running are abandoned."""

    @abstractmethod
    def submit(self, setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any]) -> Future[Done]:
        """Start a cell; the future holds its `Done` or the exception the cell raised."""

    def events(self) -> list[Event]:
        """Progress reported inside cells since the last call (training epochs)."""
        return []

    def worker_lost(self, exc: BaseException) -> bool:
        """Whether `exc` says the worker died under the cell (not that the cell failed): the cell is retried once."""
        return False

    def original(self, exc: BaseException) -> BaseException:
        """The exception the cell itself raised, unwrapped from the executor's envelope."""
        return exc

    def recover(self) -> None:
        """Replace workers after `worker_lost`; cells in flight on them are resubmitted by the caller."""


EXECUTORS: Registry[type[Executor]] = Registry("executor")
