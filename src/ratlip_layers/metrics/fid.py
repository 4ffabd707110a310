"""FID: torchmetrics' Fréchet distance on features of choice, and reference statistics in ``.npz`` files.

The features decide the numbers, which are never comparable across features (the result's key names
them):

- :class:`CLIPFeatures`: an open_clip model's image embedding; nothing to download (tests, ``shapes``).
- :class:`InceptionFeatures`, protocol ``"inception"``: the TF-FID InceptionV3 ported by
  torch-fidelity, as torchmetrics and torch-fidelity report FID.
- :class:`TorchvisionInceptionFeatures`, protocol ``"torchvision"``: torchvision's ImageNet
  InceptionV3, as DF-GAN, GALIP and RATLIP computed their published FIDs, against ``.npz`` reference
  statistics (:func:`load_fid_statistics`, :meth:`FrechetDistance.set_real_moments`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

from ..clip import CLIPImageEncoder
from ..data.errors import DataFileError

__all__ = [
    "FID_PROTOCOLS",
    "CLIPFeatures",
    "FrechetDistance",
    "InceptionFeatures",
    "TorchvisionInceptionFeatures",
    "inception_features",
    "load_fid_statistics",
    "module_fingerprint",
    "save_fid_statistics",
]

FID_PROTOCOLS = ("inception", "torchvision")
"""The Inception FID protocols: ``"inception"`` (torchmetrics' TF-FID), ``"torchvision"`` (the papers')."""

_REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


def _existing_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{what} not found at {path}")
    return path


def _write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """``write`` a temporary file, then rename it: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _weights(weights_path: str | Path | None, download: bool, what: str) -> dict[str, Tensor] | None:
    """The state dict in ``weights_path`` (``None`` when downloading), read with ``weights_only=True``
    so that a file holding anything but tensors is refused before any other reader opens it."""
    if weights_path is None:
        if not download:
            raise ValueError(f"{what}: weights_path is required (or pass download=True to fetch them)")
        return None
    path = _existing_file(weights_path, what)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickled code, corrupt and foreign files alike
        raise ValueError(
            f"{path} is not a state dict loadable with torch.load(weights_only=True): {err}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def _moments(mu: Any, sigma: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{where}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    return mu, sigma


def module_fingerprint(module: nn.Module) -> str:
    """A short hash of a module's state (names, shapes, dtypes and values): equal weights, equal hash.

    Example:
        >>> from ratlip_layers.metrics import module_fingerprint
        >>> _ = torch.manual_seed(0); a = nn.Linear(2, 2)
        >>> _ = torch.manual_seed(0); b = nn.Linear(2, 2)
        >>> module_fingerprint(a) == module_fingerprint(b), module_fingerprint(a) == module_fingerprint(nn.Linear(2, 2))
        (True, False)
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class CLIPFeatures(nn.Module):
    """FID features from a CLIP model: the image embedding, for images in ``[-1, 1]``.

    Args:
        clip_model: an open_clip ViT model (frozen in place; shared, not copied).
        name: how the features are called in the result key (``fid_<name>``).

    Example:
        >>> from ratlip_layers.clip import tiny_clip
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

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_features={self.num_features}"


class InceptionFeatures(nn.Module):
    """The ``"inception"`` protocol's features: torch-fidelity's TF-FID InceptionV3, 2048-d pool output.

    Args:
        weights_path: a local copy of torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``.
        download: let torch-fidelity fetch the weights when ``weights_path`` is ``None``.

    Example:
        >>> from ratlip_layers.metrics import InceptionFeatures
        >>> InceptionFeatures("no/such/weights.pth")
        Traceback (most recent call last):
        ...
        ratlip_layers.data.errors.DataFileError: Inception weights not found at no/such/weights.pth
    """

    num_features = 2048
    name = "inception"

    def __init__(self, weights_path: str | Path | None = None, *, download: bool = False) -> None:
        super().__init__()
        _weights(weights_path, download, "Inception weights")
        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=[str(self.num_features)],
            feature_extractor_weights_path=None if weights_path is None else str(weights_path),
        )

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.net(((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))


class TorchvisionInceptionFeatures(nn.Module):
    """The ``"torchvision"`` protocol's features (DF-GAN, GALIP, RATLIP): torchvision's ImageNet
    InceptionV3, 2048-d pool3 output, on images resized bilinearly to 299x299 and normalised with the
    ImageNet mean and std; the network stays in eval mode.

    Args:
        weights_path: a ``torch.save``-d state dict of ``torchvision.models.inception_v3``
            (e.g. ``Inception_V3_Weights.IMAGENET1K_V1``).
        download: fetch torchvision's ImageNet weights when ``weights_path`` is ``None``.

    Example:
        >>> from ratlip_layers.metrics import TorchvisionInceptionFeatures
        >>> TorchvisionInceptionFeatures("no/such/inception_v3.pth")
        Traceback (most recent call last):
        ...
        ratlip_layers.data.errors.DataFileError: torchvision Inception weights not found at no/such/inception_v3.pth
        >>> features = TorchvisionInceptionFeatures("inception_v3_google.pth")  # doctest: +SKIP
        >>> features(torch.zeros(2, 3, 64, 64)).shape  # doctest: +SKIP
        torch.Size([2, 2048])
    """

    num_features = 2048
    name = "inception_torchvision"

    def __init__(self, weights_path: str | Path | None = None, *, download: bool = False) -> None:
        super().__init__()
        from torchvision.models import Inception_V3_Weights, inception_v3

        state = _weights(weights_path, download, "torchvision Inception weights")
        if state is None:
            state = Inception_V3_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("AuxLogits.")]
        if missing or unexpected:
            raise ValueError(
                f"{weights_path} is not a torchvision inception_v3 state dict: "
                f"missing keys {missing[:5]}, unexpected keys {list(unexpected)[:5]}"
            )
        net.fc, net.AuxLogits, net.aux_logits = nn.Identity(), None, False
        self.net = net.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> TorchvisionInceptionFeatures:
        """Stay in eval mode: the protocol needs frozen batch-norm statistics."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = (images.float().clamp(-1, 1) + 1) / 2
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std).flatten(1).float()


def inception_features(
    protocol: str, weights_path: str | Path | None = None, *, download: bool = False
) -> nn.Module:
    """The feature extractor of an Inception FID protocol (see :data:`FID_PROTOCOLS`).

    Args:
        protocol: ``"inception"`` (:class:`InceptionFeatures`) or ``"torchvision"``
            (:class:`TorchvisionInceptionFeatures`).
        weights_path: the local weights file of that protocol's network.
        download: allow downloading the weights when ``weights_path`` is ``None``.

    Returns:
        The feature module.

    Example:
        >>> from ratlip_layers.metrics import inception_features
        >>> inception_features("tf")
        Traceback (most recent call last):
        ...
        ValueError: unknown FID protocol 'tf', expected one of ('inception', 'torchvision')
    """
    classes = {"inception": InceptionFeatures, "torchvision": TorchvisionInceptionFeatures}
    if protocol not in classes:
        raise ValueError(f"unknown FID protocol {protocol!r}, expected one of {FID_PROTOCOLS}")
    return classes[protocol](weights_path, download=download)


def load_fid_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read reference statistics from an ``.npz`` file with keys ``mu`` ``(D,)`` and ``sigma`` ``(D, D)``,
    opened with ``allow_pickle=False`` so that it cannot run code.

    Args:
        path: the ``.npz`` file (e.g. the DF-GAN/GALIP ``bird_val256_FIDK0.npz``).

    Returns:
        ``(mu, sigma)`` as float64 arrays.

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
    """Write ``mu`` ``(D,)`` and ``sigma`` ``(D, D)`` to an ``.npz`` file at ``path``, atomically.

    Returns:
        The path written.

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

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy appends no ".npz" to the name
            np.savez(f, mu=mu, sigma=sigma)

    return _write_atomic(path, write)


class FrechetDistance(FrechetInceptionDistance):
    """torchmetrics' FID on images in ``[-1, 1]`` with features of choice; ``compute()`` returns
    ``{"fid_<features name>": value}``.

    The real statistics survive :meth:`reset` and are summed across DDP ranks by torchmetrics. They
    come from real images (``update(images, real=True)``, cached by :meth:`load_or_compute_real`) or
    from a published mean and covariance (:meth:`set_real_moments`).

    Args:
        features: :class:`CLIPFeatures`, an Inception features module, or any module mapping images
            in ``[-1, 1]`` to ``(B, num_features)`` with ``num_features`` and ``name`` attributes.

    Example:
        >>> from ratlip_layers.clip import tiny_clip
        >>> from ratlip_layers.metrics import CLIPFeatures, FrechetDistance
        >>> fid = FrechetDistance(CLIPFeatures(tiny_clip()[0]))
        >>> fid.update(torch.rand(8, 3, 32, 32) * 2 - 1, real=True)
        >>> fid.update(torch.rand(8, 3, 32, 32) * 2 - 1)
        >>> list(fid.compute())
        ['fid_clip']
    """

    def __init__(self, features: nn.Module, **kwargs: Any) -> None:
        for attr in ("num_features", "name"):
            if not hasattr(features, attr):
                raise TypeError(
                    f"features must have a {attr!r} attribute, {type(features).__name__} has none"
                )
        super().__init__(feature=features, reset_real_features=False, normalize=True, **kwargs)
        self.features_name = str(features.name)

    def update(self, images: Tensor, captions: Any = None, *, real: bool = False) -> None:
        """Add images in ``[-1, 1]`` to the fake (default) or real statistics; captions are ignored."""
        super().update(images, real=real)

    def compute(self) -> dict[str, float]:
        return {f"fid_{self.features_name}": float(super().compute())}

    def real_statistics(self) -> dict[str, Tensor]:
        """The real images' sums (features, outer products, count), for :meth:`load_real_statistics`."""
        return {name: getattr(self, name).detach().cpu().clone() for name in _REAL_STATES}

    def load_real_statistics(self, statistics: dict[str, Tensor]) -> None:
        """Replace the real statistics with ones from :meth:`real_statistics`."""
        for name in _REAL_STATES:
            current, value = getattr(self, name), statistics[name]
            if value.shape != current.shape:
                raise ValueError(
                    f"real statistic {name!r} has shape {tuple(value.shape)}, expected "
                    f"{tuple(current.shape)} (were they computed with other features?)"
                )
            setattr(self, name, value.to(device=current.device, dtype=current.dtype))

    def real_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The real features' mean ``(D,)`` and unbiased covariance ``(D, D)`` as float64 arrays, what
        :func:`save_fid_statistics` stores."""
        n = self.real_features_num_samples.double().cpu()
        if n < 2:
            raise ValueError(f"the real statistics hold {int(n)} images; a covariance needs at least 2")
        mean = self.real_features_sum.double().cpu() / n
        cov = (self.real_features_cov_sum.double().cpu() - n * torch.outer(mean, mean)) / (n - 1)
        return mean.numpy(), cov.numpy()

    def set_real_moments(self, mu: Any, sigma: Any) -> None:
        """Score against a given mean ``(D,)`` and covariance ``(D, D)`` (e.g. from
        :func:`load_fid_statistics`) instead of real images.

        Example:
            >>> import numpy as np
            >>> from ratlip_layers.clip import tiny_clip
            >>> from ratlip_layers.metrics import CLIPFeatures, FrechetDistance
            >>> fid = FrechetDistance(CLIPFeatures(tiny_clip()[0]))
            >>> fid.set_real_moments(np.ones(32), 2 * np.eye(32))
            >>> [float(m.mean()) for m in fid.real_moments()]
            [1.0, 0.0625]
        """
        mu, sigma = (torch.as_tensor(np.asarray(m), dtype=torch.float64) for m in (mu, sigma))
        d = self.real_features_sum.shape[0]
        if mu.shape != (d,) or sigma.shape != (d, d):
            raise ValueError(
                f"reference statistics of shapes {tuple(mu.shape)} and {tuple(sigma.shape)} do not fit "
                f"{self.features_name} features of {d} dimensions"
            )
        # Stored as the sums of n = 2 pseudo-images, from which torchmetrics' mean = sum / n and
        # cov = (cov_sum - n mean mean^T) / (n - 1) give back exactly mu and sigma.
        self.load_real_statistics({
            "real_features_sum": 2 * mu,
            "real_features_cov_sum": sigma + 2 * torch.outer(mu, mu),
            "real_features_num_samples": torch.tensor(2),
        })

    def load_or_compute_real(self, cache_file: str | Path, images: Callable[[], Iterable[Tensor]]) -> bool:
        """Load the real statistics from ``cache_file``, or compute them from ``images()`` and save them.

        Args:
            cache_file: a ``.safetensors`` file whose name identifies the data and the features
                (see :func:`module_fingerprint`).
            images: called only on a cache miss; yields batches of real images in ``[-1, 1]``.

        Returns:
            ``True`` if the cache was used.
        """
        if Path(cache_file).is_file():
            self.load_real_statistics(load_file(cache_file))
            return True
        for batch in images():
            self.update(batch, real=True)
        _write_atomic(cache_file, lambda tmp: save_file(self.real_statistics(), tmp))
        return False
