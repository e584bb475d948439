"""Writing files so that readers never see half of one, or half of a set.

`atomic_write` writes one file under a temporary name and renames it into place. `write_together`
writes a set of files that belong together (a run folder's results and reports): every file goes
to a temporary name first, and only when all of them are written are they renamed into place and
the set's other files of an earlier run removed. A failure part-way (a full disk) leaves the
folder as it was, never a mix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

Writer = Callable[[Path], object]  # writes the file's content to the path it is given


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _temporary(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def _write_temporary(path: Path, write: Writer) -> Path:
    tmp = _temporary(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: Path, write: Writer) -> None:
    """Call `write(tmp_path)`, then rename onto `path`: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temporary(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_together(folder: Path, files: Mapping[str, Writer], *, replaces: Iterable[str] = ()) -> list[Path]:
    """Write every file of `files` into `folder`, all or none; then remove the `replaces` names not written.

    `replaces` names the files of the same set an earlier writer may have left (a gate verdict of
    an earlier run): they must not survive next to the new set.
    """
    folder.mkdir(parents=True, exist_ok=True)
    staged: dict[Path, Path] = {}
    try:
        for name, write in files.items():
            path = folder / name
            staged[path] = _write_temporary(path, write)
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    for name in replaces:
        if name not in files:
            (folder / name).unlink(missing_ok=True)
    for path, tmp in staged.items():
        os.replace(tmp, path)
    return list(staged)
