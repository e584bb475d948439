"""The CLI's progress display of a run: a bar over its cells, with the cells running and their training epochs.

Drawn on stderr with tqdm, only when stderr is a terminal and the run is not `--quiet`; logs
still go to stderr as lines above the bar.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any

from robustinv.run.plan import CellSpec
from robustinv.run.schedule import Progress

SHOWN_RUNNING = 2  # running cells named in the bar


def progress_bar(*, quiet: bool) -> tuple[Progress | None, Any]:
    """Hooks for `run_suite` and the bar to close afterwards; (None, None) when nothing should be drawn."""
    if quiet or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    width = shutil.get_terminal_size().columns  # 80 where a terminal reports no size
    bar = tqdm(total=0, unit="cell", file=sys.stderr, ncols=width, leave=True)
    epochs: dict[str, str] = {}

    def start(total: int) -> None:
        bar.total = total
        bar.refresh()

    def cell(spec: CellSpec, how: str) -> None:
        epochs.pop(spec.key, None)
        bar.update(1)

    def event(spec: CellSpec, step: int, steps: int) -> None:
        epochs[spec.key] = f"{spec.model.label} epoch {step}/{steps}"

    def running(cells: list[CellSpec]) -> None:
        shown = [epochs.get(c.key, c.describe()) for c in cells[:SHOWN_RUNNING]]
        more = f" +{len(cells) - SHOWN_RUNNING}" if len(cells) > SHOWN_RUNNING else ""
        bar.set_postfix_str("; ".join(shown) + more, refresh=True)

    return Progress(on_start=start, on_cell=cell, on_event=event, on_running=running), bar
