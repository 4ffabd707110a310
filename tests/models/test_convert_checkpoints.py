"""DF-GAN checkpoints into this library's DFBlock: keys, shapes, accounting, maths, file nesting.

``tests/reference_keys/dfgan_netG_keys.tsv`` lists every key and shape of DF-GAN's public ``NetG`` in
its CUB configuration (ngf=32, nz=100, cond_dim=256, 256 px), ``galip_netG_keys.tsv`` those of GALIP's
``NetG`` (CUB, ViT-B/32, without the frozen CLIP), ``galip_netD``/``galip_netC`` those of its
discriminator, all as built from the public code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from ratlip_layers.layers import DFBlock
from ratlip_layers.models.convert_checkpoints import (
    KeyAccounting,
    convert_dfgan_state_dict,
    convert_galip_discriminator,
    convert_galip_generator,
    galip_to_pretrained,
    main,
    read_checkpoint,
)
from ratlip_layers.models.discriminator import CLIPDiscriminator, NetC, NetD

from ratlip_layers.layers.convert import convert_to_rat

from ..layers.dfgan_like import DFBLK, DFGAN_CHANNELS_256, NetG

REFERENCE_KEYS = Path(__file__).resolve().parents[1] / "reference_keys"
CUB = {"ngf": 32, "nz": 100, "cond_dim": 256, "multipliers": DFGAN_CHANNELS_256}
CUB_PARAMETERS = 9_744_131  # the tsv's header


def reference_shapes(name: str = "dfgan_netG") -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in (REFERENCE_KEYS / f"{name}_keys.tsv").read_text().splitlines():
        if line.startswith("#") or line.startswith("key\t"):
            continue
        key, shape = line.split("\t")
        shapes[key] = tuple(int(s) for s in shape.strip("[]").split(", "))
    return shapes


def reference_state_dict(name: str = "dfgan_netG") -> dict[str, Tensor]:
    """A state dict with exactly the tsv's keys and shapes, random values."""
    return {key: torch.randn(shape) for key, shape in reference_shapes(name).items()}


def test_test_generator_has_exactly_dfgans_keys():
    # The DF-GAN-like generator of the tests must match the public one key for key.
    model = NetG(DFBLK, **CUB)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == reference_shapes()


def test_every_key_accounted_for_and_every_parameter_filled():
    source = reference_state_dict()
    converted, accounting = convert_dfgan_state_dict(source)
    assert accounting.source_keys() == set(source)
    assert len(source) == 226
    # 6 G-blocks x 2 fusions x 2 affines = 24 affines, 8 keys each mapped onto 4.
    assert (len(accounting.mapped), len(accounting.kept), len(accounting.dropped)) == (96, 34, 0)
    assert str(accounting) == "226 source keys: 192 mapped onto 96, 34 kept, 0 dropped"
    model = NetG(DFBlock, **CUB)
    assert set(converted) == set(model.state_dict())
    model.load_state_dict(converted, strict=True)  # every parameter filled, nothing left over
    assert sum(p.numel() for p in model.parameters()) == CUB_PARAMETERS
    assert sum(v.numel() for v in converted.values()) == CUB_PARAMETERS
    head = model.GBlocks[3].fuse1.affine2.head
    src = "GBlocks.3.fuse1.affine1.fc_beta."
    assert torch.equal(head.fc1.weight[256:], source[src + "linear1.weight"])
    assert torch.equal(head.weight2[1], source[src + "linear2.weight"])


def test_converted_model_computes_what_dfgan_computes():
    small = {"ngf": 4, "nz": 8, "cond_dim": 16, "multipliers": (8, 8, 4, 2)}
    dfgan = NetG(DFBLK, **small)
    with torch.no_grad():
        for p in dfgan.parameters():
            p.normal_(0.0, 0.2)  # trained-looking affines: nothing at its identity init
    ours = NetG(DFBlock, **small)
    converted, _ = convert_dfgan_state_dict(dfgan.state_dict())
    ours.load_state_dict(converted, strict=True)
    noise, c = torch.randn(3, 8), torch.randn(3, 16)
    torch.testing.assert_close(ours(noise, c), dfgan(noise, c), rtol=1e-5, atol=1e-6)


def test_galip_generator_fusions_convert_with_full_accounting():
    # GALIP's DFBLKs (4 mapper blocks, 6 G-blocks) have DF-GAN's layout; the other keys are kept as
    # they are (renaming them onto the galip preset is a separate step, not done here).
    source = reference_state_dict("galip_netG")
    converted, accounting = convert_dfgan_state_dict(source)
    assert accounting.source_keys() == set(source)
    assert str(accounting) == "376 source keys: 320 mapped onto 160, 56 kept, 0 dropped"
    assert sum(v.numel() for v in source.values()) == 51_830_211
    assert sum(v.numel() for v in converted.values()) == 51_830_211
    fc1 = converted["mapping.FBlocks.0.fuse2.affine2.head.fc1.weight"]
    assert fc1.shape == (128, 612)
    assert torch.equal(fc1[:64], source["mapping.FBlocks.0.fuse2.affine1.fc_gamma.linear1.weight"])


def test_pretrained_dfgan_then_one_call_conversion():
    """The whole path: a DF-GAN checkpoint into DFBlocks, then to RAT with the output layers copied."""
    small = {"ngf": 4, "nz": 8, "cond_dim": 16, "multipliers": (8, 8, 4, 2)}
    dfgan = NetG(DFBLK, **small)
    with torch.no_grad():
        for p in dfgan.parameters():
            p.normal_(0.0, 0.2)
    model = NetG(DFBlock, **small)
    model.load_state_dict(convert_dfgan_state_dict(dfgan.state_dict())[0], strict=True)
    convert_to_rat(model, DFBlock, state_init="noise", noise_dim=8)
    affine = dfgan.GBlocks[2].fuse2.affine1
    head = model.GBlocks[2].fuse2.rat.affine2.head
    assert torch.equal(head.weight2[0], affine.fc_gamma.linear2.weight)
    assert torch.equal(head.bias2[1], affine.fc_beta.linear2.bias)
    assert torch.equal(model.GBlocks[2].c_sc.weight, dfgan.GBlocks[2].c_sc.weight)
    assert model(torch.randn(2, 8), torch.randn(2, 16)).shape == (2, 3, 32, 32)


def test_standalone_affine_and_dropped_keys():
    source = {
        "net.aff.fc_gamma.linear1.weight": torch.randn(4, 6), "net.aff.fc_gamma.linear1.bias": torch.randn(4),
        "net.aff.fc_gamma.linear2.weight": torch.randn(4, 4), "net.aff.fc_gamma.linear2.bias": torch.randn(4),
        "net.aff.fc_beta.linear1.weight": torch.randn(4, 6), "net.aff.fc_beta.linear1.bias": torch.randn(4),
        "net.aff.fc_beta.linear2.weight": torch.randn(4, 4), "net.aff.fc_beta.linear2.bias": torch.randn(4),
        "net.unused.weight": torch.randn(2),
    }
    converted, accounting = convert_dfgan_state_dict(source, drop={"net.unused.weight": "never used"})
    assert sorted(converted) == ["net.aff.head.bias2", "net.aff.head.fc1.bias", "net.aff.head.fc1.weight",
                                 "net.aff.head.weight2"]
    assert accounting.dropped == {"net.unused.weight": "never used"}
    assert accounting.source_keys() == set(source)


def test_refusals():
    source = reference_state_dict()
    with pytest.raises(ValueError, match="found no DF-GAN/GALIP affine key"):
        convert_dfgan_state_dict({"fc.weight": torch.zeros(1)})
    incomplete = dict(source)
    del incomplete["GBlocks.0.fuse1.affine0.fc_beta.linear2.bias"]
    with pytest.raises(ValueError, match=r"'GBlocks.0.fuse1.affine0.' lacks \['fc_beta.linear2.bias'\]"):
        convert_dfgan_state_dict(incomplete)
    with pytest.raises(ValueError, match="does not have"):
        convert_dfgan_state_dict(source, drop={"nope": "?"})
    renumbered = {k.replace("fuse1.affine1.", "fuse1.affine2."): v for k, v in source.items()}
    with pytest.raises(ValueError, match=r"has affines \[0, 2\]"):
        convert_dfgan_state_dict(renumbered)
    bad_shape = dict(source)
    bad_shape["GBlocks.0.fuse1.affine0.fc_beta.linear1.weight"] = torch.randn(255, 356)
    with pytest.raises(ValueError, match="must have the same shapes"):
        convert_dfgan_state_dict(bad_shape)


def test_read_checkpoint_nestings(tmp_path):
    netG = {"fc.weight": torch.randn(3, 2)}
    snapshot = {
        "model": {"netG": {f"module.{k}": v for k, v in netG.items()}, "netD": {"x": torch.zeros(1)}},
        "optimizers": {"optimizer_G": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0]}]}},
        "epoch": 600,
    }
    path = tmp_path / "state_epoch_600.pth"
    torch.save(snapshot, path)
    for source in (path, str(path), snapshot, {"netG": netG}, netG):
        got = read_checkpoint(source)
        assert list(got) == ["fc.weight"] and torch.equal(got["fc.weight"], netG["fc.weight"])
    assert list(read_checkpoint(path, part="netD")) == ["x"]


def test_read_checkpoint_refuses_wrong_files(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint\['model'\] is not a state dict of netC"):
        read_checkpoint({"model": {"netG": {}, "netD": {}}}, part="netC")
    with pytest.raises(ValueError, match="is not a state dict of netG"):
        read_checkpoint({"epoch": 3})
    path = tmp_path / "pickled.pth"
    torch.save({"netG": KeyAccounting()}, path)  # an arbitrary object: weights_only refuses it
    with pytest.raises(ValueError, match="not a weights-only checkpoint"):
        read_checkpoint(path)


# --- GALIP's discriminator ---------------------------------------------------------------------


class GalipDBlock(nn.Module):
    """GALIP's D-block, from SPEC.md: ``shortcut(x) + gamma * res(x) [+ beta * f]``; builds ``conv_s``
    always, applies it only when the channels change."""

    def __init__(self, fin: int, fout: int, clip_feat: bool) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        self.conv_r = nn.Sequential(
            nn.Conv2d(fin, fout, 3, 1, 1, bias=False), nn.LeakyReLU(0.2),
            nn.Conv2d(fout, fout, 3, 1, 1, bias=False), nn.LeakyReLU(0.2),
        )
        self.conv_s = nn.Conv2d(fin, fout, 1, 1, 0)
        self.gamma = nn.Parameter(torch.zeros(1))
        if clip_feat:
            self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, feat: Tensor | None = None) -> Tensor:
        res = self.conv_r(x)
        if self.learned_shortcut:
            x = self.conv_s(x)
        return x + self.gamma * res + (self.beta * feat if feat is not None else 0)


class GalipNetD(nn.Module):
    def __init__(self, width: int, channels: int, num_maps: int = 3) -> None:
        super().__init__()
        self.DBlocks = nn.ModuleList(GalipDBlock(width, width, True) for _ in range(num_maps - 1))
        self.main = GalipDBlock(width, channels, False)

    def forward(self, maps: list[Tensor]) -> Tensor:
        out = maps[0]
        for block, feat in zip(self.DBlocks, maps[1:]):
            out = block(out, feat)
        return self.main(out)


class GalipNetC(nn.Module):
    def __init__(self, channels: int, sentence_dim: int, grid: int, joint: int) -> None:
        super().__init__()
        k1 = grid // 2 + 1
        self.joint_conv = nn.Sequential(
            nn.Conv2d(channels + sentence_dim, joint, k1, 1, 0, bias=False), nn.LeakyReLU(0.2),
            nn.Conv2d(joint, 1, grid - k1 + 1, 1, 0, bias=False),
        )

    def forward(self, out: Tensor, c: Tensor) -> Tensor:
        c = c[:, :, None, None].repeat(1, 1, out.shape[2], out.shape[3])
        return self.joint_conv(torch.cat((out, c), 1))


def test_galip_discriminator_keys_accounted_and_parameters_filled():
    net_d, net_c = reference_state_dict("galip_netD"), reference_state_dict("galip_netC")
    assert sum(v.numel() for v in (*net_d.values(), *net_c.values())) == 30_806_021
    converted, accounting = convert_galip_discriminator(net_d, net_c)
    sources = {f"netD.{k}" for k in net_d} | {f"netC.{k}" for k in net_c}
    assert accounting.source_keys() == sources
    assert sorted(accounting.dropped) == [
        "netD.DBlocks.0.conv_s.bias", "netD.DBlocks.0.conv_s.weight",
        "netD.DBlocks.1.conv_s.bias", "netD.DBlocks.1.conv_s.weight",
    ]
    assert str(accounting) == "19 source keys: 15 mapped onto 15, 0 kept, 4 dropped"
    target = nn.ModuleDict({"net_d": NetD(768, 512, 3), "net_c": NetC(512, 512, 7, 128)})
    target.load_state_dict(converted, strict=True)
    dropped = 2 * (768 * 768 + 768)
    assert sum(p.numel() for p in target.parameters()) == 30_806_021 - dropped == 29_624_837


def test_clip_discriminator_trainable_keys_are_net_d_and_net_c():
    from ratlip_layers.clip import tiny_clip

    clip_model, _ = tiny_clip()
    D = CLIPDiscriminator(clip_model, channels=32, joint_channels=16)
    galip_d, galip_c = GalipNetD(D.width, 32, len(D.layers)), GalipNetC(32, D.sentence_dim, D.grid, 16)
    converted, _ = convert_galip_discriminator(galip_d.state_dict(), galip_c.state_dict())
    D.load_trainable_state_dict(converted)  # raises on any missing or unexpected key


def test_converted_discriminator_computes_what_galip_computes():
    width, channels, grid, sentence_dim = 16, 8, 7, 12
    galip_d, galip_c = GalipNetD(width, channels), GalipNetC(channels, sentence_dim, grid, 4)
    with torch.no_grad():
        for p in (*galip_d.parameters(), *galip_c.parameters()):
            p.normal_(0.0, 0.3)  # gamma, beta non-zero: every path counts
    converted, _ = convert_galip_discriminator(galip_d.state_dict(), galip_c.state_dict())
    ours = nn.ModuleDict({"net_d": NetD(width, channels, 3), "net_c": NetC(channels, sentence_dim, grid, 4)})
    ours.load_state_dict(converted, strict=True)
    maps = [torch.randn(2, width, grid, grid) for _ in range(3)]
    sentence = torch.randn(2, sentence_dim)
    expected = galip_c(galip_d(maps), sentence).flatten()
    torch.testing.assert_close(ours["net_c"](ours["net_d"](maps), sentence), expected)


def test_a_square_shortcut_is_dropped_wherever_it_sits():
    """GALIP skips conv_s where the channels do not change, in main too (NetD channels = CLIP width)."""
    width = 16
    galip_d, galip_c = GalipNetD(width, width), GalipNetC(width, 12, 7, 4)
    converted, accounting = convert_galip_discriminator(galip_d.state_dict(), galip_c.state_dict())
    assert {"netD.main.conv_s.weight", "netD.main.conv_s.bias"} <= set(accounting.dropped)
    ours = nn.ModuleDict({"net_d": NetD(width, width, 3), "net_c": NetC(width, 12, 7, 4)})
    ours.load_state_dict(converted, strict=True)  # main's shortcut is an identity: no weights to fill


def test_galip_discriminator_refuses_foreign_keys():
    with pytest.raises(ValueError, match="not one of GALIP's NetD keys"):
        convert_galip_discriminator({"DBlocks.0.conv.weight": torch.zeros(1)}, {})
    with pytest.raises(ValueError, match="not one of GALIP's NetC keys"):
        convert_galip_discriminator({}, {"joint.0.weight": torch.zeros(1)})


# --- GALIP's generator -------------------------------------------------------------------------


class GalipMBlock(nn.Module):
    """GALIP's M-block, from SPEC.md: conv1 (in -> mid), fuse1, conv2 (mid -> out), fuse2, identity
    shortcut."""

    def __init__(self, cond_dim: int, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 3, 1, 1)
        self.fuse1 = DFBLK(cond_dim, mid_ch)
        self.conv2 = nn.Conv2d(mid_ch, out_ch, 3, 1, 1)
        self.fuse2 = DFBLK(cond_dim, out_ch)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = self.fuse1(self.conv1(x), c)
        return x + self.fuse2(self.conv2(h), c)


class GalipGBlock(nn.Module):
    """GALIP's G-block: upsample to ``size``; fuse1, c1, fuse2, c2; 1x1 ``c_sc`` when channels change."""

    def __init__(self, cond_dim: int, in_ch: int, out_ch: int, size: int) -> None:
        super().__init__()
        self.size, self.learnable_sc = size, in_ch != out_ch
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.fuse1 = DFBLK(cond_dim, in_ch)
        self.fuse2 = DFBLK(cond_dim, out_ch)
        if self.learnable_sc:
            self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x = torch.nn.functional.interpolate(x, size=(self.size, self.size))
        h = self.c2(self.fuse2(self.c1(self.fuse1(x, y)), y))
        return (self.c_sc(x) if self.learnable_sc else x) + h


class GalipMapping(nn.Module):
    """GALIP's CLIP adapter: M-blocks, conv_fuse, CLIP's ViT with prompts, conv on fuse + 0.1 * mapped.

    CLIP is run here directly on open_clip's modules (class token, positional embedding, ln_pre,
    resblocks), the prompt for ``prompt_blocks[j]`` appended before that block and dropped after it.
    """

    def __init__(self, visual: nn.Module, prompt_blocks, cond_dim, code_ch, mid_ch, n_blocks, out_ch) -> None:
        super().__init__()
        width = visual.conv1.out_channels
        self.FBlocks = nn.ModuleList(GalipMBlock(cond_dim, code_ch, mid_ch, code_ch) for _ in range(n_blocks))
        self.conv_fuse = nn.Conv2d(code_ch, width, 5, 1, 2)
        self.conv = nn.Conv2d(width, out_ch, 5, 1, 2)
        self.fc_prompt = nn.Linear(cond_dim, len(prompt_blocks) * width)
        self.__dict__["visual"] = visual  # frozen CLIP, not part of the state dict (like the tsv)
        self.prompt_blocks, self.width = tuple(prompt_blocks), width

    def forward(self, out: Tensor, c: Tensor) -> Tensor:
        for block in self.FBlocks:
            out = block(out, c)
        fuse = self.conv_fuse(out)
        b, _, g, _ = fuse.shape
        prompts = self.fc_prompt(c).view(b, -1, self.width)
        v = self.visual
        x = fuse.flatten(2).transpose(1, 2)
        x = torch.cat([v.class_embedding.expand(b, 1, -1), x], dim=1) + v.positional_embedding
        x = v.ln_pre(x)
        batch_first = getattr(v.transformer, "batch_first", False)
        for i, block in enumerate(v.transformer.resblocks):
            prompted = i in self.prompt_blocks
            if prompted:
                x = torch.cat([x, prompts[:, self.prompt_blocks.index(i)].unsqueeze(1)], dim=1)
            x = block(x) if batch_first else block(x.transpose(0, 1)).transpose(0, 1)
            if prompted:
                x = x[:, :-1]
        mapped = x[:, 1:].transpose(1, 2).reshape(b, self.width, g, g)
        return self.conv(fuse + 0.1 * mapped)


class GalipNetG(nn.Module):
    def __init__(
        self, visual, prompt_blocks, nz, cond_dim, code_ch, mid_ch, n_mblocks, grid, gblocks
    ) -> None:
        super().__init__()
        self.code_ch, self.grid = code_ch, grid
        self.fc_code = nn.Linear(nz, code_ch * grid * grid)
        self.mapping = GalipMapping(
            visual, prompt_blocks, cond_dim, code_ch, mid_ch, n_mblocks, gblocks[0][0]
        )
        self.GBlocks = nn.ModuleList(GalipGBlock(cond_dim, i, o, s) for i, o, s in gblocks)
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(gblocks[-1][1], 3, 3, 1, 1))

    def forward(self, noise: Tensor, c: Tensor) -> Tensor:
        cond = torch.cat((noise, c), dim=1)
        out = self.mapping(self.fc_code(noise).view(noise.size(0), self.code_ch, self.grid, self.grid), cond)
        for block in self.GBlocks:
            out = block(out, cond)
        return self.to_rgb(out)


def test_galip_generator_keys_fill_the_galip_preset():
    from ratlip_layers.clip import build_clip
    from ratlip_layers.models import GeneratorConfig, RATLIPGenerator

    source = reference_state_dict("galip_netG")
    source["mapping.clip_mapper.transformer.ln.weight"] = torch.ones(768)  # a frozen CLIP key, to drop
    converted, accounting = convert_galip_generator(source)
    assert accounting.source_keys() == set(source)
    assert str(accounting) == "377 source keys: 372 mapped onto 212, 4 kept, 1 dropped"
    assert list(accounting.dropped) == ["mapping.clip_mapper.transformer.ln.weight"]
    clip_model, _ = build_clip("ViT-B-32", None)
    G = RATLIPGenerator(GeneratorConfig.preset("galip"), clip_model)
    G.load_trainable_state_dict(converted)  # raises on a missing or unexpected key or a wrong shape
    assert sum(v.numel() for v in G.trainable_state_dict().values()) == 51_830_211


def test_converted_galip_generator_computes_what_galip_computes():
    from ratlip_layers.clip import tiny_clip

    clip_model, _ = tiny_clip()
    config, G, reference = _tiny_galip(clip_model)
    G.eval()
    with torch.no_grad():
        for name, p in reference.named_parameters():
            if "linear2" in name:  # trained-looking affines: the gamma/beta halves and order all count
                p.normal_(0.0, 0.1).add_(1.0 if name.endswith("fc_gamma.linear2.bias") else 0.0)
    converted, accounting = convert_galip_generator(reference.state_dict())
    assert accounting.source_keys() == set(reference.state_dict()) and not accounting.dropped
    G.load_trainable_state_dict(converted)
    noise, sentence = torch.randn(2, config.z_dim), torch.randn(2, G.sentence_dim)
    with torch.no_grad():
        torch.testing.assert_close(G(noise, sentence), reference(noise, sentence), rtol=1e-4, atol=1e-5)


def test_galip_generator_refuses_foreign_keys():
    with pytest.raises(ValueError, match="'netG.fc.weight' is not one of GALIP's NetG keys"):
        convert_galip_generator({"netG.fc.weight": torch.zeros(1)})


def _tiny_galip(clip_model):
    from ratlip_layers.models import GeneratorConfig, RATLIPGenerator

    config = GeneratorConfig.preset(
        "galip", image_size=32, ngf=8, z_dim=16, code_channels=16, mapper_mid_channels=8, mapper_blocks=2
    )
    G = RATLIPGenerator(config, clip_model)
    reference = GalipNetG(
        clip_model.visual, G.clip_mapper.prompt_blocks, config.z_dim, G.cond_dim, config.code_channels,
        config.mapper_mid_channels, config.mapper_blocks, G.grid,
        [(b.in_channels, b.out_channels, b.size) for b in G.blocks],
    ).eval()
    return config, G, reference


def test_galip_snapshot_to_save_pretrained_folder(tmp_path):
    from ratlip_layers.clip import tiny_clip
    from ratlip_layers.models import RATLIPGenerator

    clip_model, _ = tiny_clip()
    config, G, reference = _tiny_galip(clip_model)
    snapshot = tmp_path / "state_epoch_10.pth"
    torch.save({"model": {"netG": reference.state_dict(), "netD": {}, "netC": {}}, "epoch": 10}, snapshot)
    accounting = galip_to_pretrained(snapshot, tmp_path / "out", clip_model, config=config)
    assert accounting.source_keys() == set(reference.state_dict())
    loaded = RATLIPGenerator.from_pretrained(tmp_path / "out", clip_model).eval()
    noise, sentence = torch.randn(2, config.z_dim), torch.randn(2, loaded.sentence_dim)
    with torch.no_grad():
        torch.testing.assert_close(loaded(noise, sentence), reference(noise, sentence), rtol=1e-4, atol=1e-5)


def test_command_refuses_a_wrong_file_before_building_clip(tmp_path, monkeypatch):
    import ratlip_layers.clip.build as build

    def no_clip(*args, **kwargs):
        raise AssertionError("CLIP must not be built for a refused file")

    monkeypatch.setattr(build, "build_clip", no_clip)
    path = tmp_path / "netD_only.pth"
    torch.save({"model": {"netD": {"x": torch.zeros(1)}}}, path)
    with pytest.raises(ValueError, match=r"checkpoint\['model'\] is not a state dict of netG"):
        main([str(path), str(tmp_path / "out")])
