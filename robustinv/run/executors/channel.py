"""What workers tell the driver besides results: progress inside cells, their log records, which cell each runs.

Messages are tagged tuples: `("event", key, step, steps)` (a training epoch), `("log", record)` (a
`logging.LogRecord` of a `robustinv` logger, formatted and made picklable as `QueueHandler` does),
`("start", key, pid)` and `("end", key)` (a worker process took up or finished a cell). The driver
drains them while cells run: events go to the progress display, log records to the driver's own
loggers (so a worker's warnings land in the run's log like the serial executor's), and the
start and end marks tell which cell a dead worker was running.
"""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Callable, Iterable
from typing import Any

from robustinv.run.executors.base import Event

LOGGER = "robustinv"
Send = Callable[[tuple[Any, ...]], None]


class ForwardingHandler(logging.handlers.QueueHandler):
    """Sends each record of the worker's `robustinv` loggers to the driver as a `("log", record)` message."""

    def __init__(self, send: Send) -> None:
        logging.Handler.__init__(self)
        self.send = send

    def enqueue(self, record: logging.LogRecord) -> None:
        self.send(("log", record))


def forward_logs(send: Send, level: int) -> ForwardingHandler:
    """Route the worker's `robustinv` log records (at `level` and above) to the driver instead of its stderr."""
    handler = ForwardingHandler(send)
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return handler


def driver_level() -> int:
    """The level the driver's `robustinv` loggers print at: workers need not send what would be dropped."""
    return logging.getLogger(LOGGER).getEffectiveLevel()


class Inbox:
    """The driver's side: sorts drained messages into events, log records it re-emits, and cells in flight."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}  # cell key → pid of the worker process running it

    def sort(self, messages: Iterable[tuple[Any, ...]]) -> list[Event]:
        events: list[Event] = []
        for message in messages:
            tag = message[0]
            if tag == "event":
                events.append((message[1], message[2], message[3]))
            elif tag == "log":
                emit(message[1])
            elif tag == "start":
                self.running[message[1]] = message[2]
            elif tag == "end":
                self.running.pop(message[1], None)
        return events


def emit(record: logging.LogRecord) -> None:
    """Hand a worker's record to the driver's logger of the same name, if that logger prints its level."""
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)
