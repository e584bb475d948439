"""What `robustinv explain` writes: explain.json, explain.md and per mode a PNG grid of held-out maps."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from robustinv.files import atomic_write
from robustinv.jobs.explain import ExplainerRun
from robustinv.report.attention_plots import MapRow, map_grid
from robustinv.report.explainer import render_explainer
from robustinv.report.folder_json import json_bytes

SHOWN = 8  # held-out inputs per grid


def write_explained(explained: ExplainerRun, out_dir: Path) -> list[Path]:
    """Every file of the explainer's outcome in `out_dir` (each written atomically); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / "explain.json", json_bytes(asdict(explained.outcome)))
    _write(out_dir / "explain.md", render_explainer(explained.outcome).encode())
    return [out_dir / "explain.json", out_dir / "explain.md", *write_grids(explained, out_dir)]


def write_grids(explained: ExplainerRun, out_dir: Path) -> list[Path]:
    """One grid per mode, `explain-<mode>.png`: clean | its map | GAN map, then the same adversarial."""
    written = []
    for mode in explained.outcome.modes:
        groups = []
        for side in ("clean", "adversarial"):
            maps = explained.heldout[side][:SHOWN]
            images = _bytes(maps.images)
            target = maps.shallowest if mode.target.startswith("shallowest") else maps.final
            gan = explained.predicted[mode.mode][side][:SHOWN]
            groups.append((f"{side} · {mode.mode}: {mode.target}", [
                MapRow(side, images), MapRow("true map", images, _bytes(target[:, 0])),
                MapRow("GAN map", images, _bytes(gan[:, 0])),
            ]))
        png = map_grid(groups, [f"true {int(label)}" for label in explained.labels[:SHOWN]])
        path = out_dir / f"explain-{mode.mode}.png"
        _write(path, png)
        written.append(path)
    return written


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def _bytes(values: torch.Tensor) -> np.ndarray:
    return (values.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
