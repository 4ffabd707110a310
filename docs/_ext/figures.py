"""Figures drawn at build time.

``builder-inited`` draws, into ``<srcdir>/_generated/`` (ignored by git):

- ``cat_vs_rat.svg``: how the condition reaches each affine layer in CAT and in RAT;
- ``generator.svg``: the RATLIP generator of the paper preset;
- ``shapes_data.png``: a grid of the built-in ``shapes`` data.

A file is rewritten only when its bytes change (SVG and PNG metadata are pinned), so incremental
builds stay incremental.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: builds run without a display

import matplotlib.pyplot as plt
from diagram import BLUE, GREEN, GREY, ORANGE, arrow, box
from matplotlib.figure import Figure
from sphinx.application import Sphinx

GENERATED = "_generated"


def _canvas(
    size: tuple[float, float], xlim: tuple[float, float], ylim: tuple[float, float]
) -> tuple[Figure, plt.Axes]:
    fig = plt.figure(figsize=size)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _feature_row(ax: plt.Axes, xs: list[float], y: float) -> list:
    """The feature map flowing through one modulation per layer; returns the modulation boxes."""
    previous = box(ax, (0.35, y), (0.6, 0.5), "$x$", GREY)
    mods = []
    for t, x in enumerate(xs, start=1):
        mod = box(ax, (x, y), (1.2, 0.5), rf"$\gamma_{t} \odot x + \beta_{t}$")
        arrow(ax, previous.right, mod.left)
        mods.append(mod)
        previous = mod
    out = box(ax, (xs[-1] + 1.35, y), (0.6, 0.5), "out", GREY)
    arrow(ax, previous.right, out.left)
    return mods


def draw_cat_vs_rat() -> Figure:
    """Two panels: CAT's independent affines, RAT's LSTM state threading through the layers."""
    xs = [1.75, 3.55, 5.35, 7.15]
    fig = plt.figure(figsize=(9.0, 7.4))
    panels = (fig.add_axes((0, 0.52, 1, 0.48)), fig.add_axes((0, 0, 1, 0.48)))
    for ax in panels:
        ax.set_xlim(-0.2, 9.0)
        ax.set_ylim(-0.5, 4.1)
        ax.set_aspect("equal")
        ax.axis("off")
    cat, rat = panels

    cat.text(
        -0.1, 3.9, "CAT (DF-GAN, GALIP): every affine layer on its own, no memory", fontsize=11, weight="bold"
    )
    mods = _feature_row(cat, xs, 0.0)
    cond = box(cat, (4.45, 3.0), (7.6, 0.5), r"condition $y = [z, s]$", ORANGE)
    for t, (x, mod) in enumerate(zip(xs, mods), start=1):
        mlp = box(cat, (x, 1.2), (1.2, 0.5), f"MLP {t}")
        arrow(cat, (x, cond.y), mlp.top, colour=ORANGE[1])
        arrow(cat, mlp.bottom, mod.top, label=rf"$\gamma_{t}, \beta_{t}$")

    rat.text(
        -0.1,
        3.9,
        "RAT (RAT-GAN, RATLIP): one LSTM state flows through the layers",
        fontsize=11,
        weight="bold",
    )
    mods = _feature_row(rat, xs, 0.0)
    cond = box(rat, (4.45, 3.3), (7.6, 0.5), r"condition $y = [z, s]$", ORANGE)
    previous = box(rat, (0.35, 2.2), (0.6, 0.5), r"$h_0, c_0$", GREEN)
    for t, (x, mod) in enumerate(zip(xs, mods), start=1):
        cell = box(rat, (x, 2.2), (1.2, 0.5), "LSTM cell", GREEN)
        arrow(
            rat,
            previous.right,
            cell.left,
            colour=GREEN[1],
            label=rf"$h_{t - 1}, c_{t - 1}$" if t > 1 else None,
            label_offset=(-0.35, 0.3),
        )
        arrow(rat, (x, cond.y), cell.top, colour=ORANGE[1])
        mlp = box(rat, (x, 1.1), (1.2, 0.45), f"MLP {t}")
        arrow(rat, cell.bottom, mlp.top, colour=GREEN[1], label=rf"$h_{t}$")
        arrow(rat, mlp.bottom, mod.top, label=rf"$\gamma_{t}, \beta_{t}$")
        previous = cell
    state_out = box(rat, (xs[-1] + 1.35, 2.2), (0.6, 0.5), r"$h_4, c_4$", GREEN)
    arrow(rat, previous.right, state_out.left, colour=GREEN[1])
    rat.text(xs[-1] + 1.35, 1.75, "to the next\nblock", ha="center", va="top", fontsize=8, color=GREEN[1])
    return fig


def draw_generator() -> Figure:
    """The generator of the paper preset (CLIP ViT-B/32, 224 px): main path, condition and CLIP."""
    fig, ax = _canvas((8.6, 10.0), (-0.2, 10.2), (1.5, 13.4))
    main_x, side_x, width = 6.35, 1.45, 5.9

    def stage(y: float, text: str, colours: tuple[str, str] = BLUE, h: float = 0.62, **kw) -> object:
        return box(ax, (main_x, y), (width, h), text, colours, **kw)

    z = stage(12.9, "noise $z$ (100)", ORANGE, h=0.5)
    fc = stage(11.9, "fc_code: Linear 100 → 7·7·64, reshape to (64, 7, 7)")
    mblock = stage(
        10.6,
        "4 × M-block: conv3×3 64→32, RATBlock(32),\nSAConv 32→64, RATBlock(64); identity shortcut",
        GREEN,
        h=0.95,
    )
    fuse = stage(9.35, "conv_fuse: conv5×5 64 → 768   (768, 7, 7)")
    mapper = stage(
        7.95,
        "frozen CLIP ViT on the 7×7 map as its patch tokens;\n"
        "a learned prompt token joins each of blocks 1–8",
        GREY,
        h=0.95,
        dashed=True,
    )
    mix = stage(6.6, "conv5×5 768 → 512 on fuse + 0.1 · mapped   (512, 7, 7)")
    gblocks = stage(
        4.85,
        "6 × G-block: nearest upsample to 8, 16, 32, 64, 128, 224\n"
        "DFBlock, SAConv, DFBlock, SAConv; 1×1 shortcut on channel change\n"
        "channels 512 → 512 → 512 → 512 → 256 → 128 → 64",
        h=1.35,
    )
    rgb = stage(3.15, "to_rgb: LeakyReLU(0.2), conv3×3 64 → 3")
    image = stage(2.15, "image (3, 224, 224), not clamped", GREY, h=0.5)
    for a, b in (
        (z, fc),
        (fc, mblock),
        (mblock, fuse),
        (fuse, mapper),
        (mapper, mix),
        (mix, gblocks),
        (gblocks, rgb),
        (rgb, image),
    ):
        arrow(ax, a.bottom, b.top)
    # The shortcut of the mapper: conv_fuse's output skips CLIP and is added back.
    arrow(ax, fuse.right, mix.right, curve=-0.5, label="fuse", label_offset=(0.45, 0.0))

    caption = box(ax, (side_x, 12.9), (2.5, 0.5), "caption", GREY)
    text = box(ax, (side_x, 11.9), (2.3, 0.62), "frozen CLIP text\nencoder", GREY, dashed=True)
    cond = box(ax, (side_x, 10.6), (2.5, 0.62), "cond $= [z, s]$ (612)", ORANGE)
    prompt = box(ax, (side_x + 0.3, 7.95), (2.1, 0.62), "fc_prompt:\nLinear 612 → 8·768")
    arrow(ax, caption.bottom, text.top)
    arrow(ax, text.bottom, cond.top, label="$s$ (512)")
    arrow(
        ax,
        z.left,
        (cond.right[0] - 0.25, cond.top[1]),
        colour=ORANGE[1],
        label="$z$",
        label_offset=(0.12, 0.25),
    )
    arrow(ax, cond.right, mblock.left, colour=ORANGE[1], dashed=True)
    arrow(ax, (prompt.top[0], cond.y), prompt.top, colour=ORANGE[1], dashed=True)
    arrow(
        ax,
        prompt.right,
        mapper.left,
        colour=ORANGE[1],
        dashed=True,
        label="prompts",
        label_offset=(-0.45, 0.22),
    )
    arrow(
        ax,
        (cond.x + 0.3, cond.y),
        gblocks.left,
        colour=ORANGE[1],
        dashed=True,
        via=((cond.x + 0.3, gblocks.left[1]),),
    )
    legend = (
        (BLUE, "layers of this library (CAT, SA)"),
        (GREEN, "RAT: recurrent state"),
        (GREY, "frozen CLIP, inputs, outputs"),
        (ORANGE, "condition"),
    )
    for i, (colours, label) in enumerate(legend):
        box(ax, (0.15, 2.95 - 0.42 * i), (0.3, 0.26), "", colours)
        ax.text(0.45, 2.95 - 0.42 * i, label, va="center", fontsize=8.5)
    ax.text(
        cond.x + 0.5,
        4.2,
        "dashed orange: the condition\nreaches every RATBlock,\nDFBlock and prompt",
        fontsize=8.5,
        color=ORANGE[1],
        va="top",
    )
    return fig


def draw_shapes_grid() -> Figure:
    """A 4 × 4 grid of the built-in ``shapes`` data with captions."""
    from ratlip_layers.data import ShapesDataset

    data = ShapesDataset(16, image_size=64, seed=0)
    fig, axes = plt.subplots(4, 4, figsize=(8.0, 9.0))
    for index, ax in enumerate(axes.flat):
        image, caption = data[index]
        ax.imshow(((image.permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy())
        # The background on a line of its own, whatever the phrasing joins it with; neighbouring
        # titles must not run into each other.
        ax.set_title(re.sub(r" (on|against|in front of|with) ", r"\n\1 ", caption, count=1), fontsize=7.5)
        ax.axis("off")
    fig.tight_layout()
    return fig


_FIGURES: dict[str, Callable[[], Figure]] = {
    "cat_vs_rat.svg": draw_cat_vs_rat,
    "generator.svg": draw_generator,
    "shapes_data.png": draw_shapes_grid,
}


def render(fig: Figure, fmt: str) -> bytes:
    """The figure's bytes, with metadata pinned so equal drawings give equal files."""
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with plt.rc_context({"svg.hashsalt": "ratlip-docs", "svg.fonttype": "path"}):
        fig.savefig(buffer, format=fmt, metadata=metadata, dpi=110, facecolor="white")
    plt.close(fig)
    return buffer.getvalue()


def generate(out: Path) -> list[str]:
    """Draw every figure into ``out``. Returns the files written."""
    written = []
    for name, draw in _FIGURES.items():
        path = out / name
        data = render(draw(), path.suffix[1:])
        if not path.is_file() or path.read_bytes() != data:
            out.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        written.append(name)
    return written


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", lambda app: generate(Path(app.srcdir) / GENERATED))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
