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
    module_fingerprint,
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


def test_real_statistics_are_cached_once(clip, tmp_path):
    model, _ = clip
    real = torch.rand(20, 3, 32, 32) * 2 - 1
    fake = torch.rand(20, 3, 32, 32) * 2 - 1
    first = FrechetDistance(CLIPFeatures(model))
    calls = []

    def batches():
        calls.append(1)
        yield real[:10]
        yield real[10:]

    assert first.load_or_compute_real(tmp_path / "stats.safetensors", batches) is False
    second = FrechetDistance(CLIPFeatures(model))
    assert second.load_or_compute_real(tmp_path / "stats.safetensors", batches) is True
    assert calls == [1]
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


def test_fingerprint_follows_the_weights(clip):
    model, _ = clip
    features = CLIPFeatures(model)
    torch.manual_seed(1)
    other, _ = tiny_clip()
    assert module_fingerprint(features) == module_fingerprint(CLIPFeatures(model))
    assert module_fingerprint(features) != module_fingerprint(CLIPFeatures(other))


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
