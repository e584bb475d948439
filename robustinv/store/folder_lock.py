"""One writer per run folder: an advisory lock on a file inside the folder, held while a command uses it.

The results store refuses a second run into a folder only when both runs share the store; two
runs with different stores would both write the folder and mix their cells. The lock belongs to
the folder instead: `robustinv run` holds an exclusive `flock` on `OUT/.robustinv.lock` from
before its first cell until its reports are written, `robustinv gate` and `robustinv report`
hold it while they read and rewrite a folder, and reading a baseline takes it shared. A second
command on a folder in use exits 2 naming the process that holds it. The kernel releases the
lock whatever way its holder ends (a SIGKILL too); every ordinary way out also removes the file,
and a folder the lock itself created and nothing else filled. Local file systems only, like the
store (NFS does not promise `flock`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from robustinv.errors import RobustinvError
from robustinv.store.runs import alive

LOCK_NAME = ".robustinv.lock"
_ATTEMPTS = 5  # a holder may remove the file between our open and our lock: open it again


class FolderInUse(RobustinvError):
    """Another process holds the folder's lock."""


class RunNames(Protocol):
    """What names a run by the process writing it (the results store)."""

    def running_in(self, folder: Path, pid: int) -> str | None: ...


@contextmanager
def folder_lock(folder: Path, *, command: str, suite: str | None = None, shared: bool = False,
                create: bool = True, runs: RunNames | None = None) -> Iterator[None]:
    """Hold `folder`'s lock for the block; FolderInUse when another process holds it.

    `create` makes the folder (and the lock file) when missing, and removes what it made when the
    block ends; without it, a folder with no lock file is used unlocked (a read-only baseline).
    `runs` names the holder's run (`run X (process N)`) when it knows the process.
    """
    made = _missing_folders(folder) if create else []
    if made:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RobustinvError(f"cannot write results to {folder}: {exc.strerror or exc}") from None
    path = folder / LOCK_NAME
    try:
        fd = _acquire(path, folder, shared=shared, create=create, runs=runs)
    except BaseException:
        _remove_empty(made)
        raise
    try:
        if fd is not None and not shared:
            _describe(fd, command, suite)
        yield
    finally:
        if fd is not None:
            if not shared:
                _unlink_if_ours(path, fd)
            os.close(fd)
        _remove_empty(made)


def _acquire(path: Path, folder: Path, *, shared: bool, create: bool, runs: RunNames | None) -> int | None:
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(path, (os.O_RDWR | os.O_CREAT) if create else os.O_RDONLY, 0o666)
        except FileNotFoundError:
            if not create:
                return None
            continue
        except OSError as exc:
            if not create and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                return None
            raise RobustinvError(f"cannot lock {folder}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd, folder, runs)
            os.close(fd)
            using = "another robustinv process is using it" if holder is None else f"{holder} is writing to it"
            raise FolderInUse(f"{folder} is in use: {using}; wait for it to finish, or use another folder") from None
        except OSError as exc:
            os.close(fd)
            raise RobustinvError(f"cannot lock {folder}: {exc.strerror or exc}") from None
        if _same_file(path, fd):
            return fd
        os.close(fd)  # its holder removed it as we opened it: the lock lives on the file now at `path`
    raise RobustinvError(f"cannot lock {folder}: its lock file {LOCK_NAME} keeps changing")


def _describe(fd: int, command: str, suite: str | None) -> None:
    """Write who holds the lock into the lock file, for the message a second command shows."""
    text = json.dumps({"command": command, "suite": suite, "pid": os.getpid(), "host": socket.gethostname()})
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _holder(fd: int, folder: Path, runs: RunNames | None) -> str | None:
    """The lock's holder as its lock file describes it: `run X (process N)` or `robustinv gate (process N)`.

    None when the file names no live process: its writer is gone and a reader (of a baseline) holds it.
    """
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        pid, command, suite = int(record["pid"]), str(record["command"]), record.get("suite")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not alive(pid):
        return None
    if command == "run":
        run_id = runs.running_in(folder, pid) if runs is not None else None
        if run_id is not None:
            return f"run {run_id} (process {pid})"
        return f"a run of suite {suite!r} (process {pid})" if isinstance(suite, str) else f"a run (process {pid})"
    return f"robustinv {command} (process {pid})"


def _same_file(path: Path, fd: int) -> bool:
    try:
        found, held = path.stat(), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)


def _unlink_if_ours(path: Path, fd: int) -> None:
    """Remove the lock file while still holding it, so no one locks a file that is about to go."""
    if _same_file(path, fd):
        try:
            path.unlink()
        except OSError:
            pass  # a lock file left behind is harmless: the next command locks it again


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and its missing parents, deepest first: what creating it makes."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders the lock made, deepest first, as long as nothing else was put in them."""
    for made in folders:
        try:
            made.rmdir()
        except OSError:
            return
