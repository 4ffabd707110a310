import pytest
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

from ratlip_layers.clip import tiny_clip
from ratlip_layers.data import DataFileError
from ratlip_layers.metrics import (
    CLIPFeatures,
    CLIPScore,
    FrechetDistance,
    InceptionFeatures,
    MetricContext,
    ShapesAccuracy,
    build_metrics,
    metric_names,
    prepare_real_statistics,
    register_metric,
)


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return tiny_clip()


def test_clip_score_is_100_times_the_mean_cosine(clip):
    model, tokenizer = clip
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    captions = ["a red circle", "a blue square on a white background", "x"]
    metric = CLIPScore(model, tokenizer=tokenizer)
    metric.update(images[:2], captions[:2])
    metric.update(images[2:], captions[2:])
    # Independent reference: open_clip's own encoders on normalised [0, 1] pixels.
    mean, std = (
        torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1),
        torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1),
    )
    with torch.no_grad():
        img = model.encode_image((images * 0.5 + 0.5 - mean) / std)
        txt = model.encode_text(tokenizer(captions))
    expected = 100 * F.cosine_similarity(img, txt).mean().item()
    assert metric.compute()["clip_score"] == pytest.approx(expected, abs=1e-3)


def test_fid_is_zero_for_identical_sets_and_grows_with_a_shift(clip):
    model, _ = clip
    real = torch.rand(40, 3, 32, 32) * 2 - 1
    fid = FrechetDistance(CLIPFeatures(model))
    fid.update(real, real=True)
    fid.update(real)
    same = fid.compute()["fid_clip"]
    fid.reset()
    assert int(fid.real_features_num_samples) == 40  # real statistics survive reset
    fid.update((real * 0.3 + 0.5).clamp(-1, 1))
    shifted = fid.compute()["fid_clip"]
    assert abs(same) < 1e-3 and shifted > 100 * max(abs(same), 1e-4)


class _CountedImages(torch.utils.data.Dataset):
    """Random real images that count their reads."""

    def __init__(self, n):
        self.n, self.reads = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads += 1
        return torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1, "a caption"


def test_real_statistics_are_cached_once(clip, tmp_path):
    model, _ = clip
    real = _CountedImages(20)
    first, second = FrechetDistance(CLIPFeatures(model)), FrechetDistance(CLIPFeatures(model))
    kwargs = dict(cache_dir=tmp_path, dataset_id="real-20", batch_size=8)
    assert prepare_real_statistics(first, real, **kwargs) == prepare_real_statistics(second, real, **kwargs)
    assert real.reads == 20 and int(second.real_features_num_samples) == 20
    assert not list(tmp_path.glob(".*tmp*"))
    fake = torch.rand(20, 3, 32, 32) * 2 - 1
    first.update(fake)
    second.update(fake)
    assert first.compute() == second.compute()


def test_stats_of_other_features_are_refused(clip, tmp_path):
    model, _ = clip
    fid = FrechetDistance(CLIPFeatures(model))
    with pytest.raises(ValueError, match="other features"):
        fid.load_real_statistics(
            {
                "real_features_sum": torch.zeros(5),
                "real_features_cov_sum": torch.zeros(5, 5),
                "real_features_num_samples": torch.tensor(3),
            }
        )


def test_the_cache_follows_the_features_weights(clip, tmp_path):
    model, _ = clip
    torch.manual_seed(1)
    other, _ = tiny_clip()

    def cache_file(clip_model):
        fid = FrechetDistance(CLIPFeatures(clip_model))
        return prepare_real_statistics(fid, _CountedImages(4), cache_dir=tmp_path, dataset_id="real-4")

    assert cache_file(model) == cache_file(model) != cache_file(other)


def test_inception_weights_are_checked_before_anyone_unpickles_them(tmp_path):
    with pytest.raises(DataFileError, match="Inception weights not found"):
        InceptionFeatures(tmp_path / "missing.pth")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "inception.pth"
    torch.save({"weight": Exploit()}, bad)
    with pytest.raises(ValueError, match="weights_only=True"):
        InceptionFeatures(bad)
    assert not marker.exists()


def test_registry(clip):
    model, tokenizer = clip
    assert set(metric_names("shapes")) >= {"clip_score", "fid", "shapes_accuracy"}
    assert "shapes_accuracy" not in metric_names("cub")
    metrics = build_metrics("shapes", MetricContext(model, tokenizer))
    assert isinstance(metrics["shapes_accuracy"], ShapesAccuracy)
    assert isinstance(metrics["fid"], FrechetDistance) and metrics["fid"].features_name == "clip"
    with pytest.raises(ValueError, match="do not apply to dataset 'cub'"):
        build_metrics("cub", MetricContext(model, tokenizer), ["shapes_accuracy"])
    with pytest.raises(ValueError, match="already registered"):
        register_metric("fid")(lambda context: None)
    with pytest.raises(ValueError, match="fid_features must be"):
        build_metrics("cub", MetricContext(model, tokenizer, fid_features="vgg"), ["fid"])
