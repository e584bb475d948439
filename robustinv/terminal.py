"""What the command line prints, and how every way a command can end maps to an exit code.

    0    success
    1    a gate policy failed
    2    usage or input error: one line on stderr naming the file, key, model or value
    3    internal error: a robustinv bug; one line, the traceback in a log file
    130  interrupted (Ctrl-C), 143 terminated (SIGTERM): finished cells stay in the store

Errors caused by the user's suite, data, model or files are `RobustinvError`s and exit 2. A
failed gate is the only exit 1, so CI can tell "worse model" from "broken input". Text from
user files passes through `printable`, so a name cannot send escape sequences to the terminal.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import sysconfig
import tempfile
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from robustinv.errors import RobustinvError
from robustinv.text import first_line, printable

F = TypeVar("F", bound=Callable[..., Any])

EXIT_GATE_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
_PACKAGE = Path(__file__).resolve().parent


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run is marked interrupted and its committed cells stay."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def say(text: str, *, err: bool = False) -> None:
    """Print a line (or lines) with every control character spelled out."""
    click.echo(printable(text, keep_newlines=True), err=err)


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), keep_newlines=True)


def setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(message)s"))
    logger = logging.getLogger("robustinv")  # ART's own INFO chatter stays at the root's WARNING
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    signal.signal(signal.SIGTERM, _terminate)


def handle_errors(command: F) -> F:
    """Map how a command ends to its exit code (see the module docstring)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RobustinvError as exc:
            say(f"error: {' '.join(str(exc).splitlines())}", err=True)
            sys.exit(EXIT_INPUT)
        except OSError as exc:  # a full disk or a vanished folder mid-run: the file and the reason
            where = f"{exc.filename}: " if exc.filename else ""
            say(f"error: cannot write {where}{exc.strerror or exc}", err=True)
            sys.exit(EXIT_INPUT)
        except Terminated as exc:
            say("terminated", err=True)
            sys.exit(128 + exc.signum)
        except KeyboardInterrupt:
            say("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException:
            raise  # usage errors: click prints them and exits 2
        except SystemExit as exc:
            caller = user_code_exit(exc)
            if caller is None:
                raise  # robustinv's own exits (a failed gate)
            say(f"error: user code called sys.exit({exc.code!r}) at {caller}; a model, its builder or a module "
                "a suite imports must raise an exception instead", err=True)
            sys.exit(EXIT_INPUT)
        except Exception as exc:  # a robustinv bug: never exit 1, which CI reads as a failed gate
            log = _write_traceback(exc)
            kind = getattr(exc, "remote_type", type(exc).__name__)  # a bug inside a worker process: its own type
            say(f"internal error: {kind}: {first_line(exc)} (traceback in {log}; please report it)", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


def user_code_exit(exc: SystemExit) -> str | None:
    """Where code outside robustinv raised `exc` (`file:line`), or None when robustinv raised it itself.

    The innermost frame outside Python's own library is the one that called `sys.exit` (or
    `exit()`); robustinv ends a command early only from its own modules.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    library = sysconfig.get_paths()["stdlib"]
    caller = next((f for f in reversed(frames) if not f.filename.startswith(library)), None)
    if caller is None or Path(caller.filename).resolve().is_relative_to(_PACKAGE):
        return None
    return f"{caller.filename}:{caller.lineno}"


def _write_traceback(exc: BaseException) -> Path:
    folder = Path(os.environ.get("ROBUSTINV_LOG_DIR") or tempfile.gettempdir())
    path = folder / f"robustinv-internal-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return Path("(unwritable: " + str(path) + ")")
    return path
