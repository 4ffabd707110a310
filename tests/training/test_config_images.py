import argparse
import dataclasses
import json

import pytest
import torch
from PIL import Image

from ratlip_layers.models import GeneratorConfig
from ratlip_layers.training import RECIPES, TrainConfig, captioned_grid, save_images


def test_presets_fill_unset_options():
    tiny = TrainConfig.resolve()
    assert (tiny.preset, tiny.dataset, tiny.clip_model, tiny.imsize, tiny.device) == (
        "tiny",
        "shapes",
        "tiny",
        32,
        "auto",
    )
    assert tiny.steps == RECIPES["tiny"]["steps"] and tiny.epochs is None and tiny.out == "runs/shapes-tiny"
    paper = TrainConfig.resolve(preset="paper", dataset="cub", data_dir="data/birds")
    assert (paper.lr_g, paper.lr_d, paper.sim_weight, paper.magp_weight, paper.magp_power) == (
        1e-4,
        4e-4,
        4.0,
        2.0,
        6.0,
    )
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
        ({"preset": "huge"}, "preset must be one of"),
        ({"dataset": "mnist"}, "dataset must be one of"),
        ({"amp": "fp8"}, "amp must be one of"),
        ({"steps": 0}, "steps must be a positive int"),
        ({"lr_g": -1.0}, "lr_g must be a finite number > 0, got -1.0"),
        ({"lr_d": float("nan")}, "lr_d must be a finite number > 0, got nan"),
        ({"sim_weight": float("inf")}, "sim_weight must be a finite number >= 0, got inf"),
        ({"magp_weight": "2"}, "magp_weight must be a finite number >= 0, got '2'"),
        ({"fid_features": "torchvision"}, "needs inception_weights"),
        ({"ema": 1.5}, "ema must be a decay"),
        ({"save_every": -1}, "save_every must be an int >= 0"),
        ({"steps": 5, "epochs": 2}, "exactly one of steps and epochs"),
        ({"colour": 1}, "unknown training options"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.resolve(**options)


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
