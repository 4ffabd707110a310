"""GeneratorConfig: presets, serialisation and validation with clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ratlip_layers import GeneratorConfig


def test_presets():
    assert set(GeneratorConfig.presets()) == {"paper", "tiny", "galip", "galip+sa", "galip+rat", "ratlip"}
    paper = GeneratorConfig.preset("paper")
    assert (paper.image_size, paper.ngf, paper.z_dim, paper.hidden_size) == (224, 64, 100, 64)
    assert (paper.mapper_fusion, paper.fusion, paper.shuffle_attention, paper.share_cell) == (
        "rat",
        "cat",
        True,
        False,
    )
    assert (paper.sa_groups, paper.state_init, paper.prompt_blocks) == (8, "zeros", None)
    switches = {
        name: (cfg.mapper_fusion, cfg.fusion, cfg.shuffle_attention)
        for name in ("galip", "galip+sa", "galip+rat", "ratlip")
        for cfg in [GeneratorConfig.preset(name)]
    }
    assert switches == {
        "galip": ("cat", "cat", False),
        "galip+sa": ("cat", "cat", True),
        "galip+rat": ("rat", "cat", False),
        "ratlip": ("rat", "cat", True),
    }
    assert GeneratorConfig.preset("tiny", image_size=48).image_size == 48


@pytest.mark.parametrize("name", ["paper", "tiny", "galip"])
def test_dict_round_trip_through_json(name):
    cfg = GeneratorConfig.preset(name, prompt_blocks=(0, 1))
    assert GeneratorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"sa_groups": 3}, ValueError, r"ngf \(64\) must be divisible by 2 \* sa_groups \(6\)"),
        ({"ngf": 8}, ValueError, r"ngf \(8\) must be divisible by 2 \* sa_groups \(16\)"),
        (
            {"code_channels": 40},
            ValueError,
            r"code_channels \(40\) must be divisible by 2 \* sa_groups \(16\)",
        ),
        ({"fusion": "lstm"}, ValueError, r"fusion must be one of \('cat', 'rat'\), got 'lstm'"),
        ({"mapper_fusion": "RAT"}, ValueError, "mapper_fusion must be one of"),
        (
            {"state_init": "random"},
            ValueError,
            r"state_init must be one of \('zeros', 'noise'\), got 'random'",
        ),
        ({"image_size": 0}, ValueError, "image_size must be a positive int, got 0"),
        ({"hidden_size": 2.0}, TypeError, "hidden_size must be an int"),
        ({"shuffle_attention": 1}, TypeError, "shuffle_attention must be a bool"),
        ({"prompt_blocks": 3}, TypeError, "prompt_blocks must be None or a sequence"),
        ({"mapper_fusion": "cat", "share_cell": True}, ValueError, "need a RAT fusion.*share_cell=True"),
        (
            {"mapper_fusion": "cat", "state_init": "noise"},
            ValueError,
            "need a RAT fusion.*state_init='noise'",
        ),
    ],
)
def test_bad_values_raise(overrides, error, match):
    with pytest.raises(error, match=match):
        GeneratorConfig.preset("paper", **overrides)


def test_groups_only_checked_with_shuffle_attention():
    assert GeneratorConfig.preset("galip", sa_groups=3).sa_groups == 3


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        GeneratorConfig.preset("huge")
    with pytest.raises(ValueError, match=r"unknown GeneratorConfig fields \['nfg'\]"):
        GeneratorConfig.from_dict({"nfg": 64})
    with pytest.raises(dataclasses.FrozenInstanceError):
        GeneratorConfig().ngf = 32
