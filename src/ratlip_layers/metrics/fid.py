"""FID from torchmetrics, with feature extractors that work offline and cached real statistics.

The Fréchet distance itself is torchmetrics' ``FrechetInceptionDistance``; this module only chooses
its features:

- :class:`InceptionFeatures`: the standard InceptionV3 pool features (2048), the numbers papers
  report. The weights are torch-fidelity's; pass a local copy with ``weights_path`` when offline.
- :class:`CLIPFeatures`: the image embedding of any open_clip ViT, e.g. the run's own CLIP. Needs no
  download, so it works in tests and on the built-in ``shapes`` data; its values are not comparable
  with published (Inception) FIDs, which is why the result's key names the features.

Two Inception protocols exist and their numbers are **not** comparable (see :data:`FID_PROTOCOLS`):

- ``"inception"``: :class:`InceptionFeatures`, the TF-FID Inception ported by torch-fidelity, as
  torchmetrics and torch-fidelity compute FID.
- ``"torchvision"``: :class:`TorchvisionInceptionFeatures`, torchvision's ImageNet InceptionV3 pool3
  features, as DF-GAN, GALIP and RATLIP compute the FIDs of their published tables, against
  reference statistics stored as ``.npz`` files (:func:`load_fid_statistics`,
  :meth:`FrechetDistance.set_real_moments`).

Every distance is torchmetrics' (:class:`FrechetDistance`), whichever the features.
"""

from __future__ import annotations

import hashlib
import os
import pickle
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
"""The Inception FID protocols: ``"inception"`` (torchmetrics' TF-FID), ``"torchvision"`` (the DF-GAN/GALIP/RATLIP papers')."""

_REAL_STATES = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


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
    """The standard FID features: InceptionV3's 2048-d pool output (torch-fidelity's network).

    Args:
        weights_path: a local copy of torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``.
            ``None`` downloads it (through torch-fidelity) on first use. The file is first opened
            with ``torch.load(weights_only=True)``, so a file holding anything but tensors is refused
            before torch-fidelity reads it.

    Example:
        >>> from ratlip_layers.metrics import InceptionFeatures
        >>> InceptionFeatures("no/such/weights.pth")
        Traceback (most recent call last):
        ...
        FileNotFoundError: Inception weights not found at no/such/weights.pth
    """

    num_features = 2048
    name = "inception"

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        if weights_path is not None:
            path = Path(weights_path)
            if not path.is_file():
                raise FileNotFoundError(f"Inception weights not found at {path}")
            try:
                torch.load(path, map_location="cpu", weights_only=True)
            except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
                raise ValueError(
                    f"{path} is not a plain state dict loadable with weights_only=True: {err}"
                ) from None
            weights_path = str(path)
        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=[str(self.num_features)],
            feature_extractor_weights_path=weights_path,
        )

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return self.net(pixels)


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class TorchvisionInceptionFeatures(nn.Module):
    """The papers' FID features: torchvision's ImageNet InceptionV3, 2048-d pool3 (``avgpool``) output.

    This is the protocol of DF-GAN, GALIP and RATLIP: images are resized bilinearly to 299x299,
    normalised with the ImageNet mean and std and fed to ``torchvision.models.inception_v3`` in
    eval mode; the features are the flattened ``avgpool`` output before ``fc``.

    Args:
        weights_path: a state dict of ``torchvision.models.inception_v3`` saved with ``torch.save``
            (e.g. ``Inception_V3_Weights.IMAGENET1K_V1``), read with ``torch.load(weights_only=True)``.
            ``None`` is allowed only with ``download=True``.
        download: fetch torchvision's ImageNet weights when ``weights_path`` is ``None``.

    Example:
        >>> from ratlip_layers.metrics import TorchvisionInceptionFeatures
        >>> TorchvisionInceptionFeatures("no/such/inception_v3.pth")
        Traceback (most recent call last):
        ...
        FileNotFoundError: torchvision Inception weights not found at no/such/inception_v3.pth
        >>> features = TorchvisionInceptionFeatures("inception_v3_google.pth")  # doctest: +SKIP
        >>> features(torch.zeros(2, 3, 64, 64)).shape  # doctest: +SKIP
        torch.Size([2, 2048])
    """

    num_features = 2048
    name = "inception_torchvision"

    def __init__(self, weights_path: str | Path | None = None, *, download: bool = False) -> None:
        super().__init__()
        from torchvision.models import Inception_V3_Weights, inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        if weights_path is None:
            if not download:
                raise ValueError("weights_path is required (or pass download=True to fetch torchvision's weights)")
            state = Inception_V3_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            net.load_state_dict(state)
        else:
            path = Path(weights_path)
            if not path.is_file():
                raise FileNotFoundError(f"torchvision Inception weights not found at {path}")
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
                raise ValueError(f"{path} is not a state dict loadable with torch.load(weights_only=True): {err}") from None
            if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
                raise ValueError(f"{path} does not hold a state dict of tensors")
            missing, unexpected = net.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith("AuxLogits.")]
            if missing or unexpected:
                raise ValueError(
                    f"{path} is not a torchvision inception_v3 state dict: "
                    f"missing keys {missing[:5]}, unexpected keys {list(unexpected)[:5]}"
                )
        net.fc = nn.Identity()
        net.AuxLogits = None
        net.aux_logits = False
        self.net = net.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> TorchvisionInceptionFeatures:
        """Stay in eval mode: the protocol needs frozen batch-norm statistics."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Map images in ``[-1, 1]`` of any size to ``(B, 2048)`` pool3 features."""
        x = (images.float().clamp(-1, 1) + 1) / 2
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        return self.net(x).flatten(1).float()


def inception_features(protocol: str, weights_path: str | Path | None = None, *, download: bool = False) -> nn.Module:
    """The Inception feature extractor of an FID protocol.

    Args:
        protocol: ``"inception"`` (torchmetrics / torch-fidelity TF-FID numbers) or ``"torchvision"``
            (the DF-GAN/GALIP/RATLIP papers' numbers); see :data:`FID_PROTOCOLS`.
        weights_path: the local weights file of that protocol's network.
        download: allow downloading the weights when ``weights_path`` is ``None``.

    Returns:
        :class:`TorchvisionInceptionFeatures` or :class:`InceptionFeatures`.

    Example:
        >>> from ratlip_layers.metrics import inception_features
        >>> inception_features("tf")
        Traceback (most recent call last):
        ...
        ValueError: unknown FID protocol 'tf', expected one of ('inception', 'torchvision')
    """
    if protocol == "torchvision":
        return TorchvisionInceptionFeatures(weights_path, download=download)
    if protocol == "inception":
        if weights_path is None and not download:
            raise ValueError("weights_path is required (or pass download=True to let torch-fidelity fetch it)")
        return InceptionFeatures(weights_path)
    raise ValueError(f"unknown FID protocol {protocol!r}, expected one of {FID_PROTOCOLS}")


def load_fid_statistics(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read reference statistics from an ``.npz`` file with keys ``mu`` ``(D,)`` and ``sigma`` ``(D, D)``.

    The file is opened with ``allow_pickle=False``, so it cannot run code.

    Args:
        path: the ``.npz`` file (e.g. the DF-GAN/GALIP ``bird_val256_FIDK0.npz``).

    Returns:
        ``(mu, sigma)`` as float64 arrays.

    Example:
        >>> from ratlip_layers.metrics import load_fid_statistics
        >>> load_fid_statistics("no/such/stats.npz")
        Traceback (most recent call last):
        ...
        FileNotFoundError: FID statistics not found at no/such/stats.npz
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FID statistics not found at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            keys = set(data.files)
            if not {"mu", "sigma"} <= keys:
                raise KeyError(f"has keys {sorted(keys)}, expected 'mu' and 'sigma'")
            mu, sigma = np.asarray(data["mu"], dtype=np.float64), np.asarray(data["sigma"], dtype=np.float64)
    except KeyError as err:
        raise ValueError(f"FID statistics {path} {err.args[0]}") from None
    except Exception as err:  # noqa: BLE001 - pickled objects, corrupt zips, non-npz files
        raise ValueError(f"cannot read FID statistics {path}: {err}") from None
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"FID statistics {path}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    return mu, sigma


def save_fid_statistics(path: str | Path, mu: Any, sigma: Any) -> Path:
    """Write ``mu`` and ``sigma`` to an ``.npz`` file atomically (a temporary file, then ``os.replace``).

    Args:
        path: the destination; ``.npz`` is appended by numpy if missing, so give it.
        mu: mean ``(D,)``.
        sigma: covariance ``(D, D)``.

    Returns:
        The path written.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from ratlip_layers.metrics import load_fid_statistics, save_fid_statistics
        >>> f = save_fid_statistics(os.path.join(tempfile.mkdtemp(), "ref.npz"), np.zeros(3), np.eye(3))
        >>> [a.shape for a in load_fid_statistics(f)]
        [(3,), (3, 3)]
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"FID statistics path {path} is a directory; expected a .npz file path")
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, mu=mu, sigma=sigma)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class FrechetDistance(FrechetInceptionDistance):
    """torchmetrics' FID on images in ``[-1, 1]``, with a feature extractor of choice and a cache.

    The real statistics survive :meth:`reset`, can be exported with :meth:`real_statistics` and are
    cached on disk by :meth:`load_or_compute_real`, or come from a published mean and covariance
    (:meth:`set_real_moments`, the papers' ``.npz`` protocol); ``compute()`` returns
    ``{"fid_<features>": value}``. States are summed across DDP ranks by torchmetrics.

    Args:
        features: :class:`CLIPFeatures`, :class:`InceptionFeatures` or any module mapping images in
            ``[-1, 1]`` to ``(B, num_features)`` and having ``num_features`` and ``name`` attributes.

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
        """Return ``{"fid_<features>": value}``."""
        return {f"fid_{self.features_name}": float(super().compute())}

    def real_statistics(self) -> dict[str, Tensor]:
        """The accumulated real-image statistics (sum, sum of outer products, count)."""
        return {name: getattr(self, name).detach().cpu().clone() for name in _REAL_STATES}

    def load_real_statistics(self, statistics: dict[str, Tensor]) -> None:
        """Replace the real-image statistics with ones from :meth:`real_statistics`."""
        for name in _REAL_STATES:
            current = getattr(self, name)
            value = statistics[name]
            if value.shape != current.shape:
                raise ValueError(
                    f"real statistic {name!r} has shape {tuple(value.shape)}, expected {tuple(current.shape)} "
                    "(were they computed with other features?)"
                )
            setattr(self, name, value.to(device=current.device, dtype=current.dtype))

    def real_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The real features' mean ``(D,)`` and unbiased covariance ``(D, D)``, as float64 arrays
        (what :func:`save_fid_statistics` stores)."""
        n = self.real_features_num_samples.double().cpu()
        if n < 2:
            raise ValueError(f"the real statistics hold {int(n)} images; a covariance needs at least 2")
        mean = self.real_features_sum.double().cpu() / n
        cov = (self.real_features_cov_sum.double().cpu() - n * torch.outer(mean, mean)) / (n - 1)
        return mean.numpy(), cov.numpy()

    def set_real_moments(self, mu: Any, sigma: Any) -> None:
        """Use a given mean ``(D,)`` and covariance ``(D, D)`` as the real statistics.

        This scores against published reference statistics (e.g. the ``.npz`` files of DF-GAN and
        GALIP, read with :func:`load_fid_statistics`) instead of real images. The moments are stored
        as the sums of two pseudo-images, which torchmetrics turns back into exactly ``mu`` and
        ``sigma``.

        Example:
            >>> import numpy as np
            >>> from ratlip_layers.clip import tiny_clip
            >>> from ratlip_layers.metrics import CLIPFeatures, FrechetDistance
            >>> fid = FrechetDistance(CLIPFeatures(tiny_clip()[0]))
            >>> fid.set_real_moments(np.ones(32), 2 * np.eye(32))
            >>> [float(m.mean()) for m in fid.real_moments()]
            [1.0, 0.0625]
        """
        current = self.real_features_sum
        mu = torch.as_tensor(np.asarray(mu), dtype=torch.float64)
        sigma = torch.as_tensor(np.asarray(sigma), dtype=torch.float64)
        if mu.shape != current.shape or sigma.shape != (current.shape[0], current.shape[0]):
            raise ValueError(
                f"reference statistics of shapes {tuple(mu.shape)} and {tuple(sigma.shape)} do not fit "
                f"{self.features_name} features of {current.shape[0]} dimensions"
            )
        # torchmetrics: cov = (cov_sum - n mean mean^T) / (n - 1), mean = sum / n; with n = 2 these are exact.
        n = 2
        self.load_real_statistics(
            {
                "real_features_sum": n * mu,
                "real_features_cov_sum": sigma * (n - 1) + n * torch.outer(mu, mu),
                "real_features_num_samples": torch.tensor(n),
            }
        )

    def load_or_compute_real(self, cache_file: str | Path, images: Callable[[], Iterable[Tensor]]) -> bool:
        """Load the real statistics from ``cache_file``, or compute them from ``images()`` and save them.

        Args:
            cache_file: a ``.safetensors`` file; its name should identify the data and the features
                (see :func:`module_fingerprint`).
            images: called only on a cache miss; yields batches of real images in ``[-1, 1]``.

        Returns:
            ``True`` if the cache was used.
        """
        cache_file = Path(cache_file)
        if cache_file.is_file():
            self.load_real_statistics(load_file(cache_file))
            return True
        for batch in images():
            self.update(batch, real=True)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        save_file(self.real_statistics(), tmp)
        os.replace(tmp, cache_file)
        return False
