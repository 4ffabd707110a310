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


def test_pretrained_none_builds_random_weights_with_one_warning(caplog):
    import logging

    from ratlip_layers.clip import build_clip, clip_spec

    with caplog.at_level(logging.WARNING):
        model, tokenizer = build_clip(
            "ViT-B-32-quickgelu", "none", embed_dim=16,
            vision_cfg=dict(image_size=16, layers=1, width=32, patch_size=8, head_width=16),
            text_cfg=dict(context_length=8, width=32, heads=2, layers=1))
    assert clip_spec(model)["pretrained"] is None
    assert len([r for r in caplog.records if "random weights" in r.getMessage()]) == 1


def test_tiny_run_clip_accepts_none():
    from ratlip_layers.training.build import build_clip_model

    model, _ = build_clip_model("tiny", "none")
    assert model is not None
