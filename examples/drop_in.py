"""Turn a residual DF-GAN-style generator into a RAT one: in one call, or with explicit state.

DF-GAN's generator does not call its fusion blocks in one flat loop: ``NetG.forward`` calls
``G_Block.forward``, which returns ``shortcut(x) + residual(x, y)``, and the two fusions sit inside
``residual()``; the channels change from block to block, with a learnable 1x1 shortcut. ``GBlock``
and ``NetG`` below have that structure, on this library's CAT block :class:`DFBlock`.

1. ``convert_to_rat(netG, DFBlock, ...)`` replaces every ``DFBlock`` by a RAT block with the same
   signature and threads one LSTM memory through them, reset at every forward. The user adds
   2 lines, the import and the call; ``GBlock`` and ``NetG`` stay as they are.
2. With explicit state (:class:`RATBlock`, ``x, state = block(x, y, state)``), every function
   between the state's start and the fusions takes the state and gives it back: ``RATGBlock`` and
   ``RATNetG``, the lines marked ``# +``. The example counts them by diffing the classes' sources.

On the same weights both compute the same thing, and at init (identity modulation heads, the CAT
output layers copied) the converted generator computes exactly what the DF-GAN one does.
See docs/concepts/converting.rst.

Run: ``python examples/drop_in.py``
"""

from __future__ import annotations

import ast
import copy
import difflib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ratlip_layers import DFBlock, RATBlock, StateFromNoise, convert_to_rat

NZ, TEXT, NGF, HIDDEN = 8, 16, 8, 64
CHANNELS = (4 * NGF, 4 * NGF, 2 * NGF, NGF)  # 4x4 input -> three G-blocks -> 32x32


# --- DF-GAN's generator (CAT): each fusion on its own ------------------------------------------


class GBlock(nn.Module):
    def __init__(self, cond_dim, in_ch, out_ch):
        super().__init__()
        self.fuse1 = DFBlock(cond_dim, in_ch)
        self.fuse2 = DFBlock(cond_dim, out_ch)
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)  # learnable shortcut: the channels change

    def residual(self, x, y):
        h = self.fuse1(x, y)
        h = self.c1(h)
        h = self.fuse2(h, y)
        return self.c2(h)

    def forward(self, x, y):
        x = F.interpolate(x, scale_factor=2)
        return self.c_sc(x) + self.residual(x, y)


class NetG(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(NZ, CHANNELS[0] * 4 * 4)
        cond_dim = NZ + TEXT
        pairs = zip(CHANNELS[:-1], CHANNELS[1:])
        self.GBlocks = nn.ModuleList([GBlock(cond_dim, i, o) for i, o in pairs])
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(CHANNELS[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, noise, c):
        out = self.fc(noise).view(-1, CHANNELS[0], 4, 4)
        cond = torch.cat((noise, c), dim=1)
        for block in self.GBlocks:
            out = block(out, cond)
        return self.to_rgb(out)


# --- the same generator with explicit state: one LSTM cell shared, the state from the noise ----


class RATGBlock(nn.Module):
    def __init__(self, cond_dim, in_ch, out_ch, cell):  # +
        super().__init__()
        self.fuse1 = RATBlock(cond_dim, in_ch, HIDDEN, cell=cell)  # +
        self.fuse2 = RATBlock(cond_dim, out_ch, HIDDEN, cell=cell)  # +
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)  # learnable shortcut: the channels change

    def residual(self, x, y, state):  # +
        h, state = self.fuse1(x, y, state)  # +
        h = self.c1(h)
        h, state = self.fuse2(h, y, state)  # +
        return self.c2(h), state  # +

    def forward(self, x, y, state):  # +
        x = F.interpolate(x, scale_factor=2)
        h, state = self.residual(x, y, state)  # +
        return self.c_sc(x) + h, state  # +


class RATNetG(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(NZ, CHANNELS[0] * 4 * 4)
        cond_dim = NZ + TEXT
        pairs = zip(CHANNELS[:-1], CHANNELS[1:])
        cell = nn.LSTMCell(cond_dim, HIDDEN)  # +
        self.GBlocks = nn.ModuleList([RATGBlock(cond_dim, i, o, cell) for i, o in pairs])  # +
        self.state_init = StateFromNoise(NZ, HIDDEN)  # +
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(CHANNELS[-1], 3, 3, 1, 1), nn.Tanh())

    def forward(self, noise, c):
        out = self.fc(noise).view(-1, CHANNELS[0], 4, 4)
        cond = torch.cat((noise, c), dim=1)
        state = self.state_init(noise)  # +
        for block in self.GBlocks:
            out, state = block(out, cond, state)  # +
        return self.to_rgb(out)


# --- measuring and checking ----------------------------------------------------------------------


def class_source(name: str) -> list[str]:
    """The lines of class ``name`` in this file, with ``RAT`` taken off the class names."""
    text = Path(__file__).read_text()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == name)
    lines = text.splitlines()[node.lineno - 1 : node.end_lineno]
    return [line.replace("RATGBlock", "GBlock").replace("RATNetG", "NetG") for line in lines]


def changed_lines(old: str, new: str) -> int:
    """Lines of class ``new`` that are not in class ``old`` (changed or added), by a line diff."""
    a, b = class_source(old), class_source(new)
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return sum(j2 - j1 for tag, _, _, j1, j2 in ops if tag in ("replace", "insert"))


def to_explicit_keys(converted_key: str) -> str:
    """A converted model's state-dict key as the explicit-state model names it."""
    return converted_key.replace(".rat.", ".").replace("rat_memory.init.", "state_init.")


def off_identity_(model: nn.Module) -> nn.Module:
    """Give every modulation head non-zero output weights, as training would, so the state matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("weight2", "bias2")):
                p.add_(torch.randn_like(p) * 0.3)
    return model


def main() -> dict:
    torch.manual_seed(0)
    noise, c = torch.randn(4, NZ), torch.randn(4, TEXT)
    dfgan = NetG().eval()

    # 1. One call (in place; the copy only keeps the DF-GAN model for the comparison). With the
    #    import of convert_to_rat, the 2 lines a user adds.
    rat = convert_to_rat(copy.deepcopy(dfgan), DFBlock, state_init="noise", noise_dim=NZ)
    with torch.no_grad():
        at_init = torch.equal(rat(noise, c), dfgan(noise, c))

    # 2. Explicit state, on the same weights once the heads have left the identity (as training
    #    would), so that the recurrent state matters.
    off_identity_(rat)
    explicit = RATNetG().eval()
    explicit.load_state_dict({to_explicit_keys(k): v for k, v in rat.state_dict().items()})
    with torch.no_grad():
        images = {"dfgan": dfgan(noise, c), "converted": rat(noise, c), "explicit": explicit(noise, c)}
    same = torch.equal(images["converted"], images["explicit"])
    counts = {"GBlock": changed_lines("GBlock", "RATGBlock"), "NetG": changed_lines("NetG", "RATNetG")}
    try:  # the explicit way's old silent failure, now loud
        explicit.GBlocks[0].fuse1(torch.randn(4, CHANNELS[0], 8, 8), torch.randn(4, NZ + TEXT))
        forgotten = "no error"
    except TypeError as error:
        forgotten = f"TypeError: {error}"

    print(f"DF-GAN NetG, channels {' -> '.join(map(str, CHANNELS))}: images {tuple(images['dfgan'].shape)}")
    print("convert_to_rat: 2 lines changed (the import and the call); GBlock and NetG untouched")
    print(f"  at init, converted == DF-GAN: {at_init}")
    print(
        f"explicit state: {sum(counts.values())} lines changed "
        f"({counts['GBlock']} in GBlock, {counts['NetG']} in NetG), plus the import"
    )
    print(f"  same weights, heads off the identity: converted == explicit: {same}")
    print(f"  a call that forgets the state: {forgotten}")
    return {
        "dfgan": dfgan, "converted": rat, "explicit": explicit, "inputs": (noise, c), "images": images,
        "at_init": at_init, "same": same, "counts": counts, "forgotten": forgotten,
    }


if __name__ == "__main__":
    main()
