"""Score a trained RATLIP generator: FID and CLIP score (and, on shapes, the colour accuracy).

    python examples/evaluate.py --checkpoint runs/shapes-tiny --dataset shapes
    python examples/evaluate.py --checkpoint runs/cub-paper --dataset cub --data-dir data/birds \\
        --fid-features inception --inception-weights weights-inception-2015-12-05-6726825d.pth \\
        --score-clip-model ViT-B-32-quickgelu --score-clip-pretrained openai --num-images 30000
    python examples/evaluate.py --checkpoint runs/cub-paper --dataset cub --data-dir data/birds \
        --fid-features torchvision --inception-weights inception_v3_google.pth \
        --fid-reference bird_val256_FIDK0.npz --num-images 30000     # as the DF-GAN/GALIP/RATLIP tables

Prints the results as JSON and saves them (--out). The "fid_features" field says which features
the FID used: only the torchvision protocol against the papers' statistics compares with their tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ratlip_layers.data import DATASETS
from ratlip_layers.metrics import FID_PROTOCOLS
from ratlip_layers.training import evaluate_checkpoint


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR_OR_FILE")
    p.add_argument("--dataset", choices=DATASETS, help="default: the run's dataset")
    p.add_argument("--data-dir", help="default: the run's data directory")
    p.add_argument("--num-images", type=int, help="images to generate (default: the run's --eval-images)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--metrics", nargs="+", help="a subset of the registered metrics")
    p.add_argument(
        "--fid-features",
        choices=("clip", *FID_PROTOCOLS),
        default="clip",
        help="clip: the run's CLIP; inception: torchmetrics' TF-FID; torchvision: the papers' protocol",
    )
    p.add_argument("--inception-weights", help="local weights of the chosen Inception network")
    p.add_argument("--fid-cache", help="directory of cached real-image statistics")
    p.add_argument("--fid-reference", metavar="NPZ", help="reference statistics (mu, sigma) to score against")
    p.add_argument("--score-clip-model", help="open_clip model for the CLIP score (default: the run's CLIP)")
    p.add_argument("--score-clip-pretrained", help="its pretrained tag or weights path")
    p.add_argument("--no-ema", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--out", help="JSON file to write (default: <checkpoint>/eval-<dataset>-step<N>.json)")
    args = p.parse_args(argv)
    if args.score_clip_pretrained and not args.score_clip_model:
        p.error("--score-clip-pretrained needs --score-clip-model (the run's own CLIP scores otherwise)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out and Path(args.out).is_dir():  # found now, not after the evaluation
        print(f"error: --out must be a JSON file to write, got {args.out}, a directory", file=sys.stderr)
        return 1
    try:
        results = evaluate_checkpoint(
            args.checkpoint,
            dataset=args.dataset,
            data_dir=args.data_dir,
            num_images=args.num_images,
            batch_size=args.batch_size,
            seed=args.seed,
            fid_features=args.fid_features,
            inception_weights=args.inception_weights,
            fid_cache=args.fid_cache,
            fid_reference=args.fid_reference,
            score_clip_model=args.score_clip_model,
            score_clip_pretrained=args.score_clip_pretrained,
            metric_names=args.metrics,
            use_ema=not args.no_ema,
            device=args.device,
            num_workers=args.num_workers,
        )
    except (OSError, ValueError) as err:  # the library's errors are ValueErrors; OSError: files
        print(f"error: {err}", file=sys.stderr)
        return 1
    text = json.dumps(results, indent=2)
    print(text)  # the results survive a failed write below
    default = Path(args.checkpoint) / f"eval-{results['dataset']}-step{results['step']}.json"
    out = Path(args.out) if args.out else default
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    except OSError as err:
        print(f"error: the results are above but could not be saved: {err}", file=sys.stderr)
        return 1
    print(f"saved {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
