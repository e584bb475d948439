"""The CLI's progress as lines for a stderr that is not a terminal (a CI log): one per finished cell and epoch.

    cell 12/40 done: attack lenet5[pgd_at] pgd ε=0.3 (41.2 s)
    train lenet5[pgd_at]: epoch 2/3 (95 s, ~48 s left)

The lines come from the scheduler's hooks, so every executor prints the same ones. They are the
one place a finished cell is announced: while they are on, the library's own per-cell records
(`robustinv.run.cells`: clean and robust accuracy, which the final table holds) stay off the
console. An epoch is announced once too: a training loop running in this process (the serial
executor) logs each epoch as it ends, with its losses, and its scheduler event, which arrives
only after the cell, is then not printed again; epochs trained in workers are announced by their
events, and those workers' own epoch records, should they reach this log, are held back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from robustinv.progress_bar import progress_bar
from robustinv.records import CellKind
from robustinv.run.plan import CellSpec
from robustinv.run.schedule import Progress
from robustinv.terminal import say

CELL_RECORDS = "robustinv.run.cells"  # the library's line per finished cell
EPOCH_RECORDS = "robustinv.training.loop"  # the library's line per training epoch
OUTCOMES = {"computed": "done", "stored": "stored", "failed": "failed"}


class ProgressLines:
    """Scheduler hooks that write a line per finished cell and per epoch; `keep` filters the library's records."""

    def __init__(self, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._clock = clock
        self._total = 0
        self._finished = 0
        self._started: dict[str, float] = {}  # cell key → when it was first seen running
        self._heard = clock()  # the last hook call: a cell first seen running started after it
        self._epochs_logged_here = 0  # epoch records of this process whose events are still to come
        self._last_seen: logging.LogRecord | None = None  # a record passes every handler's filter: count it once

    def hooks(self) -> Progress:
        return Progress(on_start=self._start, on_cell=self._cell, on_event=self._event, on_running=self._running)

    def keep(self, record: logging.LogRecord) -> bool:
        """Whether a library record reaches the console: not when a progress line says the same."""
        if record.levelno > logging.INFO:
            return True
        if record.name == CELL_RECORDS:
            return False
        if record.name == EPOCH_RECORDS:
            if record.process != os.getpid():
                return False
            if record is not self._last_seen:
                self._epochs_logged_here += 1
                self._last_seen = record
        return True

    def _start(self, total: int) -> None:
        self._total = total
        self._heard = self._clock()

    def _running(self, cells: list[CellSpec]) -> None:
        for spec in cells:
            self._started.setdefault(spec.key, self._heard)
        self._heard = self._clock()

    def _cell(self, spec: CellSpec, how: str) -> None:
        now = self._clock()
        self._finished += 1
        started = self._started.pop(spec.key, None)
        took = "" if started is None or how == "stored" else f" ({now - started:.1f} s)"
        self._write(f"cell {self._finished}/{self._total} {OUTCOMES.get(how, how)}: {spec.describe()}{took}")
        self._heard = now

    def _event(self, spec: CellSpec, step: int, steps: int) -> None:
        now = self._clock()
        if self._epochs_logged_here > 0:
            self._epochs_logged_here -= 1
        else:
            what = f"train {spec.model.label}: epoch" if spec.kind is CellKind.prepare else f"{spec.describe()}: step"
            seconds = now - self._started.get(spec.key, now)
            left = seconds / step * (steps - step) if step > 0 else 0.0
            self._write(f"{what} {step}/{steps} ({seconds:.0f} s, ~{left:.0f} s left)")
        self._heard = now


@contextmanager
def progress_display(*, quiet: bool) -> Iterator[Progress | None]:
    """What `robustinv run` shows while cells run: the bar on a terminal, lines otherwise, nothing when quiet."""
    if quiet:
        yield None
        return
    hooks, bar = progress_bar(quiet=False)
    if bar is not None:
        try:
            yield hooks
        finally:
            bar.close()
        return
    lines = ProgressLines(lambda text: say(text, err=True))
    handlers = list(logging.getLogger("robustinv").handlers)
    for handler in handlers:
        handler.addFilter(lines.keep)
    try:
        yield lines.hooks()
    finally:
        for handler in handlers:
            handler.removeFilter(lines.keep)
