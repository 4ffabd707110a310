import argparse
import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from ratlip_layers.models import GeneratorConfig
from ratlip_layers.training import RECIPES, TrainConfig, captioned_grid, save_images
from ratlip_layers.training.images import write_png


def test_presets_fill_unset_options():
    tiny = TrainConfig.resolve()
    assert (tiny.preset, tiny.dataset, tiny.clip_model, tiny.imsize, tiny.device) == ("tiny", "shapes", "tiny", 32, "auto")
    assert tiny.steps == RECIPES["tiny"]["steps"] and tiny.epochs is None and tiny.out == "runs/shapes-tiny"
    paper = TrainConfig.resolve(preset="paper", dataset="cub", data_dir="data/birds")
    assert (paper.lr_g, paper.lr_d, paper.sim_weight, paper.magp_weight, paper.magp_power) == (1e-4, 4e-4, 4.0, 2.0, 6.0)
    assert (paper.batch_size, paper.epochs, paper.steps, paper.imsize) == (64, 1500, None, 224)
    assert paper.generator_config() == GeneratorConfig.preset("paper")
    assert TrainConfig.resolve(preset="paper", steps=10).epochs is None


def test_json_round_trip(tmp_path):
    config = TrainConfig.resolve(steps=12, lr_g=3e-4, out=str(tmp_path))
    config.save(tmp_path / "config.json")
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == config


@pytest.mark.parametrize(
    "options, match",
    [
        ({"preset": "huge"}, "preset must be one of"), ({"dataset": "mnist"}, "dataset must be one of"),
        ({"amp": "fp8"}, "amp must be one of"), ({"steps": 0}, "steps must be a positive int"),
        ({"lr_g": -1.0}, "lr_g must be a finite number > 0, got -1.0"),
        ({"lr_d": float("nan")}, "lr_d must be a finite number > 0, got nan"),
        ({"sim_weight": float("inf")}, "sim_weight must be a finite number >= 0, got inf"),
        ({"magp_weight": "2"}, "magp_weight must be a finite number >= 0, got '2'"),
        ({"fid_features": "torchvision"}, "needs inception_weights"), ({"ema": 1.5}, "ema must be a decay"),
        ({"save_every": -1}, "save_every must be an int >= 0"),
        ({"steps": 5, "epochs": 2}, "exactly one of steps and epochs"),
        ({"colour": 1}, "unknown training options"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.resolve(**options)


def test_the_files_a_run_reads_later_are_checked_when_it_starts(tmp_path):
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"")
    cases = [
        ({"inception_weights": str(tmp_path / "missing.pth")}, f"inception_weights must be an existing file, got '{tmp_path}/missing.pth'"),
        ({"inception_weights": str(tmp_path)}, f"inception_weights must be an existing file, got '{tmp_path}'"),
        ({"inception_weights": 3}, "inception_weights must be an existing file, got 3"),
        ({"fid_reference": "no/such.npz"}, "fid_reference must be an existing file, got 'no/such.npz'"),
        ({"resume": "no/such/run"}, "resume must be 'auto' or an existing checkpoint or run directory, got 'no/such/run'"),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            TrainConfig.resolve(steps=1, fid_features="torchvision", **{"inception_weights": str(weights), **options})
    config = TrainConfig.resolve(
        steps=1, fid_features="torchvision", inception_weights=str(weights), fid_reference=str(weights), resume="auto"
    )
    assert TrainConfig.resolve(steps=1, resume=str(tmp_path)).resume == str(tmp_path)
    # A saved run's config still loads (to sample, to evaluate) once the files it named are gone.
    weights.unlink()
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match=re.escape(f"inception_weights must be an existing file, got '{weights}'")):
        config.validate()


def test_grid_places_images_beside_their_captions():
    images = torch.stack([torch.full((3, 16, 16), v) for v in (-1.0, 1.0, -1.0, 1.0)])
    images[2:, 0] = 1.0  # second row red
    grid = captioned_grid(images, ["first row", "second row"], columns=2)
    # 16 px cells are enlarged 4x to 64; the text panel is 240 px wide; padding 4.
    assert grid.size == (240 + 2 * 68 + 4, 2 * 68 + 4)
    assert grid.getpixel((240 + 4 + 10, 4 + 10)) == (0, 0, 0)
    assert grid.getpixel((240 + 4 + 68 + 10, 4 + 10)) == (255, 255, 255)
    assert grid.getpixel((240 + 4 + 10, 4 + 68 + 10)) == (255, 0, 0)
    text_panel = grid.crop((0, 0, 240, 68)).convert("L")
    assert text_panel.getextrema()[0] < 100  # the caption is drawn
    with pytest.raises(ValueError, match="len\\(captions\\) \\* columns"):
        captioned_grid(images, ["only one"], columns=2)
    lone = captioned_grid(images[:1], ["one image"], columns=1)
    assert lone.size == (240 + 68 + 4, 68 + 4) and lone.getpixel((240 + 2, 2)) == (255, 255, 255)


def test_save_images(tmp_path):
    paths = save_images(torch.zeros(3, 3, 8, 8), tmp_path / "out", prefix="x-")
    assert [p.name for p in paths] == ["x-0000.png", "x-0001.png", "x-0002.png"]
    assert Image.open(paths[0]).getpixel((0, 0)) == (128, 128, 128)  # [-1, 1] mapped to [0, 255]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]  # no temporaries


def test_grey_images_are_written_and_gridded(tmp_path):
    grey = torch.zeros(2, 1, 8, 8)
    paths = save_images(grey, tmp_path)
    assert Image.open(paths[0]).getpixel((0, 0)) == (128, 128, 128)
    assert captioned_grid(grey, ["a grey row"], columns=2).size == (240 + 2 * 68 + 4, 68 + 4)


def _image_errors(out):
    """Bad arguments of the image writers: (id, call, exception, message); ``out`` is an empty folder
    beside a file, ``out/../a-file``."""
    rgb, a_file = torch.zeros(3, 8, 8), out.parent / "a-file"
    return [
        ("2 channels", lambda: save_images(torch.zeros(1, 2, 8, 8), out), ValueError, r"images must have 1 \(grey\) or 3 \(RGB\) channels and a height and width >= 1, got shape \(1, 2, 8, 8\)"),
        ("4 channels", lambda: save_images(torch.zeros(1, 4, 8, 8), out), ValueError, r"got shape \(1, 4, 8, 8\)"),
        ("zero height", lambda: save_images(torch.zeros(1, 3, 0, 8), out), ValueError, r"height and width >= 1, got shape \(1, 3, 0, 8\)"),
        ("3-D batch", lambda: save_images(rgb, out), ValueError, r"images must be a 4-D tensor of shape \(B, C, H, W\), got shape \(3, 8, 8\)"),
        ("integer images", lambda: save_images(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), out), TypeError, "images must be a floating-point tensor, got dtype torch.uint8"),
        ("no directory", lambda: save_images(rgb[None], None), TypeError, r"directory must be a path \(str or os.PathLike\), got NoneType"),
        ("None prefix", lambda: save_images(rgb[None], out, prefix=None), TypeError, r"prefix must be a str, got NoneType \(None\)"),
        ("int prefix", lambda: save_images(rgb[None], out, prefix=3), TypeError, r"prefix must be a str, got int \(3\)"),
        ("prefix going up", lambda: save_images(rgb[None], out, prefix="../x-"), ValueError, "prefix must be a file-name prefix without path separators, got '../x-'"),
        ("prefix going down", lambda: save_images(rgb[None], out, prefix="sub/x-"), ValueError, "without path separators, got 'sub/x-'"),
        ("directory is a file", lambda: save_images(rgb[None], a_file), ValueError, f"cannot write {a_file}/0000.png: a file stands where its folder {a_file} should be"),
        ("png 2 channels", lambda: write_png(torch.zeros(2, 8, 8), out / "x.png"), ValueError, r"image must have 1 \(grey\) .* got shape \(2, 8, 8\)"),
        ("png None", lambda: write_png(None, out / "x.png"), TypeError, r"image must be a PIL.Image.Image or a \(C, H, W\) tensor, got NoneType"),
        ("png no path", lambda: write_png(rgb, None), TypeError, r"path must be a path \(str or os.PathLike\), got NoneType"),
        ("png onto a directory", lambda: write_png(rgb, out), ValueError, f"path must be a PNG file to write, got {out}, an existing directory"),
        ("png below a file", lambda: write_png(rgb, a_file / "x.png"), ValueError, f"cannot write {a_file}/x.png"),
        ("grid int captions", lambda: captioned_grid(torch.zeros(2, 3, 8, 8), [1, 2], columns=1), TypeError, r"captions\[0\] must be a str, got int \(1\)"),
        ("grid a bare caption", lambda: captioned_grid(rgb[None], "a circle", columns=1), TypeError, "wrap a single caption in a list"),
        ("grid zero width", lambda: captioned_grid(torch.zeros(1, 3, 8, 0), ["a"], columns=1), ValueError, r"got shape \(1, 3, 8, 0\)"),
        ("grid 2 channels", lambda: captioned_grid(torch.zeros(1, 2, 8, 8), ["a"], columns=1), ValueError, r"got shape \(1, 2, 8, 8\)"),
    ]


IMAGE_ERROR_IDS = [case[0] for case in _image_errors(Path("out"))]  # the ids need no folder


@pytest.mark.parametrize("case", IMAGE_ERROR_IDS)
def test_image_writers_refuse_bad_input_and_write_nothing(tmp_path, case):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "a-file").write_text("keep me")
    _, call, error, message = next(c for c in _image_errors(out) if c[0] == case)
    with pytest.raises(error, match=message):
        call()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a-file", "out"]
    assert (tmp_path / "a-file").read_text() == "keep me"


def _parser():
    parser = argparse.ArgumentParser()
    TrainConfig.add_arguments(parser)
    return parser


def test_the_command_line_is_built_from_the_fields():
    parser = _parser()
    flags = {flag for action in parser._actions for flag in action.option_strings} - {"-h", "--help"}
    assert flags == {"--" + f.name.replace("_", "-") for f in dataclasses.fields(TrainConfig)}
    assert TrainConfig.resolve(**vars(parser.parse_args([]))) == TrainConfig.resolve()
    parsed = vars(parser.parse_args(["--preset", "paper", "--epochs", "3", "--compile", "--lr-g", "2e-4"]))
    config = TrainConfig.resolve(**parsed)
    got = (config.epochs, config.steps, config.compile, config.lr_g, config.lr_d)
    assert got == (3, None, True, 2e-4, 4e-4)
    for argv in (["--steps", "1", "--epochs", "1"], ["--amp", "fp8"], ["--dataset", "mnist"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
