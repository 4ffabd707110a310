"""One training step of the recipe: a discriminator update, then a generator update, on one batch,
with mixed precision (:class:`Precision`), DDP and a policy for non-finite losses."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .._checks import check_float, check_module
from ..clip.vision import ImageFeatures
from .distributed import DistributedContext
from .ema import trainable_state
from .losses import discriminator_hinge_loss, generator_loss, matching_aware_gradient_penalty, mode_seeking_loss

__all__ = [
    "AMP_MODES", "NONFINITE_POLICIES", "SCALE_FLOOR", "SCALE_RESET", "DiscriminatorLoss", "GANTrainStep",
    "NonFiniteLossError", "Precision",
]

NONFINITE_POLICIES = ("stop", "skip")
"""The ``--on-nonfinite`` choices: raise :class:`NonFiniteLossError`, or skip the update."""

_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
AMP_MODES = tuple(_DTYPES)
"""The ``--amp`` choices: full precision, bfloat16 autocast, float16 autocast with loss scaling."""

# The reference's fp16 scale floor: a scale below SCALE_FLOOR is put back to SCALE_RESET, since
# MA-GP's sixth power keeps producing overflows that would otherwise drive the scale to zero.
SCALE_FLOOR = 64.0
SCALE_RESET = 16384.0


class Precision:
    """``--amp off|bf16|fp16`` on one device type.

    ``bf16`` needs no loss scaling; ``fp16`` scales each network's loss with its own
    ``torch.amp.GradScaler`` (their state is checkpointed) and applies the reference's scale floor.

    Example:
        >>> from ratlip_layers.training import Precision
        >>> p = Precision("bf16", "cpu")
        >>> with p.autocast():
        ...     y = nn.Linear(2, 2)(torch.ones(1, 2))
        >>> y.dtype, p.scaler_g.is_enabled()
        (torch.bfloat16, False)
    """

    def __init__(self, mode: str = "off", device_type: str = "cpu") -> None:
        if mode not in _DTYPES:
            raise ValueError(f"amp mode must be one of {AMP_MODES}, got {mode!r}")
        self.mode, self.device_type, self.dtype = mode, device_type, _DTYPES[mode]
        self.scaler_g = torch.amp.GradScaler(device_type, enabled=mode == "fp16")
        self.scaler_d = torch.amp.GradScaler(device_type, enabled=mode == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for forward passes (a no-op with ``"off"``)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @staticmethod
    def step(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, *, skip: bool = False) -> None:
        """``scaler.step`` and ``update``, with the scale floor. With ``skip`` (a non-finite loss) the
        optimiser does not step but the scaler still backs off, lest a too-large scale skip every step."""
        if not skip:
            scaler.step(optimizer)
            scaler.update()
        elif scaler.is_enabled():
            scaler.update(scaler.get_scale() * scaler.get_backoff_factor())
        if scaler.is_enabled() and scaler.get_scale() < SCALE_FLOOR:
            scaler.update(SCALE_RESET)

    def state_dict(self) -> dict[str, dict]:
        """Both scalers' states."""
        return {"scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        """Restore both scalers; states saved without fp16 (empty) leave fresh scalers."""
        for name in ("scaler_g", "scaler_d"):
            if state.get(name):
                getattr(self, name).load_state_dict(state[name])

    def __repr__(self) -> str:
        return f"Precision(mode={self.mode!r}, device_type={self.device_type!r})"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the message names the step, the loss and its value."""


class DiscriminatorLoss(nn.Module):
    """The discriminator's objective as a module, so that DDP can wrap it: hinge loss on (real,
    caption), (fake, caption) and (real, the batch's captions rolled by one), plus MA-GP (weight 0:
    off) on the real images' CLIP feature maps and the sentences, its gradient taken inside
    ``forward`` so that DDP synchronises one backward pass. ``fake_features`` are the frozen CLIP's
    features of the fakes, computed once per step as the reference does.

    Returns (forward):
        ``(total, hinge, penalty, real_logits, fake_logits, mismatched_logits)``, logits as batch means.

    Example:
        >>> from ratlip_layers.clip import tiny_clip
        >>> from ratlip_layers.models import CLIPDiscriminator
        >>> from ratlip_layers.training.step import DiscriminatorLoss
        >>> D = CLIPDiscriminator(tiny_clip()[0], channels=16, joint_channels=8)
        >>> images = torch.rand(4, 3, 32, 32) * 2 - 1
        >>> fake_features = D.features(images.flip(0))
        >>> total, hinge, penalty, *_ = DiscriminatorLoss(D)(images, fake_features, torch.randn(4, 32))
        >>> total.backward()
        >>> bool(torch.isclose(total, hinge + penalty)), D.net_c.joint[0].weight.grad is not None
        (True, True)
    """

    def __init__(self, discriminator: nn.Module, *, magp_weight: float = 2.0,
                 magp_power: float = 6.0) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.magp_weight = float(magp_weight)
        self.magp_power = float(magp_power)
        self.on_phase: Callable[[str], None] | None = None  # as GANTrainStep.on_phase

    def forward(self, real: Tensor, fake_features: ImageFeatures, sentence: Tensor) -> tuple[Tensor, ...]:
        d = self.discriminator
        mark = self.on_phase or (lambda name: None)
        with torch.no_grad():
            real_features = d.features(real)
            mark("clip_real")
        fake_features = ImageFeatures(
            tuple(m.detach() for m in fake_features.maps), fake_features.embedding.detach()
        )
        maps = tuple(m.detach().requires_grad_(True) for m in real_features.maps)
        matched = sentence.detach().requires_grad_(True)
        features = ImageFeatures(maps, real_features.embedding)
        # NetD sees no caption: run it once on the real maps and judge that code against the
        # matched and the mismatched captions (two NetD passes cost 0.34 s of a 224 px batch-4 step).
        real_code = d.image_code(features)
        real_logits = d.match_logits(real_code, matched)
        mismatched_logits = d.match_logits(real_code, sentence.roll(1, 0))
        fake_logits = d.logits(fake_features, sentence)
        hinge = discriminator_hinge_loss(real_logits, fake_logits, mismatched_logits)
        mark("d_heads")
        if self.magp_weight > 0:
            penalty = matching_aware_gradient_penalty(
                real_logits, (*maps, matched), weight=self.magp_weight, power=self.magp_power
            )
        else:
            penalty = hinge.new_zeros(())
        mark("magp")
        means = (logits.detach().mean() for logits in (real_logits, fake_logits, mismatched_logits))
        return (hinge + penalty, hinge.detach(), penalty.detach(), *means)

    def extra_repr(self) -> str:
        return f"magp_weight={self.magp_weight}, magp_power={self.magp_power}"


def _adam(module: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam over ``module``'s trainable parameters, fused where torch has the kernel (CPU, CUDA): a
    Python loop over each tensor was a quarter of the tiny preset's step."""
    params = [p for p in module.parameters() if p.requires_grad]
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, betas=(0.0, 0.9), fused=fused or None)


class GANTrainStep:
    """The D/G update of the recipe, with AMP, DDP and a non-finite-loss policy.

    Per batch: one generator forward on fresh noise; a D update on (real, fake detached) with MA-GP
    (``magp_weight``, ``magp_power``); then a G update on ``-D(fake, s) - sim_weight * cos(CLIP(fake),
    s)`` through the same forward, plus ``mode_seeking_weight`` (0: off, no extra samples) times
    :func:`mode_seeking_loss` (the first half of the captions drawn again with other noise, in the
    same forward). Adam with betas (0.0, 0.9) at ``lr_g`` and ``lr_d``. Under DDP the generator and
    ``DiscriminatorLoss`` are wrapped in ``DistributedDataParallel`` and the generator's BatchNorm
    statistics are averaged after each step.

    Args:
        generator: a :class:`ratlip_layers.models.RATLIPGenerator`, or a module with a ``z_dim``
            mapping ``(noise, sentence)`` to images.
        discriminator: a :class:`ratlip_layers.models.CLIPDiscriminator`.
        text_encoder: a frozen :class:`ratlip_layers.clip.CLIPTextAdapter`.
        precision, dist_ctx: the :class:`~ratlip_layers.training.Precision` (autocast, scalers) and the
            :class:`~ratlip_layers.training.DistributedContext`.
        on_nonfinite: ``"stop"`` raises :class:`NonFiniteLossError`; ``"skip"`` skips the update.

    Example:
        >>> from ratlip_layers.clip import CLIPTextAdapter, tiny_clip
        >>> from ratlip_layers.models import CLIPDiscriminator, GeneratorConfig, RATLIPGenerator
        >>> from ratlip_layers.training import GANTrainStep
        >>> clip_model, tokenizer = tiny_clip()
        >>> G = RATLIPGenerator(GeneratorConfig.preset("tiny"), clip_model, tokenizer=tokenizer)
        >>> D = CLIPDiscriminator(clip_model, channels=16, joint_channels=8)
        >>> step = GANTrainStep(G, D, CLIPTextAdapter(clip_model, tokenizer=tokenizer))
        >>> tokens = tokenizer(["a red circle on a blue background"] * 4)
        >>> logs = step(torch.rand(4, 3, 32, 32) * 2 - 1, tokens, step=1)
        >>> sorted(logs)[:4], logs["skipped"]
        (['clip_sim', 'd_fake', 'd_mismatch', 'd_real'], 0.0)
    """

    def __init__(
        self, generator: nn.Module, discriminator: nn.Module, text_encoder: nn.Module, *, lr_g: float = 1e-4,
        lr_d: float = 4e-4, sim_weight: float = 4.0, mode_seeking_weight: float = 0.0,
        magp_weight: float = 2.0, magp_power: float = 6.0, precision: Precision | None = None,
        dist_ctx: DistributedContext | None = None, on_nonfinite: str = "stop",
    ) -> None:
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"on_nonfinite must be one of {NONFINITE_POLICIES}, got {on_nonfinite!r}")
        check_module("generator", generator)
        check_module("discriminator", discriminator)
        check_module("text_encoder", text_encoder)
        for name, value in (("lr_g", lr_g), ("lr_d", lr_d)):
            if check_float(name, value) <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name, value in (("sim_weight", sim_weight), ("mode_seeking_weight", mode_seeking_weight),
                            ("magp_weight", magp_weight), ("magp_power", magp_power)):
            check_float(name, value)
        self.generator, self.discriminator, self.text_encoder = generator, discriminator, text_encoder
        self.sim_weight = float(sim_weight)
        self.mode_seeking_weight = float(mode_seeking_weight)
        self.precision = precision or Precision("off")
        self.dist = dist_ctx or DistributedContext()
        self.on_nonfinite = on_nonfinite
        self.opt_g, self.opt_d = _adam(generator, lr_g), _adam(discriminator, lr_d)
        d_loss = DiscriminatorLoss(discriminator, magp_weight=magp_weight, magp_power=magp_power)
        self._d_loss = d_loss
        self.on_phase: Callable[[str], None] | None = None
        """Called with a phase's name at its end (``text``, ``g_forward``, ``clip_real``, ``clip_fake``,
        ``d_heads``, ``magp``, ``backward``, ``optimizer``; a name can recur), for
        ``benchmarks/bench_train_step.py``."""
        if self.dist.enabled:
            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.g_forward: nn.Module = DistributedDataParallel(generator, device_ids=ids)
            self.d_loss: nn.Module = DistributedDataParallel(d_loss, device_ids=ids)
        else:
            self.g_forward, self.d_loss = generator, d_loss
        learned = trainable_state(generator).keys()
        # BatchNorm statistics: each rank updates them from its own share of the batch.
        self._g_buffers = [b for n, b in generator.named_buffers() if n in learned and b.is_floating_point()]

    def _average_buffers(self) -> None:
        """Average the generator's running statistics across ranks: every rank (and its EMA) then
        holds the same network, not just the same parameters."""
        if not self.dist.enabled or not self._g_buffers:
            return
        flat = torch.cat([b.reshape(-1) for b in self._g_buffers])
        torch.distributed.all_reduce(flat)
        flat /= self.dist.world_size
        offset = 0
        for buffer in self._g_buffers:
            buffer.copy_(flat[offset : offset + buffer.numel()].view_as(buffer))
            offset += buffer.numel()

    def _check(self, step: int, name: str, loss: Tensor) -> bool:
        """Whether to skip the update; raises under the ``"stop"`` policy."""
        bad = self.dist.any(not bool(torch.isfinite(loss).item()))
        if bad and self.on_nonfinite == "stop":
            raise NonFiniteLossError(
                f"non-finite {name} = {loss.item()} at step {step} (on at least one rank); stopping. "
                "Pass --on-nonfinite skip to skip such steps instead."
            )
        return bad

    def __call__(self, images: Tensor, tokens: Tensor, *, step: int = 0) -> dict[str, float]:
        """One D update and one G update on real ``images`` in ``[-1, 1]`` (on the networks' device)
        and their captions' token ids ``tokens`` (B, L); returns the losses and logit means as floats.
        ``step`` numbers the step in messages."""
        mark = self.on_phase or (lambda name: None)
        self._d_loss.on_phase = mark
        with torch.no_grad():
            sentence = self.text_encoder(tokens).sentence.float()
        batch = images.shape[0]
        pairs = batch // 2 if self.mode_seeking_weight > 0 else 0
        noise = torch.randn(batch + pairs, self.generator.z_dim, device=images.device)
        precision = self.precision
        mark("text")

        with precision.autocast():
            fake = self.g_forward(noise, torch.cat([sentence, sentence[:pairs]]) if pairs else sentence)
            fake, fake_pairs = fake[:batch], fake[batch:]
            mark("g_forward")
            # One CLIP pass over the fakes, with the graph the G update needs; the D update reads a
            # detached copy (the CLIP is frozen, so the D step in between cannot change them).
            features = self.discriminator.features(fake)
            mark("clip_fake")
            loss_d, hinge, penalty, d_real, d_fake, d_mis = self.d_loss(images, features, sentence)
        skip_d = self._check(step, "loss_d", loss_d)
        precision.scaler_d.scale(loss_d).backward()
        mark("backward")
        precision.step(precision.scaler_d, self.opt_d, skip=skip_d)
        self.opt_d.zero_grad(set_to_none=True)
        mark("optimizer")

        self.discriminator.requires_grad_(False)
        try:
            with precision.autocast():
                logits = self.discriminator.logits(features, sentence)
                loss_g, similarity = generator_loss(
                    logits, features.embedding, sentence, sim_weight=self.sim_weight
                )
                if pairs:
                    loss_g = loss_g + self.mode_seeking_weight * mode_seeking_loss(
                        fake[:pairs], fake_pairs, noise[:pairs], noise[batch:]
                    )
                mark("d_heads")
            skip_g = self._check(step, "loss_g", loss_g)
            precision.scaler_g.scale(loss_g).backward()
            mark("backward")
        finally:
            self.discriminator.requires_grad_(True)
        precision.step(precision.scaler_g, self.opt_g, skip=skip_g)
        self.opt_g.zero_grad(set_to_none=True)
        with torch.no_grad():
            self._average_buffers()

        values = torch.stack(
            [loss_d.detach(), hinge, penalty, d_real, d_fake, d_mis, loss_g.detach(), similarity.detach()]
        )
        names = ("loss_d", "hinge_d", "magp", "d_real", "d_fake", "d_mismatch", "loss_g", "clip_sim")
        logs = {**dict(zip(names, values.float().tolist())), "skipped": float(skip_d or skip_g),
                "g_updated": float(not skip_g)}
        mark("optimizer")
        return logs

    def state_dict(self) -> dict[str, Any]:
        """Both optimisers' and both scalers' states."""
        optimizers = {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}
        return {**optimizers, **self.precision.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; the optimisers keep the implementation (fused or
        not) chosen here, not the checkpoint's, which another machine may have chosen."""
        for optimizer, saved in ((self.opt_g, state["opt_g"]), (self.opt_d, state["opt_d"])):
            chosen = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]
            optimizer.load_state_dict(saved)
            for group, implementation in zip(optimizer.param_groups, chosen):
                group.update(implementation)
        self.precision.load_state_dict(state)
