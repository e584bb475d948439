"""Figures of the HTML report, as PNG bytes computed from records: pure functions, no files, no pyplot.

Each figure is drawn on its own `Figure` with the Agg canvas (no global pyplot state, safe to call
from anywhere) at a fixed size and DPI, and saved without the metadata matplotlib stamps into PNGs
(its version), so the same records always give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

from robustinv.records import CLEAN, ResultRow, SampleGrid
from robustinv.text import printable

DPI = 100
WRONG = "#c62828"  # the mark of a prediction that differs from the true label
NORM_NAMES = {"linf": "L∞", "l2": "L2"}

_CURVE_PANEL = (5.0, 3.2)  # inches per norm panel; the legend sits outside, to the right
# A sample grid in cell units (an image is 1 × 1, shown _CELL_INCHES wide): title band above each
# image, gaps between images, between rows and between attacks, the true labels' header on top.
_CELL_INCHES = 0.85
_TITLE, _COLUMN_GAP, _ROW_GAP, _GROUP_GAP, _HEADER = 0.28, 0.1, 0.04, 0.2, 0.3


def plain_text(text: str) -> str:
    """Text shown verbatim by matplotlib: a `$` in a name would otherwise start mathtext (or fail to parse);
    control characters, which no font has, are spelled out."""
    return printable(text, keep_newlines=True).replace("$", r"\$")


def norm_name(norm: str) -> str:
    return NORM_NAMES.get(norm, norm)


def robustness_curve(rows: Sequence[ResultRow], *, clean_acc: float, title: str) -> bytes:
    """Robust accuracy (%) against ε for every attack on one model, clean accuracy as a dashed reference.

    `rows` are one model and defense's; attacks keep their order of first appearance. Attacks of
    different norms have incomparable ε scales, so each norm gets its own panel, stacked so the
    figure keeps its width beside the tables.
    """
    norms = list(dict.fromkeys(row.norm for row in rows)) or ["linf"]
    fig = new_figure((_CURVE_PANEL[0], _CURVE_PANEL[1] * len(norms)))
    panels: list[Axes] = [fig.add_subplot(len(norms), 1, i + 1) for i in range(len(norms))]
    fig.subplots_adjust(hspace=0.45)
    for ax, norm in zip(panels, norms):
        in_norm = [row for row in rows if row.norm == norm]
        for attack in dict.fromkeys(row.attack for row in in_norm):
            points = sorted((row.eps, 100 * row.robust_acc) for row in in_norm if row.attack == attack)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=4, label=plain_text(attack))
        if not math.isnan(clean_acc):
            ax.axhline(100 * clean_acc, color="0.35", linestyle="--", linewidth=1, label="clean")
        eps_values = sorted({row.eps for row in in_norm})
        if len(eps_values) <= 8:
            ax.set_xticks(eps_values, [f"{eps:g}" for eps in eps_values])
        ax.set_xlabel(f"ε ({norm_name(norm)})")
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(-3, 105)  # a little room below 0% keeps points at 0 whole
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.grid(True, color="0.9", linewidth=0.8)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    panels[0].set_title(plain_text(title), loc="left", fontsize=10)
    return png_bytes(fig)


def sample_grid(grids: Sequence[SampleGrid]) -> bytes:
    """The same inputs (columns) clean and under each attack (a row per draw), predictions as titles.

    `grids` are one model and defense's, in the order to show them (clean first). Each title is
    the predicted label and its confidence; a prediction that is not the true label is red, title
    and frame. The true label heads each column. Images with other than 3 channels show channel 0.
    Everything is drawn on one axes in cell units (one image is 1 × 1): far faster than an axes
    per image, which matters at 8 inputs × 11 rows per model.
    """
    columns = max((grid.images.shape[1] for grid in grids), default=0)
    tops, bottom = [], _HEADER
    for index, grid in enumerate(grids):
        bottom += _GROUP_GAP if index else 0.0
        for draw in range(grid.images.shape[0]):
            tops.append((grid, draw, bottom + _TITLE))
            bottom += _TITLE + 1.0 + _ROW_GAP
    fig = new_figure((_CELL_INCHES * columns, _CELL_INCHES * bottom))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, columns)
    ax.set_ylim(bottom, 0)  # rows go down
    ax.set_axis_off()
    for grid, draw, top in tops:
        ax.text(-0.1, top + 0.5, _row_label(grid, draw), ha="right", va="center", fontsize=8)
        for column in range(grid.images.shape[1]):
            left = column + _COLUMN_GAP / 2
            extent = (left, left + 1 - _COLUMN_GAP, top + 1, top)
            show_image(ax, grid.images[draw, column], extent)
            true, predicted = grid.true_labels[column], grid.predictions[draw][column]
            wrong = predicted != true
            ax.add_patch(Rectangle((extent[0], top), 1 - _COLUMN_GAP, 1, fill=False, clip_on=False,
                                   edgecolor=WRONG if wrong else "0.75", linewidth=2.5 if wrong else 0.6))
            ax.text(column + 0.5, top - 0.04, f"{predicted} ({100 * grid.confidences[draw][column]:.1f}%)",
                    ha="center", va="bottom", fontsize=7, color=WRONG if wrong else "black",
                    fontweight="bold" if wrong else "normal")
    for column, true in enumerate(grids[0].true_labels if grids else ()):
        ax.text(column + 0.5, _HEADER / 2, f"true {true}", ha="center", va="center", fontsize=8, fontweight="bold")
    return png_bytes(fig)


def _row_label(grid: SampleGrid, draw: int) -> str:
    if grid.attack == CLEAN:
        return "clean"
    which = f" #{draw + 1}" if grid.images.shape[0] > 1 else ""
    return plain_text(f"{grid.attack}{which}\nε={grid.eps:g}")


def show_image(ax: Axes, image: np.ndarray, extent: tuple[float, float, float, float]) -> None:
    """One uint8 (C, H, W) image at `extent` (left, right, bottom, top), pixels kept sharp."""
    if image.shape[0] == 3:
        ax.imshow(image.transpose(1, 2, 0), extent=extent, interpolation="nearest")
    else:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=255, extent=extent, interpolation="nearest")


def new_figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, cropped to its content, without matplotlib's Software stamp."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08, facecolor="white",
                metadata={"Software": None})
    return buffer.getvalue()
