#!/usr/bin/env bash
# The CUDA block suite in one go, for a session with a GPU: every paper-preset shape in float32,
# bfloat16 and float16, eager, channels_last and (RAT blocks, bfloat16) torch.compile with and without
# CUDA graphs; then the network-level rows (mapper block, G-blocks, text adapter, discriminator,
# generator, one D+G training step; float32, eager against impl="ref"), which build a ViT-B/32
# per implementation and take roughly a minute more. The block rows get a smaller budget than before so
# the whole run stays at about 8 minutes on one H100; cases not started within the budget are listed
# as skipped.
# Writes benchmarks/results/<card>.json, .md and .png (the card's name, lower-cased), or into $1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
OUT="${1:-benchmarks/results}"
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'run_cuda.sh: no CUDA device visible to torch')"
"$PYTHON" benchmarks/bench_blocks.py --device cuda --name auto --out "$OUT" --time-budget 360
