import numpy as np
import pytest
import torch
import torchvision

from ratlip_layers.metrics import (
    StatisticsFID,
    TorchvisionInceptionFeatures,
    feature_statistics,
    frechet_distance,
    inception_features,
    load_fid_statistics,
    save_fid_statistics,
)


def _numpy_fid(mu1, s1, mu2, s2):
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r @ s2 @ r)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def test_frechet_distance_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 6)), rng.normal(1, 2, size=(60, 6))
    (m1, s1), (m2, s2) = feature_statistics(a), feature_statistics(b)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(_numpy_fid(m1, s1, m2, s2), rel=1e-6)


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
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_fid_statistics(tmp_path / "missing.npz")


def test_torchvision_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        TorchvisionInceptionFeatures(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        TorchvisionInceptionFeatures(tmp_path / "junk.pth")
    torch.save({"w": torch.zeros(1)}, tmp_path / "keys.pth")
    with pytest.raises(ValueError, match="keys.pth"):
        TorchvisionInceptionFeatures(tmp_path / "keys.pth")
    with pytest.raises(ValueError, match="weights_path"):
        inception_features("torchvision")
    with pytest.raises(ValueError, match="unknown FID protocol"):
        inception_features("tf", tmp_path / "x")


def test_torchvision_protocol_random_weights(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    torch.save(net.state_dict(), tmp_path / "inc.pth")
    features = inception_features("torchvision", tmp_path / "inc.pth")
    assert not features.train().training
    images = torch.rand(4, 3, 64, 64) * 2 - 1
    feats = features(images)
    assert feats.shape == (4, 2048)
    ref = torch.rand(4, 3, 64, 64) * 2 - 1
    mu, sigma = feature_statistics(features(ref))
    save_fid_statistics(tmp_path / "ref.npz", mu, sigma)
    fid = StatisticsFID(features, tmp_path / "ref.npz")
    fid.update(images[:2])
    fid.update(images[2:])
    value = fid.compute()["fid_inception_torchvision"]
    m2, s2 = feature_statistics(feats)
    assert value == pytest.approx(_numpy_fid(m2, s2, mu, sigma), rel=1e-3, abs=1e-6)
    print("torchvision-protocol FID (random weights):", value)
