"""Renderers: every output is computed from result records, never by re-running models."""

from __future__ import annotations

import shutil
from pathlib import Path

from robustinv.checkpoints import atomic_write
from robustinv.errors import RobustinvError
from robustinv.report.tables import rows_frame, write_csv, write_json, write_targets_csv
from robustinv.runner import RunResult
from robustinv.suite import Suite, dump_suite

__all__ = ["rows_frame", "write_csv", "write_json", "write_run"]


def write_run(result: RunResult, suite: Suite, out_dir: Path) -> list[Path]:
    """Write results.csv, results.json, suite.resolved.toml (and inversion_targets.csv); a failure leaves no new folder."""
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "results.csv", out_dir / "results.json", out_dir / "suite.resolved.toml"]
        write_csv(result.rows, paths[0])
        write_json(result, paths[1])
        resolved = dump_suite(suite)
        atomic_write(paths[2], lambda tmp: tmp.write_text(resolved, encoding="utf-8"))
        if result.targets:
            paths.append(out_dir / "inversion_targets.csv")
            write_targets_csv(result.targets, paths[-1])
    except OSError as exc:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise RobustinvError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from None
    return paths
