"""Train RATLIP end to end.

With no arguments: the tiny preset on the built-in ``shapes`` data, on the CPU, in about 6 minutes:
it pre-trains the tiny CLIP on the captions first (cached under runs/clip), then writes checkpoints,
sample grids and a metrics line to runs/shapes-tiny.

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

from ratlip_layers.training import NonFiniteLossError, TrainConfig, Trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = TrainConfig.add_arguments(p)
    groups["run"].add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = vars(parse_args(argv))
    progress = not args.pop("no_progress")
    try:
        config = TrainConfig.resolve(**args)
        result = Trainer(config, progress=progress).fit()
    # The library's errors are ValueErrors; OSError: a path that is not there, or a file where
    # --out's directory should be; NonFiniteLossError: a diverged run.
    except (NonFiniteLossError, OSError, ValueError) as err:
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
