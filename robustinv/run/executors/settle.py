"""The future an executor hands the scheduler: it follows the worker's future and says what the cell's outcome means.

A worker returns the cell's `Done` or a `CellFailure` (see `failures`); `chain` turns the latter
into the exception it stands for, and an executor's own error (a broken pool, a crashed Ray
worker) into one that names the cell, via `translate`. Cancelling the returned future cancels
the worker's.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from robustinv.run.cells import Done
from robustinv.run.executors.failures import CellFailure


def chain(inner: Future[Any], translate: Callable[[BaseException], BaseException]) -> Future[Done]:
    """A future of the cell's `Done` that completes with `inner`; `translate` maps the executor's own errors."""
    outer: Future[Done] = Future()

    def settle(done: Future[Any]) -> None:
        if outer.cancelled():
            return
        try:
            if done.cancelled():
                outer.cancel()
                return
            error = done.exception()
            if error is None:
                value = done.result()
                if isinstance(value, CellFailure):
                    outer.set_exception(value.exception())
                else:
                    outer.set_result(value)
                return
            try:
                error = translate(error)
            except Exception as bug:  # the future must complete, or the scheduler waits for it forever
                error = bug
            outer.set_exception(error)
        except InvalidStateError:  # cancelled meanwhile
            pass

    inner.add_done_callback(settle)
    outer.add_done_callback(lambda future: inner.cancel() if future.cancelled() else None)
    return outer
