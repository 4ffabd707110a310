"""Train RATLIP end to end.

With no arguments: the tiny preset on the built-in ``shapes`` data with a random tiny CLIP, on the
CPU, in a few minutes; it writes checkpoints, sample grids and a metrics line to runs/shapes-tiny.

    python examples/train_cub.py
    python examples/train_cub.py --preset paper --dataset cub --data-dir data/birds --amp fp16
    torchrun --nproc_per_node 8 examples/train_cub.py --preset paper --dataset cub --data-dir data/birds
    python examples/train_cub.py --out runs/shapes-tiny --resume auto

See docs/training.rst for the datasets' layouts, multi-node runs and evaluation.
"""

from __future__ import annotations

import argparse
import sys

import torch.distributed as dist

from ratlip_layers.data import DATASETS, DataFileError, DatasetLayoutError, UnsafePickleError
from ratlip_layers.training import AMP_MODES, RECIPES, NonFiniteLossError, TrainConfig, Trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("recipe (unset options take the preset's value)")
    g.add_argument("--preset", choices=tuple(RECIPES), default="tiny", help="recipe and generator preset")
    g.add_argument("--imsize", type=int, help="image size in pixels")
    g.add_argument("--batch-size", type=int, help="images per step and per process")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="training steps (one D and one G update each)")
    budget.add_argument("--epochs", type=int, help="passes over the training split")
    g.add_argument("--lr-g", type=float, help="generator learning rate")
    g.add_argument("--lr-d", type=float, help="discriminator learning rate")
    g.add_argument("--sim-weight", type=float, help="weight of the generator's CLIP-similarity loss")
    g.add_argument("--magp-weight", type=float, help="MA-GP weight")
    g.add_argument("--magp-power", type=float, help="MA-GP exponent")
    g.add_argument("--d-channels", type=int, help="NetD output channels")
    g.add_argument("--d-joint-channels", type=int, help="NetC inner channels")
    g.add_argument("--clip-model", help="open_clip model name, or 'tiny' for a random tiny CLIP")
    g.add_argument(
        "--clip-pretrained", help="open_clip pretrained tag, a local weights path, or 'none' for random weights"
    )

    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="shapes")
    g.add_argument("--data-dir", help="dataset directory (all but shapes); layouts in docs/training.rst")
    g.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes")
    g.add_argument(
        "--strict-data", action="store_true", help="stop at an unreadable file instead of skipping it"
    )

    g = p.add_argument_group("execution")
    g.add_argument("--amp", choices=AMP_MODES, default="off", help="mixed precision")
    g.add_argument(
        "--ema", type=float, default=0.999, metavar="DECAY", help="generator EMA decay; 0 turns it off"
    )
    g.add_argument("--compile", action="store_true", help="torch.compile the generator and CLIP encoder")
    g.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or a device string")
    g.add_argument("--on-nonfinite", choices=("stop", "skip"), default="stop", help="on a NaN/inf loss")

    g = p.add_argument_group("run directory")
    g.add_argument("--out", metavar="RUN_DIR", help="run directory (default runs/<dataset>-<preset>)")
    g.add_argument("--resume", metavar="auto|PATH", help="continue from the newest checkpoint or from PATH")
    g.add_argument("--log-every", type=int, default=50)
    g.add_argument("--sample-every", type=int, help="steps between sample grids (0: only at the end)")
    g.add_argument("--eval-every", type=int, help="steps between evaluations (0: only at the end)")
    g.add_argument("--save-every", type=int, help="steps between checkpoints (0: only at the end)")
    g.add_argument("--keep-checkpoints", type=int, default=3, metavar="K")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-images", type=int, help="images generated per evaluation")
    g.add_argument("--fid-features", choices=("clip", "inception"), default="clip")
    g.add_argument("--inception-weights", help="local InceptionV3 weights (torch-fidelity's .pth)")
    g.add_argument("--fid-cache", help="directory of cached real-image FID statistics")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = vars(parse_args(argv))
    progress = not args.pop("no_progress")
    try:
        config = TrainConfig.resolve(**args)
        result = Trainer(config, progress=progress).fit()
    except (DatasetLayoutError, DataFileError, UnsafePickleError, NonFiniteLossError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    print(
        f"run directory: {result.run_dir} (step {result.step}{', interrupted' if result.interrupted else ''})"
    )
    return result.exit_status  # 130 after SIGINT, 143 after SIGTERM: the run is not finished


if __name__ == "__main__":
    sys.exit(main())
