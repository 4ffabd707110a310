"""The training loop behind ``examples/train_cub.py``: data, steps, EMA, checkpoints, logs, pictures."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..clip import clip_spec
from ..data import CaptionCollate, ResumableSampler, build_dataset, shapes_caption
from ..models import CLIPDiscriminator, RATLIPGenerator
from .build import build_clip_model
from .checkpoint import Checkpoint, CheckpointManager, get_rng_state, load_checkpoint, resolve_checkpoint
from .checkpoint import seed_everything, set_rng_state
from .config import TrainConfig
from .distributed import DistributedContext, init_distributed
from .ema import EMA
from .images import captioned_grid, sample_images, write_png
from .step import GANTrainStep, Precision

if TYPE_CHECKING:
    from .evaluation import Evaluator

__all__ = ["TrainResult", "Trainer"]

# The rows of the shapes sample grids; other datasets show their first test captions.
_SHAPES_SAMPLES = tuple(
    shapes_caption(shape, colour, background)
    for shape, colour, background in (
        ("circle", "red", "blue"), ("square", "yellow", "black"), ("triangle", "green", "white"),
        ("circle", "white", "purple"), ("square", "orange", "green"), ("triangle", "blue", "yellow"),
        ("circle", "purple", "orange"), ("square", "black", "red"),
    )
)
_SAMPLE_COLUMNS = _SAMPLE_ROWS = 6
_REAL_GRID = 8
_SHAPES_DATA_SEED = 0  # the shapes pictures stay the same whatever the training seed


class TrainResult(NamedTuple):
    """What :meth:`Trainer.fit` returns: the final ``step``, the final ``metrics`` (empty when a
    signal stopped the run), whether it was ``interrupted``, the ``run_dir`` and the ``stop_signal``.

    Example:
        >>> import signal
        >>> from pathlib import Path
        >>> from ratlip_layers.training import TrainResult
        >>> TrainResult(1200, {}, True, Path("runs/shapes-tiny"), signal.SIGTERM).exit_status
        143
    """

    step: int
    metrics: dict[str, float]
    interrupted: bool
    run_dir: Path
    stop_signal: int | None = None

    @property
    def exit_status(self) -> int:
        """``128 + signum`` for a run a signal stopped, as a shell reports it, so that schedulers
        count it as unfinished; else 0."""
        return 0 if self.stop_signal is None else 128 + int(self.stop_signal)


class Trainer:
    """Trains RATLIP as a :class:`ratlip_layers.training.TrainConfig` says; :meth:`~ratlip_layers.training.Trainer.fit` resumes
    when asked. Under ``torchrun`` each process trains on its share of every batch (DDP) and rank 0
    does the I/O. SIGINT or SIGTERM stops the run after the current step, with a checkpoint.

    The run directory holds ``config.json``, ``checkpoints/step-*``, ``samples/*.png``,
    ``tensorboard/``, ``metrics.jsonl`` (one line per evaluation) and, at the end, ``generator/``
    (the EMA generator, for :meth:`ratlip_layers.models.RATLIPGenerator.from_pretrained`).

    Args:
        dist_ctx: the process group (by default from the ``torchrun`` environment).
        progress: show the tqdm bar.

    Example:
        >>> from ratlip_layers.training import TrainConfig, Trainer
        >>> import tempfile
        >>> config = TrainConfig.resolve(steps=2, batch_size=4, device="cpu", out=tempfile.mkdtemp(),
        ...                              eval_images=8, fid_cache=tempfile.mkdtemp(),
        ...                              clip_pretrained="none")  # the preset pre-trains CLIP first
        >>> result = Trainer(config, progress=False).fit()
        >>> result.step, {"clip_score", "fid_clip", "colour_acc"} <= set(result.metrics)
        (2, True)
        >>> sorted(p.name for p in result.run_dir.iterdir())
        ['checkpoints', 'config.json', 'generator', 'metrics.jsonl', 'samples', 'tensorboard']
    """

    def __init__(
        self, config: TrainConfig, *, dist_ctx: DistributedContext | None = None, progress: bool = True
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        config.validate()
        self.config = cfg = config
        self.dist = dist_ctx or init_distributed(cfg.device)
        self.device = device = self.dist.device
        self.run_dir = Path(cfg.out)
        self.progress = progress and self.dist.is_main

        if cfg.clip_pretrained == "pretrain":
            cfg.clip_pretrained = str(self._pretrain_clip())
        seed_everything(cfg.seed)  # the same weights on every rank
        self.clip_model, self.tokenizer = build_clip_model(
            cfg.clip_model, cfg.clip_pretrained, weights_sha256=cfg.clip_sha256, device=device
        )
        # config.json and the checkpoints record which weights file this run's CLIP came from.
        cfg.clip_sha256 = clip_spec(self.clip_model)["weights_sha256"]
        self.generator = RATLIPGenerator(
            cfg.generator_config(), self.clip_model, tokenizer=self.tokenizer, device=device
        )
        self.discriminator = CLIPDiscriminator(
            self.clip_model, channels=cfg.d_channels, joint_channels=cfg.d_joint_channels, device=device
        )
        if cfg.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.text = self.generator.text
        self.ema = EMA(self.generator, decay=cfg.ema) if cfg.ema > 0 else None
        if cfg.compile:
            self.generator.compile()
            self.discriminator.encoder.compile()
        self.step_fn = GANTrainStep(
            self.generator, self.discriminator, self.text,
            lr_g=cfg.lr_g, lr_d=cfg.lr_d, sim_weight=cfg.sim_weight,
            mode_seeking_weight=cfg.mode_seeking_weight, magp_weight=cfg.magp_weight,
            magp_power=cfg.magp_power, precision=Precision(cfg.amp, device.type), dist_ctx=self.dist,
            on_nonfinite=cfg.on_nonfinite,
        )

        data = {"image_size": cfg.imsize, "data_dir": cfg.data_dir, "skip_unreadable": not cfg.strict_data}
        if cfg.dataset == "shapes":
            data["seed"] = _SHAPES_DATA_SEED
        self.train_set = build_dataset(cfg.dataset, split="train", **data)
        self.test_set = build_dataset(cfg.dataset, split="test", **data)
        world, rank = self.dist.world_size, self.dist.rank
        self.sampler = ResumableSampler(self.train_set, num_replicas=world, rank=rank, seed=cfg.seed,
                                        drop_last=True)
        self.steps_per_epoch = self.sampler.num_samples // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"batch_size {cfg.batch_size} is larger than the {self.sampler.num_samples} training samples "
                f"each of the {world} process(es) gets from {len(self.train_set)}"
            )
        self.loader = DataLoader(
            self.train_set, batch_size=cfg.batch_size, sampler=self.sampler, num_workers=cfg.num_workers,
            collate_fn=CaptionCollate(self.tokenizer), drop_last=True, pin_memory=device.type == "cuda",
            # Its own generator: the global RNG is checkpointed, and drawing from it would shift it.
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        self.total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * self.steps_per_epoch
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", keep=cfg.keep_checkpoints)
        shapes, rows = cfg.dataset == "shapes", range(min(_SAMPLE_ROWS, len(self.test_set)))
        self.sample_captions = list(_SHAPES_SAMPLES) if shapes else [self.test_set.caption(i) for i in rows]
        self.step = self.epoch = self.batch_in_epoch = 0
        self._evaluator: Evaluator | None = None
        self._writer: Any = None  # tensorboard's SummaryWriter, on rank 0 during fit()
        self._signal: int | None = None
        self._last_saved = self._last_sampled = -1
        self._last_metrics: tuple[int, dict[str, float]] | None = None
        seed_everything(cfg.seed + rank)  # the noise differs per rank

    def _pretrain_clip(self) -> Path:
        """``--clip-pretrained pretrain``: rank 0 pre-trains the CLIP on this run's data, or reuses it."""
        from .clip_pretrain import WEIGHTS_FILE, CLIPPretrainConfig, pretrain_clip

        cfg = self.config
        options = CLIPPretrainConfig(
            clip_model=cfg.clip_model, dataset=cfg.dataset, data_dir=cfg.data_dir, imsize=cfg.imsize,
            device=str(self.device), cache=cfg.clip_cache,
        )
        if self.dist.is_main:
            where = options.run_dir()
            self._log(f"CLIP: pre-training {cfg.clip_model} on {cfg.dataset} in {where}, or reusing it")
            result = pretrain_clip(options, progress=self.progress)
            how = "reused from" if result.cached else "pre-trained in"
            report = " ".join(f"{k}={v:.3g}" for k, v in result.report.items())
            self._log(f"CLIP {how} {result.weights}: {report}")
        self.dist.barrier()
        return options.run_dir() / WEIGHTS_FILE

    def sampling_generator(self) -> RATLIPGenerator:
        """The generator to sample and evaluate with: the EMA's averaged copy, if EMA is on."""
        return self.generator if self.ema is None else self.ema.module

    def save(self) -> Path | None:
        """Save a checkpoint of the current step (every rank must call; rank 0 writes)."""
        rng, path, cfg = self.dist.gather(get_rng_state()), None, self.config
        if self.dist.is_main:
            weights = {"generator": self.generator.trainable_state_dict(),
                       "discriminator": self.discriminator.trainable_state_dict()}
            if self.ema is not None:
                weights["ema"] = self.ema.state_dict()
            if clip_spec(self.clip_model)["pretrained"] is None:
                # A random CLIP cannot be rebuilt from a tag; the run depends on these exact weights.
                weights["clip"] = self.clip_model.state_dict()
            state = {
                "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "world_size": self.dist.world_size, "optim": self.step_fn.state_dict(),
                "ema_updates": self.ema.num_updates if self.ema is not None else 0, "rng": rng,
            }
            path = self.checkpoints.save(self.step, weights=weights, state=state, config=cfg.to_dict())
        self._last_saved = self.step
        self.dist.barrier()
        return path

    def resume(self, path: str | Path) -> None:
        """Continue exactly from the checkpoint at ``path`` (a checkpoint or run directory)."""
        self._restore(load_checkpoint(resolve_checkpoint(path)))

    def _restore(self, ckpt: Checkpoint) -> None:
        cfg, weights, state = self.config, ckpt.weights, ckpt.state
        saved, now = ckpt.config, cfg.to_dict()
        del now["resume"]  # how this run starts, not what it is
        for f in dataclasses.fields(cfg):
            if f.metadata.get("fixed") and f.name in saved and saved[f.name] != now[f.name]:
                raise ValueError(
                    f"cannot resume {ckpt.path} with {f.name}={now[f.name]!r}: the run was started with "
                    f"{f.name}={saved[f.name]!r}, and {f.name} cannot change within a run"
                )
        changed = [f"{k} {saved[k]!r} -> {v!r}" for k, v in sorted(now.items()) if saved.get(k, v) != v]
        if changed:
            self._log("resuming with options changed from the checkpoint's: " + ", ".join(changed))
        if "clip" in weights:
            self.clip_model.load_state_dict(weights["clip"])
        self.generator.load_trainable_state_dict(weights["generator"])
        self.discriminator.load_trainable_state_dict(weights["discriminator"])
        if self.ema is not None:  # a run that had no EMA starts one from the restored generator
            ema = weights.get("ema", self.generator.trainable_state_dict())
            self.ema.load_state_dict(ema, num_updates=state["ema_updates"] if "ema" in weights else 0)
        self.step_fn.load_state_dict(state["optim"])
        # The restored optimiser states carry the old run's rates; this run's config wins.
        for optimizer, lr in ((self.step_fn.opt_g, cfg.lr_g), (self.step_fn.opt_d, cfg.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = lr
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        if self.batch_in_epoch >= self.steps_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        if len(state["rng"]) == self.dist.world_size:
            set_rng_state(state["rng"][self.dist.rank])
        else:
            warnings.warn(f"the checkpoint was written by {len(state['rng'])} process(es), this run has "
                          f"{self.dist.world_size}: random states are re-seeded, so the run continues, not "
                          "bit-exactly", RuntimeWarning, stacklevel=2)
            seed_everything(cfg.seed + self.dist.rank + self.step)
        self._last_saved = self.step
        self._log(f"resumed from {ckpt.path} at step {self.step} (epoch {self.epoch})")

    def _log(self, message: str) -> None:
        if self.dist.is_main:
            tqdm.write(message, file=sys.stderr)  # above the bar, if there is one

    def _scalars(self, prefix: str, values: dict[str, float]) -> None:
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{prefix}/{name}", value, self.step)

    def _grid(self, name: str, images: torch.Tensor, captions: list[str], columns: int) -> Path:
        grid = captioned_grid(images, captions, columns=columns)
        if self._writer is not None:
            tag = f"samples/{name.split('-')[0]}"
            self._writer.add_image(tag, np.asarray(grid), self.step, dataformats="HWC")
        return write_png(grid, self.run_dir / "samples" / f"{name}.png")

    def _isolated_rng(self) -> contextlib.AbstractContextManager:
        """Pictures and evaluations draw random numbers here, so they cannot change the run."""
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def write_real_grid(self) -> Path:
        """The first training items with their captions, as ``samples/real.png``."""
        items = [self.train_set[i] for i in range(min(_REAL_GRID, len(self.train_set)))]
        return self._grid("real", torch.stack([image for image, _ in items]), [c for _, c in items], 1)

    def write_sample_grid(self) -> Path:
        """Fixed captions (rows) times fixed noise (columns), as ``samples/step-NNNNNNNN.png``."""
        with self._isolated_rng():
            images = sample_images(
                self.sampling_generator(), self.sample_captions, n=_SAMPLE_COLUMNS, seed=self.config.seed
            )
        self._last_sampled = self.step
        return self._grid(f"step-{self.step:08d}", images.cpu(), self.sample_captions, _SAMPLE_COLUMNS)

    def evaluate(self) -> dict[str, float]:
        """Score the sampling generator with the dataset's metrics (every rank must call)."""
        cfg = self.config
        with self._isolated_rng():
            if self._evaluator is None:
                from ..metrics import MetricContext  # torchmetrics: imported by runs that evaluate only
                from .evaluation import Evaluator

                context = MetricContext(self.clip_model, self.tokenizer, fid_features=cfg.fid_features,
                                        inception_weights=cfg.inception_weights)
                self._evaluator = Evaluator(
                    self.test_set, dataset_name=cfg.dataset, context=context, num_images=cfg.eval_images,
                    seed=cfg.seed, fid_cache=cfg.fid_cache, fid_reference=cfg.fid_reference,
                    dist_ctx=self.dist, num_workers=cfg.num_workers,
                )
            results = self._evaluator.evaluate(self.sampling_generator(), self.text)
        self._last_metrics = (self.step, results)
        if self.dist.is_main:
            self._scalars("eval", results)
            line = {"step": self.step, **results}
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")
            values = (f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items())
            self._log("metrics " + " ".join(values))
        return results

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM ask the loop to save and stop after the current step."""

        def handler(signum: int, frame: Any) -> None:
            self._signal = signum
            name = signal.Signals(signum).name
            self._log(f"received {name}: saving a checkpoint after this step, then exiting")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def fit(self) -> TrainResult:
        """Train to ``steps`` (or ``epochs``), resuming first if the config says so.

        Raises:
            NonFiniteLossError: a loss became NaN or infinite under ``on_nonfinite="stop"``; the
                newest checkpoint on disk is then the last good one.
        """
        cfg = self.config
        if cfg.resume == "auto":
            latest = self.checkpoints.load_latest(on_skip=self._log, set_aside=self.dist.is_main)
            if latest is None:
                self._log(f"--resume auto: no checkpoint in {self.checkpoints.root}, starting fresh")
            else:
                self._restore(latest)
        elif cfg.resume is not None:
            self.resume(cfg.resume)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.run_dir / "config.json")
            from torch.utils.tensorboard import SummaryWriter  # tensorboard: rank 0 of a run only

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
        metrics: dict[str, float] = {}
        try:
            bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                       disable=not self.progress)
            # From here on, a signal stops the run after one step, with a checkpoint.
            with self._signals(), bar:
                if self.dist.is_main:
                    self.write_real_grid()
                stopped = self._loop(bar)
            if self._last_saved != self.step:
                self.save()
            if stopped:
                self._log(f"stopped at step {self.step}; resume with --resume auto "
                          f"(checkpoint in {self.checkpoints.root})")
            else:
                if self.dist.is_main:
                    if self._last_sampled != self.step:
                        self.write_sample_grid()
                    self.sampling_generator().save_pretrained(self.run_dir / "generator")
                done = self._last_metrics is not None and self._last_metrics[0] == self.step
                metrics = self._last_metrics[1] if done else self.evaluate()
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return TrainResult(self.step, metrics, stopped, self.run_dir, self._signal if stopped else None)

    def _every(self, period: int) -> bool:
        return period > 0 and self.step % period == 0

    def _loop(self, bar: tqdm) -> bool:
        """Train to ``total_steps`` (then return ``False``) or until a signal on any rank (``True``)."""
        cfg = self.config
        window: list[dict[str, float]] = []
        start = time.perf_counter()
        while self.step < self.total_steps:
            self.sampler.set_position(self.epoch, self.batch_in_epoch * cfg.batch_size)
            for batch in self.loader:
                images = batch.images.to(self.device, non_blocking=True)
                if cfg.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                logs = self.step_fn(images, batch.tokens.to(self.device), step=self.step + 1)
                self.step += 1
                self.batch_in_epoch += 1
                if self.batch_in_epoch == self.steps_per_epoch:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                if self.ema is not None and logs["g_updated"]:
                    self.ema.update(self.generator)
                window.append(logs)
                bar.update(1)
                if self._every(cfg.log_every) or self.step == self.total_steps:
                    means = {k: sum(w[k] for w in window) / len(window) for k in logs if k != "g_updated"}
                    elapsed = max(time.perf_counter() - start, 1e-9)
                    means["images_per_s"] = len(window) * cfg.batch_size * self.dist.world_size / elapsed
                    shown = {"loss_d": f"{means['loss_d']:.3f}", "loss_g": f"{means['loss_g']:.3f}"}
                    shown.update(skipped=f"{means['skipped']:.0f}", img_s=f"{means['images_per_s']:.0f}")
                    if self.progress:
                        bar.set_postfix(shown)
                    else:  # batch jobs without a bar still see the losses in their log
                        self._log(f"step={self.step} " + " ".join(f"{k}={v}" for k, v in shown.items()))
                    self._scalars("train", means)
                    window, start = [], time.perf_counter()
                if self.dist.is_main and self._every(cfg.sample_every):
                    self.write_sample_grid()
                if self._every(cfg.eval_every):
                    self.evaluate()
                if self._every(cfg.save_every):
                    self.save()
                if self.dist.any(self._signal is not None):
                    return True
                if self.step >= self.total_steps:
                    break
        return False
