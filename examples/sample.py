"""Generate images from a trained RATLIP generator: one row per caption.

    python examples/sample.py --checkpoint runs/shapes-tiny \
        --caption "a red circle on a blue background" --caption "a yellow square on a black background" \
        --n 8 --seed 0 --out grid.png
    python examples/sample.py --checkpoint runs/shapes-tiny --caption "a red circle on a blue background" --out-dir samples/

The EMA generator is used when the checkpoint has one. The same seed gives the same images.
"""

from __future__ import annotations

import argparse
import sys

from ratlip_layers.training import captioned_grid, load_generator, sample_images, save_images
from ratlip_layers.training.images import write_png


def _text(text: str) -> str:
    if not text.strip():  # most likely an unset shell variable
        raise argparse.ArgumentTypeError(f"must hold some text, got {text!r}")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="RUN_DIR_OR_FILE",
        help="a run directory (newest checkpoint), a checkpoint directory or a save_pretrained directory",
    )
    p.add_argument(
        "--caption", action="append", required=True, type=_text, help="a caption; repeat for more rows"
    )
    p.add_argument("--n", type=int, default=8, help="images per caption")
    p.add_argument("--seed", type=int, default=0)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", default="grid.png", type=_text, help="PNG grid to write")
    out.add_argument("--out-dir", type=_text, help="write the individual PNGs here instead of a grid")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even if an EMA copy exists")
    p.add_argument("--device", default="auto")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        generator, info = load_generator(args.checkpoint, device=args.device, use_ema=not args.no_ema)
        images = sample_images(generator, args.caption, n=args.n, seed=args.seed).cpu()
        if args.out_dir:
            for row, row_images in enumerate(images.split(args.n)):
                save_images(row_images, args.out_dir, prefix=f"caption{row:02d}-")
            written = f"{len(images)} images to {args.out_dir}"
        else:
            write_png(captioned_grid(images, args.caption, columns=args.n), args.out)
            written = args.out
    except (OSError, ValueError) as err:  # OSError: a file that is missing, unreadable or unwritable
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {written} ({info['weights']} weights of {info['source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
