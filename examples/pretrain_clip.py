"""Pre-train a CLIP contrastively on a captioned dataset, for the GAN to train against.

With no arguments: the tiny CLIP on the built-in ``shapes`` data, on the CPU, in about 2.5 minutes;
it writes clip.safetensors, config.json and report.json (the retrieval report) to
runs/clip/shapes-tiny-32px-<hash>, and a rerun with the same options reuses them (an interrupted
one resumes). ``python examples/train_cub.py`` does this itself (``--clip-pretrained pretrain``);
give the file to any run with ``--clip-pretrained PATH``.

    python examples/pretrain_clip.py
    python examples/pretrain_clip.py --dataset cub --data-dir data/birds --clip-model ViT-B-32 \\
        --imsize 224 --batch-size 128 --steps 20000 --out runs/clip-cub
    python examples/train_cub.py --clip-pretrained runs/clip-cub/clip.safetensors ...
"""

from __future__ import annotations

import argparse
import json
import sys

from ratlip_layers.training import CLIPPretrainConfig, pretrain_clip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = CLIPPretrainConfig.add_arguments(p)
    groups["run"].add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = vars(parse_args(argv))
    progress = not args.pop("no_progress")
    try:
        result = pretrain_clip(CLIPPretrainConfig(**args), progress=progress)
    except (OSError, ValueError) as err:  # the library's errors are ValueErrors; OSError: files
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    print(json.dumps(result.report))
    print(f"CLIP weights: {result.weights}{' (already trained)' if result.cached else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
