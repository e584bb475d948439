"""Figures of where a model looks: Grad-CAM maps over their images, and attribution drift per conv layer.

Pure functions from records (uint8 arrays, drift numbers) to PNG bytes, drawn like `plots`:
no pyplot state, fixed size, no metadata stamps, so the same records give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from robustinv.records import Explanation, model_label
from robustinv.report.plots import new_figure, plain_text, png_bytes, show_image

_CELL = 0.85  # inches per image
_GAP, _TITLE, _GROUP = 0.06, 0.3, 0.25
MAP_ALPHA = 0.55  # how strongly a map covers its image
MAP_COLOURS = "inferno"


@dataclass(frozen=True)
class MapRow:
    """One row of a map grid: `images` (inputs, C, H, W) uint8, with `maps` (inputs, H, W) uint8 over them."""

    label: str
    images: npt.NDArray[np.uint8]
    maps: npt.NDArray[np.uint8] | None = None


def map_grid(groups: Sequence[tuple[str, Sequence[MapRow]]], headers: Sequence[str]) -> bytes:
    """Groups of rows (a title each) over the same input columns (a header each); maps drawn over their images."""
    columns = len(headers)
    placed: list[tuple[str, MapRow | None, float]] = []
    bottom = _TITLE
    for title, rows in groups:
        placed.append((title, None, bottom))
        bottom += _TITLE
        for row in rows:
            placed.append(("", row, bottom))
            bottom += 1.0 + _GAP
        bottom += _GROUP
    fig = new_figure((_CELL * columns, _CELL * bottom))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, columns)
    ax.set_ylim(bottom, 0)
    ax.set_axis_off()
    for column, header in enumerate(headers):
        ax.text(column + 0.5, _TITLE / 2, plain_text(header), ha="center", va="center", fontsize=8, fontweight="bold")
    for title, shown, top in placed:
        if shown is None:
            ax.text(0, top + _TITLE * 0.6, plain_text(title), ha="left", va="center", fontsize=9, fontweight="bold")
            continue
        ax.text(-0.1, top + 0.5, plain_text(shown.label), ha="right", va="center", fontsize=8)
        for column in range(columns):
            extent = (column + _GAP / 2, column + 1 - _GAP / 2, top + 1, top)
            show_image(ax, shown.images[column], extent)
            if shown.maps is not None:
                ax.imshow(shown.maps[column], cmap=MAP_COLOURS, vmin=0, vmax=255, alpha=MAP_ALPHA, extent=extent,
                          interpolation="bilinear")
    return png_bytes(fig)


def explanation_grid(explanations: Sequence[Explanation]) -> bytes:
    """One model's explanations: per attack, the inputs clean and adversarial, bare and with their final map."""
    groups = []
    for explained in explanations:
        clean, adversarial = explained.images
        clean_map, adversarial_map = explained.maps
        groups.append((f"{explained.attack} ε={explained.eps:g}", [
            MapRow("clean", clean), MapRow("clean map", clean, clean_map),
            MapRow("adversarial", adversarial), MapRow("adversarial map", adversarial, adversarial_map),
        ]))
    return map_grid(groups, [f"true {label}" for label in explanations[0].true_labels] if explanations else [])


def layer_drift(explanations: Sequence[Explanation], *, title: str) -> bytes:
    """Attribution drift per conv layer (shallowest first), one line per model and defense, for one attack."""
    fig = new_figure((5.0, 3.0))
    ax = fig.add_subplot(1, 1, 1)
    for explained in explanations:
        label = model_label(explained.model, explained.defense)
        depths = range(1, len(explained.layer_drift) + 1)
        ax.plot(list(depths), list(explained.layer_drift), marker="o", markersize=4, label=plain_text(label))
    layers = max((len(e.layer_drift) for e in explanations), default=1)
    ax.set_xticks(range(1, layers + 1))
    ax.set_xlabel("conv layer (1 = shallowest)")
    ax.set_ylabel("attribution drift (1 − ρ)")
    ax.set_ylim(bottom=0)
    ax.grid(True, color="0.9", linewidth=0.8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    ax.set_title(plain_text(title), loc="left", fontsize=10)
    return png_bytes(fig)
