"""build_clip / tiny_clip: random initialisation that was asked for is not reported as a problem."""

import logging

from ratlip_layers import build_clip, tiny_clip

RANDOM_INIT = "No pretrained weights loaded"


def test_random_init_asked_for_is_not_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        tiny_clip()
        build_clip(
            "ViT-B-32",
            embed_dim=8,
            vision_cfg={"image_size": 16, "layers": 1, "width": 16, "patch_size": 8, "head_width": 8},
            text_cfg={"context_length": 4, "width": 16, "heads": 1, "layers": 1},
        )
    assert not [r for r in caplog.records if r.getMessage().startswith(RANDOM_INIT)]


def test_the_filter_is_removed_afterwards(caplog):
    tiny_clip()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        logging.warning(f"{RANDOM_INIT} for model 'other'.")
    assert [r.getMessage() for r in caplog.records] == [f"{RANDOM_INIT} for model 'other'."]
    assert logging.getLogger().filters == []
