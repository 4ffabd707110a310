import pytest

from ratlip_layers.training import TrainConfig


@pytest.fixture(scope="session")
def fid_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fid-cache")


@pytest.fixture
def tiny_config(tmp_path, fid_cache):
    """A few-step CPU run of the tiny preset, small enough for tests."""

    def make(**overrides):
        # clip_pretrained "none": the preset pre-trains its CLIP first, minutes, not for tests
        options = {
            "preset": "tiny", "clip_pretrained": "none", "steps": 4, "batch_size": 4, "device": "cpu",
            "out": str(tmp_path / "run"), "eval_images": 16, "fid_cache": str(fid_cache), "log_every": 1,
            "sample_every": 0, "eval_every": 0, "save_every": 0,
        }
        options.update(overrides)
        return TrainConfig.resolve(**options)

    return make
