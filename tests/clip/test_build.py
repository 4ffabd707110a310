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


TINY = dict(embed_dim=16, vision_cfg=dict(image_size=16, layers=1, width=32, patch_size=8, head_width=16),
            text_cfg=dict(context_length=8, width=32, heads=2, layers=1))


class _NotATensor:
    pass


def test_unknown_model_name_is_refused_with_close_matches():
    import pytest

    with pytest.raises(ValueError, match=r"open_clip model name, got 'ViT-B-23'; did you mean 'ViT-B-32'"):
        build_clip("ViT-B-23")


def test_pretrained_that_is_neither_tag_nor_file_names_both(tmp_path):
    import pytest

    with pytest.raises(ValueError, match=r"tag of ViT-B-32 \(.*'openai'.*got '.*missing.pt' \(no such file\)"):
        build_clip("ViT-B-32", str(tmp_path / "missing.pt"), **TINY)
    with pytest.raises(ValueError, match=r"\(a directory\)"):
        build_clip("ViT-B-32", str(tmp_path), **TINY)


def test_unreadable_weights_files_are_named(tmp_path):
    import os

    import pytest
    import torch

    (tmp_path / "notes.txt").write_text("these are not weights\n")
    (tmp_path / "noise.bin").write_bytes(os.urandom(512))
    (tmp_path / "noise.safetensors").write_bytes(os.urandom(512))
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({}, tmp_path / "nothing.pt")
    for name in ("notes.txt", "noise.bin", "noise.safetensors", "empty.pt", "nothing.pt"):
        with pytest.raises(ValueError, match=rf"{name} is not a readable weights file"):
            build_clip("ViT-B-32", str(tmp_path / name), **TINY)


def test_a_pickle_with_objects_is_refused_unread(tmp_path):
    import pytest
    import torch

    torch.save({"visual.proj": _NotATensor()}, tmp_path / "objects.pt")
    with pytest.raises(ValueError, match=r"objects.pt holds objects other than tensors \(.*_NotATensor\); it is refused unread"):
        build_clip("ViT-B-32", str(tmp_path / "objects.pt"), **TINY)


def test_weights_of_another_architecture_are_refused(tmp_path):
    import pytest
    import torch

    other, _ = tiny_clip()
    torch.save(other.state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(ValueError, match=r"tiny.pt does not hold weights of ViT-B-32"):
        build_clip("ViT-B-32", str(tmp_path / "tiny.pt"), **TINY)


def test_a_weights_file_round_trips(tmp_path):
    import torch
    from safetensors.torch import save_file

    from ratlip_layers.clip import clip_spec

    torch.manual_seed(0)
    source, _ = build_clip("ViT-B-32", **TINY)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "w.safetensors")
    for name in ("w.pt", "w.safetensors"):
        loaded, _ = build_clip("ViT-B-32", str(tmp_path / name), **TINY)
        assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values()))
        assert clip_spec(loaded)["pretrained"] == str(tmp_path / name)
