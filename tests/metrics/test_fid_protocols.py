"""The two Inception FID protocols, reference statistics from ``.npz`` files, and the distance itself."""

import numpy as np
import pytest
import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception
import torchvision

from ratlip_layers.clip import tiny_clip
from ratlip_layers.data import DataFileError, ShapesDataset
from ratlip_layers.metrics import (
    CLIPFeatures,
    FrechetDistance,
    InceptionFeatures,
    MetricContext,
    load_fid_statistics,
    save_fid_statistics,
)
from ratlip_layers.models import GeneratorConfig, RATLIPGenerator
from ratlip_layers.training import Evaluator


def _moments(x):
    x = np.asarray(x, dtype=np.float64)
    return x.mean(0), np.cov(x, rowvar=False)


def _numpy_fid(mu1, s1, mu2, s2):
    """The Frechet distance written out with numpy: tr(sqrt(s1 s2)) via the symmetric sqrt(s1) s2 sqrt(s1)."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r @ s2 @ r)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


class _Projection(torch.nn.Module):
    """Features that are a fixed random projection of the mean colour and its square: cheap, full rank."""

    name = "projection"
    num_features = 6

    def __init__(self):
        super().__init__()
        self.register_buffer("weight", torch.randn(6, 6, generator=torch.Generator().manual_seed(0)))

    def forward(self, images):
        m = images.float().mean((2, 3))
        return torch.cat([m, m**2], 1) @ self.weight


def test_fid_against_given_moments_matches_numpy():
    fake = torch.rand(40, 3, 4, 4) * 2 - 1 + torch.linspace(-0.3, 0.3, 40).view(40, 1, 1, 1)
    real_features = np.random.default_rng(0).normal(0.2, 1.5, size=(50, 6))
    mu, sigma = _moments(real_features)
    fid = FrechetDistance(_Projection())
    fid.set_real_moments(mu, sigma)
    for m, r in zip(fid.real_moments(), (mu, sigma)):
        np.testing.assert_allclose(m, r, rtol=1e-12, atol=1e-12)
    fid.update(fake[:25])
    fid.update(fake[25:])
    expected = _numpy_fid(*_moments(_Projection()(fake).double().numpy()), mu, sigma)
    assert fid.compute()["fid_projection"] == pytest.approx(expected, rel=1e-5)
    # The moments survive reset(), as real images' statistics do.
    fid.reset()
    np.testing.assert_allclose(fid.real_moments()[0], mu, rtol=1e-12)
    with pytest.raises(ValueError, match="do not fit projection features of 6 dimensions"):
        fid.set_real_moments(np.zeros(5), np.eye(5))


def test_real_moments_need_two_images():
    fid = FrechetDistance(_Projection())
    with pytest.raises(ValueError, match="hold 0 images"):
        fid.real_moments()


def test_npz_round_trip_and_errors(tmp_path):
    mu, sigma = np.arange(3.0), np.eye(3) * 2
    path = save_fid_statistics(tmp_path / "ref.npz", mu, sigma)
    m, s = load_fid_statistics(path)
    np.testing.assert_array_equal(m, mu)
    np.testing.assert_array_equal(s, sigma)
    assert not list(tmp_path.glob(".*tmp*"))
    np.savez(tmp_path / "bad.npz", mean=mu)
    with pytest.raises(ValueError, match="bad.npz"):
        load_fid_statistics(tmp_path / "bad.npz")
    np.savez(tmp_path / "shape.npz", mu=mu, sigma=np.eye(2))
    with pytest.raises(ValueError, match="shape.npz"):
        load_fid_statistics(tmp_path / "shape.npz")
    np.savez(tmp_path / "obj.npz", mu=np.array([object()], dtype=object), sigma=sigma)
    with pytest.raises(ValueError, match="obj.npz"):
        load_fid_statistics(tmp_path / "obj.npz")
    with pytest.raises(DataFileError, match="missing.npz"):
        load_fid_statistics(tmp_path / "missing.npz")


def test_torchvision_weights_errors(tmp_path):
    with pytest.raises(DataFileError, match="nope.pth"):
        InceptionFeatures(tmp_path / "nope.pth", protocol="torchvision")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        InceptionFeatures(tmp_path / "junk.pth", protocol="torchvision")
    torch.save({"w": torch.zeros(1)}, tmp_path / "keys.pth")
    with pytest.raises(ValueError, match="keys.pth"):
        InceptionFeatures(tmp_path / "keys.pth", protocol="torchvision")
    with pytest.raises(ValueError, match="weights_path"):
        InceptionFeatures(protocol="torchvision")
    with pytest.raises(ValueError, match="unknown FID protocol 'tf'"):
        InceptionFeatures(tmp_path / "x", protocol="tf")


@pytest.mark.parametrize("protocol", ["inception", "torchvision"])
def test_a_missing_weights_file_is_a_value_error_naming_it(tmp_path, protocol):
    # Issue #11: ``except ValueError`` must catch every bad input the library names.
    missing = tmp_path / "missing.pth"
    with pytest.raises(ValueError, match=f"Inception weights not found at {missing}"):
        InceptionFeatures(missing, protocol=protocol)
    with pytest.raises(ValueError, match="download=True"):
        InceptionFeatures(protocol=protocol)


def _calibrate_batch_norms(net, images):
    """Set every batch norm's running statistics from one batch, so that random weights give O(1) features."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    net.train()
    with torch.no_grad():
        net(images)


def _random_weights(protocol, path):
    """A weights file of the protocol's network with random (PyTorch-initialised) weights."""
    torch.manual_seed(0)
    calibration = torch.rand(2, 3, 299, 299)
    if protocol == "torchvision":
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
        _calibrate_batch_norms(net, (calibration - 0.45) / 0.225)
    else:
        # torch-fidelity's network only loads weights; build it with its random initialisation instead.
        real_load = fidelity_inception.FeatureExtractorInceptionV3.load_state_dict
        fidelity_inception.FeatureExtractorInceptionV3.load_state_dict = lambda self, state: None
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(fidelity_inception, "load_state_dict_from_url", lambda *a, **k: {})
                net = fidelity_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
        finally:
            fidelity_inception.FeatureExtractorInceptionV3.load_state_dict = real_load
        _calibrate_batch_norms(net, (calibration * 255).to(torch.uint8))
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
def test_both_protocols_score_the_same_images_against_npz_statistics(tmp_path):
    torch.manual_seed(1)
    reference_images = torch.rand(6, 3, 64, 64) * 2 - 1
    generated = (torch.rand(6, 3, 64, 64) * 2 - 1) * 0.6 + 0.2
    values = {}
    for protocol in ("inception", "torchvision"):
        features = InceptionFeatures(_random_weights(protocol, tmp_path / f"{protocol}.pth"), protocol=protocol)
        features.train()  # batch norms stay frozen whatever the caller does
        assert not any(m.training for m in features.modules() if isinstance(m, torch.nn.BatchNorm2d))
        reference_features = features(reference_images).double().numpy()
        generated_features = features(generated).double().numpy()
        assert generated_features.shape == (6, 2048)
        npz = save_fid_statistics(tmp_path / f"{protocol}.npz", *_moments(reference_features))
        fid = FrechetDistance(features)
        fid.set_real_moments(*load_fid_statistics(npz))
        fid.update(generated[:4])
        fid.update(generated[4:])
        (key, value), = fid.compute().items()
        expected = _numpy_fid(*_moments(generated_features), *_moments(reference_features))
        assert value == pytest.approx(expected, rel=1e-3)
        assert value > 0
        values[key] = value
    print("the two FID protocols on the same images (random weights):", values)
    assert set(values) == {"fid_inception", "fid_inception_torchvision"}
    a, b = values.values()
    assert not a == pytest.approx(b, rel=0.1)  # other networks, other numbers: never compare across protocols


def test_evaluator_scores_against_a_reference_npz(tmp_path):
    """FID against an .npz of the test split's own moments equals FID against the test split."""
    clip_model, tokenizer = tiny_clip()
    test_set = ShapesDataset(12, split="test")
    context = MetricContext(clip_model, tokenizer)
    kwargs = dict(dataset_id="shapes-test-32-12", dataset_name="shapes", context=context, num_images=12,
                  batch_size=6, fid_cache=tmp_path, metric_names=["fid"])
    from_images = Evaluator(test_set, **kwargs)
    npz = save_fid_statistics(tmp_path / "shapes.npz", *from_images.metrics["fid"].real_moments())
    from_npz = Evaluator(test_set, fid_reference=npz, **kwargs)
    assert from_npz.fid_cache_file == npz
    torch.manual_seed(0)
    G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
    a, b = from_images.evaluate(G), from_npz.evaluate(G)
    assert a["fid_clip"] == pytest.approx(b["fid_clip"], rel=1e-4)
    np.savez(tmp_path / "wide.npz", mu=np.zeros(7), sigma=np.eye(7))
    with pytest.raises(ValueError, match="wide.npz.*7"):
        Evaluator(test_set, fid_reference=tmp_path / "wide.npz", **kwargs)
