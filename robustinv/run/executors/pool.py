"""`process`: cells on N local worker processes, each running torch on the suite's threads per cell.

Workers are spawned (not forked: torch's thread pools do not survive a fork), keep the dataset
and the models they loaded between cells, and send their progress and log records to the driver
through a queue (see `channel`). A cell's failure comes back as a `CellFailure`, never as the
exception itself (see `failures`). A worker that dies under a cell breaks the pool; the pool is
replaced and the cell retried, and a second death is blamed on the cell's model when that is the
user's code. Closing waits for the workers to exit, so none is left starting up after the driver
is gone (which printed tracebacks from half-started workers after successful runs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from multiprocessing.connection import wait
from typing import Any

from robustinv.run.cells import Done, execute
from robustinv.run.executors.base import EXECUTORS, Event, Executor, ExecutorOptions
from robustinv.run.executors.channel import Inbox, driver_level, forward_logs
from robustinv.run.executors.failures import CellFailure, WorkerLost, capture, worker_died
from robustinv.run.executors.settle import chain
from robustinv.run.plan import CellSpec
from robustinv.run.setting import RunSetting
from robustinv.runtime import set_threads

_outbox: Any = None  # the worker's end of the message queue
PARENT_POLL_SECONDS = 1.0
REAP_SECONDS = 5.0
PR_SET_PDEATHSIG = 1  # prctl(2)


def _start_worker(threads: int, outbox: Any, driver: int, level: int = 0) -> None:
    """A worker's set-up; `driver` is the pid of the process that started it, passed in rather than read here.

    A driver killed while the worker was still importing leaves it reparented before this runs:
    its parent is then no longer `driver`, and the worker exits instead of waiting for it forever.
    """
    global _outbox
    _outbox = outbox
    set_threads(threads)
    _die_with_parent()
    if os.getppid() != driver:  # the driver died before the request took effect
        os._exit(1)
    threading.Thread(target=_exit_with_parent, args=(driver,), daemon=True).start()
    if outbox is not None:
        forward_logs(_send, level)


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


def _send(message: tuple[Any, ...]) -> None:
    if _outbox is not None:
        _outbox.put(message)


def _report(key: str, step: int, steps: int) -> None:
    _send(("event", key, step, steps))


def _run_cell(setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any]) -> Done | CellFailure:
    _send(("start", spec.key, os.getpid()))
    try:
        return capture(setting, spec, lambda: execute(setting, spec, inputs, _report))
    finally:
        _send(("end", spec.key))


@EXECUTORS.register("process")
class Pool(Executor):
    """Cells on local worker processes, each on the suite's threads per cell (--workers N)."""

    name = "process"

    def __init__(self, options: ExecutorOptions) -> None:
        super().__init__(options)
        self._context = multiprocessing.get_context("spawn")
        self._outbox: Any = None
        self._inbox = Inbox()
        self._lock = threading.Lock()  # the driver drains the queue from its own and the pool's thread
        self._pool: ProcessPoolExecutor | None = None
        self._specs: dict[str, tuple[RunSetting, CellSpec]] = {}  # cells submitted, by key

    def start(self) -> None:
        self._outbox = self._context.SimpleQueue()  # written synchronously: a worker's last words arrive
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.slots, mp_context=self._context, initializer=_start_worker,
                                   initargs=(self.options.threads, self._outbox, os.getpid(), driver_level()))

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self._drain()
        if self._inbox.running:  # cells still running (Ctrl-C) are abandoned: their workers are stopped
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)  # one call: a second one no longer waits for anything
        self._drain()

    def submit(self, setting: RunSetting, spec: CellSpec, inputs: Mapping[str, Any]) -> Future[Done]:
        assert self._pool is not None, "start the executor first"
        pool = self._pool
        self._specs[spec.key] = (setting, spec)
        inner = pool.submit(_run_cell, setting, spec, inputs)
        return chain(inner, partial(self._lost, pool, setting, spec))

    def _lost(self, pool: ProcessPoolExecutor, setting: RunSetting, spec: CellSpec,
              error: BaseException) -> BaseException:
        """A broken pool's error as the error of the cell whose worker died (not of every cell in flight)."""
        if not isinstance(error, BrokenProcessPool):
            return error
        self._drain()
        processes = getattr(pool, "_processes", {})
        culprits = [(key, code) for key, pid in self._inbox.running.items()
                    if pid in processes and (code := _ended(processes[pid])) is not None]
        if not culprits:
            return WorkerLost(f"the process pool broke while running cell {spec.key[:12]} ({spec.describe()}): "
                              f"{error}")
        key, code = culprits[0]
        culprit = self._specs.get(key, (setting, spec))
        return worker_died(*culprit, _exit_status(code))

    def _drain(self) -> list[Event]:
        with self._lock:
            messages = []
            while self._outbox is not None and not self._outbox.empty():
                messages.append(self._outbox.get())
            return self._inbox.sort(messages)

    def events(self) -> list[Event]:
        return self._drain()

    def worker_lost(self, exc: BaseException) -> bool:
        return isinstance(exc, WorkerLost)

    def recover(self) -> None:
        self.close()
        self._inbox.running.clear()
        self._pool = self._new_pool()


def _ended(process: Any) -> int | None:
    """A worker's exit code when it has ended (its sentinel closes a moment before it can be reaped), else None."""
    if not wait([process.sentinel], timeout=0):
        return None
    process.join(timeout=REAP_SECONDS)
    return process.exitcode  # type: ignore[no-any-return]


def _exit_status(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
