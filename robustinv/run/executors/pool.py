"""`process`: cells on N local worker processes, each running torch on the suite's threads per cell.

Workers are spawned (not forked: torch's thread pools do not survive a fork), keep the dataset
and the models they loaded between cells, and report training progress through a queue. A
worker that dies under a cell breaks the pool; the pool is replaced and the cell retried.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from robustinv.run.cells import Done, execute
from robustinv.run.executors.base import EXECUTORS, Event, Executor, ExecutorOptions
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting
from robustinv.runtime import set_threads

_progress: Any = None  # the worker's end of the progress queue
PARENT_POLL_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # prctl(2)


def _start_worker(threads: int, progress: Any, driver: int) -> None:
    """A worker's set-up; `driver` is the pid of the process that started it, passed in rather than read here.

    A driver killed while the worker was still importing leaves it reparented before this runs:
    its parent is then no longer `driver`, and the worker exits instead of waiting for it forever.
    """
    global _progress
    _progress = progress
    set_threads(threads)
    _die_with_parent()
    if os.getppid() != driver:  # the driver died before the request took effect
        os._exit(1)
    threading.Thread(target=_exit_with_parent, args=(driver,), daemon=True).start()


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this worker when its driver dies, even in the middle of a cell."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the watchdog thread below does it between calls
        pass


def _exit_with_parent(parent: int) -> None:
    """A worker whose driver died (killed, so it could not shut the pool down) exits instead of running on."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _report(key: str, step: int, steps: int) -> None:
    if _progress is not None:
        _progress.put((key, step, steps))


def _run_cell(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any]) -> Done:
    return execute(setting, spec, inputs, _report)


@EXECUTORS.register("process")
class Pool(Executor):
    """Cells on local worker processes, each on the suite's threads per cell (--workers N)."""

    name = "process"

    def __init__(self, options: ExecutorOptions) -> None:
        super().__init__(options)
        self._context = multiprocessing.get_context("spawn")
        self._progress: Any = None
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        self._progress = self._context.Queue()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.slots, mp_context=self._context, initializer=_start_worker,
                                   initargs=(self.options.threads, self._progress, os.getpid()))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def submit(self, setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any]) -> Future[Done]:
        assert self._pool is not None, "start the executor first"
        return self._pool.submit(_run_cell, setting, spec, inputs)

    def events(self) -> list[Event]:
        found: list[Event] = []
        while self._progress is not None:
            try:
                found.append(self._progress.get_nowait())
            except (queue.Empty, OSError, ValueError):
                break
        return found

    def worker_lost(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def recover(self) -> None:
        self.close()
        self._pool = self._new_pool()
