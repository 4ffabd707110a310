"""FID from torchmetrics, with feature extractors that work offline and cached real statistics.

The Fréchet distance itself is torchmetrics' ``FrechetInceptionDistance``; this module only chooses
its features:

- :class:`InceptionFeatures`: the standard InceptionV3 pool features (2048), the numbers papers
  report. The weights are torch-fidelity's; pass a local copy with ``weights_path`` when offline.
- :class:`CLIPFeatures`: the image embedding of any open_clip ViT, e.g. the run's own CLIP. Needs no
  download, so it works in tests and on the built-in ``shapes`` data; its values are not comparable
  with published (Inception) FIDs, which is why the result's key names the features.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3

from ..clip import CLIPImageEncoder

__all__ = ["CLIPFeatures", "FrechetDistance", "InceptionFeatures", "module_fingerprint"]

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


class FrechetDistance(FrechetInceptionDistance):
    """torchmetrics' FID on images in ``[-1, 1]``, with a feature extractor of choice and a cache.

    The real statistics survive :meth:`reset`, can be exported with :meth:`real_statistics` and are
    cached on disk by :meth:`load_or_compute_real`; ``compute()`` returns ``{"fid_<features>": value}``.
    States are summed across DDP ranks by torchmetrics.

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
