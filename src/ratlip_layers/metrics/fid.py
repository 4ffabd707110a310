"""FID: torchmetrics' Fréchet distance on features of choice, and reference statistics in ``.npz`` files.
Values are comparable only under the same features, which the result's key names."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

from .._io import write_atomic
from ..clip import CLIPImageEncoder
from ..data.errors import DataFileError
from ..layers.config import repr_of

__all__ = [
    "FID_PROTOCOLS", "CLIPFeatures", "FrechetDistance", "InceptionFeatures", "load_fid_statistics",
    "prepare_real_statistics", "save_fid_statistics",
]

FID_PROTOCOLS = ("inception", "torchvision")
"""The Inception FID protocols, never comparable; see :class:`InceptionFeatures`."""

_REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


def _existing_file(path: str | Path, what: str) -> Path:
    if not (path := Path(path)).is_file():
        raise DataFileError(f"{what} not found at {path}")
    return path


def _weights(weights_path: str | Path | None, download: bool) -> dict[str, Tensor] | None:
    """The state dict in ``weights_path`` (``None`` when downloading): read with ``weights_only=True``
    first, so that a file holding anything but tensors is refused before any other reader opens it."""
    if weights_path is None:
        if not download:
            raise ValueError("weights_path is required (or pass download=True to fetch the weights)")
        return None
    path = _existing_file(weights_path, "Inception weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickled code, corrupt and foreign files alike
        raise ValueError(f"{path} is not a state dict loadable with torch.load(weights_only=True): "
                         f"{err}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def _moments(mu: Any, sigma: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{where}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    return mu, sigma


def _fingerprint(module: nn.Module) -> str:
    """A short hash of a module's state (names, shapes, dtypes and values): equal weights, equal hash."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class CLIPFeatures(nn.Module):
    """FID features from an open_clip ViT ``clip_model`` (frozen in place, shared): the image embedding,
    for images in ``[-1, 1]``; the result key is ``fid_<name>``.

    Example:
        >>> from ratlip_layers.metrics import CLIPFeatures
        >>> features = CLIPFeatures(tiny_clip()[0])
        >>> features(torch.zeros(2, 3, 32, 32)).shape, features.num_features
        (torch.Size([2, 32]), 32)
    """

    def __init__(self, clip_model: nn.Module, *, name: str = "clip") -> None:
        super().__init__()
        self.encoder = CLIPImageEncoder(clip_model)
        self.num_features = self.encoder.embed_dim
        self.name = name

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.encoder(images.float()).embedding.float()

    extra_repr = repr_of("name", "num_features")


class InceptionFeatures(nn.Module):
    """The 2048-d InceptionV3 pool features of an FID protocol, for images in ``[-1, 1]``: ``"inception"``
    is torch-fidelity's TF-FID network (``weights-inception-2015-12-05-6726825d.pth``), as torchmetrics
    reports FID; ``"torchvision"`` is torchvision's ImageNet ``inception_v3`` (``inception_v3_google.pth``)
    on bilinear 299x299 resizes, as the DF-GAN, GALIP and RATLIP papers computed FID.

    Args:
        weights_path, protocol: the local weights file (read with ``torch.load(weights_only=True)``) of a
            protocol in :data:`FID_PROTOCOLS`; ``download`` fetches them when ``weights_path`` is ``None``.

    Example:
        >>> from ratlip_layers.metrics import InceptionFeatures
        >>> InceptionFeatures("no/such/inception_v3.pth", protocol="torchvision")
        Traceback (most recent call last):
        ...
        ratlip_layers.data.errors.DataFileError: Inception weights not found at no/such/inception_v3.pth
    """

    num_features = 2048

    def __init__(self, weights_path: str | Path | None = None, *, protocol: str = "inception",
                 download: bool = False) -> None:
        super().__init__()
        if protocol not in FID_PROTOCOLS:
            raise ValueError(f"unknown FID protocol {protocol!r}, expected one of {FID_PROTOCOLS}")
        self.protocol = protocol
        self.name = "inception" if protocol == "inception" else "inception_torchvision"
        state = _weights(weights_path, download)
        if protocol == "inception":
            path = None if weights_path is None else str(weights_path)  # torchmetrics takes a str
            self.net = NoTrainInceptionV3("inception-v3-compat", ["2048"], path)
            return
        from torchvision.models import Inception_V3_Weights, inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        state = Inception_V3_Weights.IMAGENET1K_V1.get_state_dict(progress=False) if state is None else state
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("AuxLogits.")]
        if missing or unexpected:
            raise ValueError(f"{weights_path} is not a torchvision inception_v3 state dict: "
                             f"missing keys {missing[:5]}, unexpected keys {list(unexpected)[:5]}")
        net.fc, net.AuxLogits, net.aux_logits = nn.Identity(), None, False
        self.net = net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Stay in eval mode: the protocols need frozen batch-norm statistics."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if self.protocol == "inception":
            return self.net(((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))
        x = (images.float().clamp(-1, 1) + 1) / 2
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = TF.normalize(x, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])  # ImageNet mean and std
        return self.net(x).flatten(1).float()


def load_fid_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(mu (D,), sigma (D, D))`` as float64 from an ``.npz`` file (e.g. DF-GAN's
    ``bird_val256_FIDK0.npz``), with ``allow_pickle=False``.

    Example:
        >>> from ratlip_layers.metrics import load_fid_statistics
        >>> load_fid_statistics("no/such/stats.npz")
        Traceback (most recent call last):
        ...
        ratlip_layers.data.errors.DataFileError: FID statistics not found at no/such/stats.npz
    """
    path = _existing_file(path, "FID statistics")
    try:
        with np.load(path, allow_pickle=False) as data:
            mu, sigma = data["mu"], data["sigma"]
    except Exception as err:  # noqa: BLE001 - missing keys, pickled objects, corrupt or non-npz files
        raise ValueError(f"cannot read FID statistics {path}: {err}") from None
    return _moments(mu, sigma, f"FID statistics {path}")


def save_fid_statistics(path: str | Path, mu: Any, sigma: Any) -> Path:
    """Write ``mu (D,)`` and ``sigma (D, D)`` to an ``.npz`` file at ``path``, atomically; returns ``path``.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from ratlip_layers.metrics import load_fid_statistics, save_fid_statistics
        >>> f = save_fid_statistics(os.path.join(tempfile.mkdtemp(), "ref.npz"), np.zeros(3), np.eye(3))
        >>> [a.shape for a in load_fid_statistics(f)]
        [(3,), (3, 3)]
    """
    if Path(path).is_dir():
        raise ValueError(f"FID statistics path {path} is a directory; expected a .npz file path")
    mu, sigma = _moments(mu, sigma, "FID statistics")
    content = io.BytesIO()  # a file object: numpy appends no ".npz" to the name
    np.savez(content, mu=mu, sigma=sigma)
    return write_atomic(path, content.getvalue())


class FrechetDistance(FrechetInceptionDistance):
    """torchmetrics' FID on images in ``[-1, 1]``; ``compute()`` returns ``{"fid_<features name>": v}``.

    The real statistics survive :meth:`reset`; they come from ``update(images, real=True)`` (cached by
    :func:`prepare_real_statistics`) or from published moments (:meth:`set_real_moments`).

    Args:
        features: a module mapping images to ``(B, num_features)`` with ``num_features`` and ``name``
            attributes, e.g. :class:`CLIPFeatures` or :class:`InceptionFeatures`.

    Example:
        >>> from ratlip_layers.metrics import CLIPFeatures, FrechetDistance
        >>> fid = FrechetDistance(CLIPFeatures(tiny_clip()[0]))
        >>> fid.update(torch.rand(8, 3, 32, 32) * 2 - 1, real=True)
        >>> fid.update(torch.rand(8, 3, 32, 32) * 2 - 1)
        >>> list(fid.compute())
        ['fid_clip']
    """

    def __init__(self, features: nn.Module, **kwargs: Any) -> None:
        for a in ("num_features", "name"):
            if not hasattr(features, a):
                raise TypeError(f"features must have a {a!r} attribute, {type(features).__name__} has none")
        super().__init__(feature=features, reset_real_features=False, normalize=True, **kwargs)
        self.features_name = str(features.name)

    def update(self, images: Tensor, captions: Any = None, *, real: bool = False) -> None:
        """Add images in ``[-1, 1]`` to the fake (default) or real statistics; captions are ignored."""
        super().update(images, real=real)

    def compute(self) -> dict[str, float]:
        return {f"fid_{self.features_name}": float(super().compute())}

    def load_real_statistics(self, statistics: dict[str, Tensor]) -> None:
        """Replace the real statistics (``real_features_sum``, ``_cov_sum``, ``_num_samples``)."""
        for name in _REAL_STATES:
            current, value = getattr(self, name), statistics[name]
            if value.shape != current.shape:
                raise ValueError(f"real statistic {name!r} has shape {tuple(value.shape)}, expected "
                                 f"{tuple(current.shape)} (were they computed with other features?)")
            setattr(self, name, value.to(device=current.device, dtype=current.dtype))

    def real_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The real features' mean ``(D,)`` and unbiased covariance ``(D, D)``, float64."""
        if (n := self.real_features_num_samples.double().cpu()) < 2:
            raise ValueError(f"the real statistics hold {int(n)} images; a covariance needs at least 2")
        mean = self.real_features_sum.double().cpu() / n
        cov = (self.real_features_cov_sum.double().cpu() - n * torch.outer(mean, mean)) / (n - 1)
        return mean.numpy(), cov.numpy()

    def set_real_moments(self, mu: Any, sigma: Any) -> None:
        """Score against a given mean ``(D,)`` and covariance ``(D, D)`` instead of real images.

        Example:
            >>> fid = FrechetDistance(CLIPFeatures(tiny_clip()[0]))
            >>> fid.set_real_moments(torch.ones(32), 2 * torch.eye(32))
            >>> [float(m.mean()) for m in fid.real_moments()]
            [1.0, 0.0625]
        """
        mu, sigma = (torch.as_tensor(np.asarray(m), dtype=torch.float64) for m in (mu, sigma))
        d = self.real_features_sum.shape[0]
        if mu.shape != (d,) or sigma.shape != (d, d):
            raise ValueError(f"reference statistics of shapes {tuple(mu.shape)} and {tuple(sigma.shape)} "
                             f"do not fit {self.features_name} features of {d} dimensions")
        # Stored as the sums of n = 2 pseudo-images, from which torchmetrics' mean = sum / n and
        # cov = (cov_sum - n mean mean^T) / (n - 1) give back exactly mu and sigma.
        self.load_real_statistics({
            "real_features_sum": 2 * mu, "real_features_cov_sum": sigma + 2 * torch.outer(mu, mu),
            "real_features_num_samples": torch.tensor(2),
        })


def prepare_real_statistics(metric: FrechetDistance, dataset: Dataset, *, cache_dir: str | Path,
                            dataset_id: str, batch_size: int = 64, num_workers: int = 0,
                            is_main: bool = True, reference: str | Path | None = None) -> Path:
    """Give an FID metric the real statistics of ``dataset``, computed once and cached; returns the cache
    file, or ``reference`` when given.

    Args:
        metric, dataset: the FID metric to fill, and ``(image in [-1, 1], caption)`` items.
        cache_dir, dataset_id: the cache's folder, and the data's name in the cache file's name (which
            also holds a hash of the features' weights, so other data or features never reuse it).
        is_main: whether this rank holds the statistics (under DDP only one may, or the sum counts twice).
        reference: an ``.npz`` of published statistics to score against instead; nothing is cached.

    Example:
        >>> import tempfile
        >>> from ratlip_layers.data import ShapesDataset
        >>> from ratlip_layers.metrics import CLIPFeatures, FrechetDistance, prepare_real_statistics
        >>> fid = FrechetDistance(CLIPFeatures(tiny_clip()[0]))
        >>> cache = prepare_real_statistics(fid, ShapesDataset(16, split="test"),
        ...                                 cache_dir=tempfile.mkdtemp(), dataset_id="shapes-test-32-16")
        >>> cache.name.startswith("fid-shapes-test-32-16-clip-"), int(fid.real_features_num_samples)
        (True, 16)
    """
    if reference is not None:
        mu, sigma = load_fid_statistics(reference)  # on every rank: a bad file fails everywhere alike
        if is_main:
            try:
                metric.set_real_moments(mu, sigma)
            except ValueError as err:
                raise ValueError(f"{reference}: {err}") from None
        return Path(reference)
    features = f"{metric.features_name}-{_fingerprint(metric.inception)}"
    cache_file = Path(cache_dir) / f"fid-{dataset_id}-{features}.safetensors"
    if cache_file.parent.exists() and not cache_file.parent.is_dir():  # found now, not after the pass
        raise DataFileError(f"cache_dir {cache_file.parent} is a file; the FID statistics cache needs "
                            "a directory")
    if not is_main:
        return cache_file
    if cache_file.is_file():
        metric.load_real_statistics(load_file(cache_file))
        return cache_file
    for images, _ in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        metric.update(images.to(metric.real_features_sum.device), real=True)
    statistics = {name: getattr(metric, name).detach().cpu().clone() for name in _REAL_STATES}
    return write_atomic(cache_file, lambda tmp: save_file(statistics, tmp))
