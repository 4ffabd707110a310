"""The top level: a small set of names, and imports that cost only what they use."""

import subprocess
import sys

import pytest

import ratlip_layers


def _modules_loaded_by(statement: str) -> set[str]:
    """Top-level modules that ``statement`` imports beyond ``import torch``, in a fresh interpreter."""
    code = (
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return set(out.stdout.split())


def test_layers_import_neither_open_clip_nor_torchvision():
    loaded = _modules_loaded_by("from ratlip_layers import RATBlock, ShuffleAttention, DFBlock")
    assert not loaded & {"open_clip", "torchvision", "timm", "torchmetrics", "safetensors"}, loaded


def test_training_loads_its_names_on_first_use():
    loaded = _modules_loaded_by("import ratlip_layers.training")
    assert not loaded & {"open_clip", "tensorboard", "tqdm", "torchvision", "torchmetrics"}, loaded
    # The EMA needs no CLIP: a plain module's average loads nothing of the [train] extra either.
    loaded = _modules_loaded_by("from ratlip_layers.training import EMA; EMA(torch.nn.Linear(2, 2))")
    assert not loaded & {"open_clip", "tensorboard", "tqdm", "torchvision", "torchmetrics"}, loaded
    import ratlip_layers.training as training

    assert training.EMA is training.ema.EMA
    assert set(training.__all__) <= set(dir(training))
    with pytest.raises(AttributeError, match="has no attribute 'save_checkpoint'"):
        training.save_checkpoint  # noqa: B018 - CheckpointManager.save is the public way


def test_clip_names_load_on_first_use():
    loaded = _modules_loaded_by("import ratlip_layers\nratlip_layers.tiny_clip")
    assert "open_clip" in loaded
    assert ratlip_layers.tiny_clip is ratlip_layers.clip.tiny_clip
    assert ratlip_layers.RATLIPGenerator is ratlip_layers.models.RATLIPGenerator


def test_top_level_is_small_and_complete():
    assert len(ratlip_layers.__all__) <= 20
    for name in ratlip_layers.__all__:
        assert getattr(ratlip_layers, name) is not None
    assert set(ratlip_layers.__all__) <= set(dir(ratlip_layers))


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'set_fast_path'"):
        ratlip_layers.set_fast_path  # noqa: B018 - removed: implementations are chosen per module (impl=)
