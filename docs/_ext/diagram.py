"""Boxes and arrows on a matplotlib axis: the few primitives the block diagrams are drawn with."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

INK = "#2b2b2b"
BLUE = ("#e7eefb", "#3b5b92")  # (face, edge): layers of this library
GREEN = ("#e6f4ea", "#2e7d4f")  # recurrent state
GREY = ("#f1f1f1", "#6b6b6b")  # frozen CLIP, inputs and outputs
ORANGE = ("#fdf0e1", "#b8660b")  # the condition


@dataclass(frozen=True)
class Box:
    """A drawn box; its side midpoints are the anchors arrows attach to."""

    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h)

    @property
    def bottom(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y)

    @property
    def left(self) -> tuple[float, float]:
        return (self.x, self.y + self.h / 2)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.w, self.y + self.h / 2)


def box(
    ax: Axes,
    center: tuple[float, float],
    size: tuple[float, float],
    text: str,
    colours: tuple[str, str] = BLUE,
    *,
    fontsize: float = 9,
    dashed: bool = False,
) -> Box:
    """Draw a rounded box of ``size`` (width, height) centred on ``center`` with centred ``text``."""
    w, h = size
    x, y = center[0] - w / 2, center[1] - h / 2
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0,rounding_size=0.06",
            facecolor=colours[0],
            edgecolor=colours[1],
            linewidth=1.2,
            linestyle="--" if dashed else "-",
        )
    )
    ax.text(*center, text, ha="center", va="center", fontsize=fontsize, color=INK)
    return Box(x, y, w, h)


def arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    colour: str = INK,
    label: str | None = None,
    label_offset: tuple[float, float] = (0.08, 0.0),
    dashed: bool = False,
    curve: float = 0.0,
    via: tuple[tuple[float, float], ...] = (),
) -> None:
    """Draw an arrow from ``start`` to ``end``, optionally labelled beside its midpoint.

    ``via`` lists corners of an elbowed path: straight segments join ``start``, the corners and
    ``end``, and only the last one carries the arrowhead.
    """
    points = (start, *via)
    for a, b in itertools.pairwise(points):
        ax.plot((a[0], b[0]), (a[1], b[1]), color=colour, linewidth=1.1, linestyle="--" if dashed else "-")
    start = points[-1]
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=11,
            color=colour,
            linewidth=1.1,
            linestyle="--" if dashed else "-",
            connectionstyle=f"arc3,rad={curve}",
            shrinkA=1,
            shrinkB=1,
        )
    )
    if label is not None:
        mid = ((start[0] + end[0]) / 2 + label_offset[0], (start[1] + end[1]) / 2 + label_offset[1])
        ax.text(*mid, label, ha="left", va="center", fontsize=8, color=colour)
