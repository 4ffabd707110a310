"""The losses of the RATLIP/GALIP recipe, as functions of tensors so any networks can use them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_float, check_same_batch, check_tensor

__all__ = ["discriminator_hinge_loss", "generator_loss", "matching_aware_gradient_penalty",
           "mode_seeking_loss"]


def discriminator_hinge_loss(real: Tensor, fake: Tensor, mismatched: Tensor) -> Tensor:
    """The discriminator's hinge loss, mismatched captions as extra negatives:
    ``relu(1 - real).mean() + (relu(1 + fake).mean() + relu(1 + mismatched).mean()) / 2``.

    Args:
        real, fake, mismatched: logits of real images with their own captions, of generated images
            with theirs, and of real images with another image's caption.

    Shape:
        - real, fake, mismatched: :math:`(B,)`

    Example:
        >>> from ratlip_layers.training import discriminator_hinge_loss
        >>> discriminator_hinge_loss(torch.tensor([2.0]), torch.tensor([-2.0]), torch.tensor([0.0]))
        tensor(0.5000)
    """
    for name, logits in (("real", real), ("fake", fake), ("mismatched", mismatched)):
        check_tensor(name, logits, 1, "(B,)")
    return F.relu(1.0 - real).mean() + (F.relu(1.0 + fake).mean() + F.relu(1.0 + mismatched).mean()) / 2


def matching_aware_gradient_penalty(
    logits: Tensor, inputs: Sequence[Tensor], *, weight: float = 2.0, power: float = 6.0
) -> Tensor:
    """MA-GP: ``weight * mean(||d logits / d inputs||_2 ** power)``, the gradients of all ``inputs``
    flattened per sample and concatenated; the graph is kept, so the penalty trains D.

    Args:
        logits: D's logits for real images and matching captions, computed from ``inputs``.
        inputs: tensors with ``requires_grad=True`` (CLIP feature maps, sentence embeddings).

    Shape:
        - logits: :math:`(B,)`
        - inputs: each :math:`(B, *)`

    Example:
        >>> from ratlip_layers.training import matching_aware_gradient_penalty
        >>> x, s = torch.ones(3, 4, requires_grad=True), torch.ones(3, 2, requires_grad=True)
        >>> logits = 0.5 * x.sum(1) + 0.5 * s.sum(1)   # per-sample gradient norm = 0.5 * sqrt(6)
        >>> round(float(matching_aware_gradient_penalty(logits, [x, s], weight=1.0, power=2.0)), 4)
        1.5
    """
    check_tensor("logits", logits, 1, "(B,)")
    inputs = list(inputs)
    if not inputs:
        raise ValueError("inputs must hold at least one tensor")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise ValueError(
                f"inputs[{i}] (shape {tuple(t.shape)}) must require grad to take the penalty's gradient"
            )
    check_same_batch([("logits", logits)] + [(f"inputs[{i}]", t) for i, t in enumerate(inputs)])
    # Unscaled on purpose: under fp16 a GradScaler's scale (2**16 at the start) as the upstream
    # gradient overflows half precision (max 65504) at the very first node, so the penalty is NaN.
    grads = torch.autograd.grad(logits.float().sum(), inputs, create_graph=True)
    flat = torch.cat([g.float().flatten(1) for g in grads], dim=1)
    return weight * flat.norm(dim=1).pow(power).mean()


def generator_loss(
    fake_logits: Tensor, image_embedding: Tensor, sentence: Tensor, *, sim_weight: float = 4.0
) -> tuple[Tensor, Tensor]:
    """Generator loss: ``-fake_logits.mean() - sim_weight * cos(image_embedding, sentence).mean()``,
    ``fake_logits`` being D's logits for generated images and their captions, ``image_embedding``
    their CLIP embeddings (gradients flow through the frozen CLIP), ``sentence`` the captions'.

    Returns:
        ``(loss, similarity)``, the mean cosine similarity for logging.

    Shape:
        - fake_logits: :math:`(B,)`
        - image_embedding, sentence: :math:`(B, D)`

    Example:
        >>> from ratlip_layers.training import generator_loss
        >>> e = torch.tensor([[1.0, 0.0]])
        >>> generator_loss(torch.tensor([0.5]), e, e, sim_weight=4.0)
        (tensor(-4.5000), tensor(1.))
    """
    check_tensor("fake_logits", fake_logits, 1, "(B,)")
    check_float("sim_weight", sim_weight)
    for name, t in (("image_embedding", image_embedding), ("sentence", sentence)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (B, D), got {type(t).__name__}")
    if image_embedding.shape != sentence.shape or image_embedding.dim() != 2:
        raise ValueError(
            "image_embedding and sentence must both have shape (B, D), got "
            f"{tuple(image_embedding.shape)} and {tuple(sentence.shape)}"
        )
    check_same_batch((("fake_logits", fake_logits), ("image_embedding", image_embedding)))
    similarity = F.cosine_similarity(image_embedding.float(), sentence.float(), dim=-1).mean()
    return -fake_logits.float().mean() - sim_weight * similarity, similarity


def mode_seeking_loss(images_a: Tensor, images_b: Tensor, noise_a: Tensor, noise_b: Tensor) -> Tensor:
    """Mode-seeking term (MSGAN, Mao et al. 2019): ``1 / (mean|a - b| / mean|z_a - z_b| + 1e-5)``,
    ``images_a`` and ``images_b`` generated pair by pair from the same caption, from ``noise_a`` and
    ``noise_b``. Minimising it pushes them apart, so that a caption's samples do not collapse to one.

    Shape:
        - images_a, images_b: :math:`(B, C, H, W)`
        - noise_a, noise_b: :math:`(B, Z)`

    Example:
        >>> from ratlip_layers.training import mode_seeking_loss
        >>> z = torch.zeros(2, 4)
        >>> round(float(mode_seeking_loss(torch.ones(2, 3, 8, 8), -torch.ones(2, 3, 8, 8), z, z + 1)), 3)
        0.5
    """
    for name, t in (("images_a", images_a), ("images_b", images_b), ("noise_a", noise_a), ("noise_b", noise_b)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            got = t.dtype if isinstance(t, Tensor) else type(t).__name__
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {got}")
    if images_a.shape != images_b.shape or noise_a.shape != noise_b.shape:
        raise ValueError(
            "images_a/images_b and noise_a/noise_b must pair up shape for shape, got "
            f"{tuple(images_a.shape)}/{tuple(images_b.shape)} and {tuple(noise_a.shape)}/{tuple(noise_b.shape)}"
        )
    check_same_batch((("images_a", images_a), ("noise_a", noise_a)))
    ratio = (images_a.float() - images_b.float()).abs().mean() / (noise_a - noise_b).abs().mean()
    return 1.0 / (ratio + 1e-5)
