#!/usr/bin/env bash
# The CUDA checks in one go, for a session with a GPU (about 9 minutes on one H200):
#   1. the device tests (`pytest --device cuda tests/test_devices.py`: fused layers against their
#      reference ops, the Triton kernels, the training step under autocast, compile + CUDA graphs);
#   2. the paper-preset training step against the straightforward recipe, fp16 autocast, batch 8 and 64;
#   3. the block suite (every paper-preset shape in float32, bfloat16 and float16; eager, ref,
#      channels_last, torch.compile with and without CUDA graphs; the network-level rows), within
#      the time left of a budget; cases not started in time are listed as skipped.
# Writes benchmarks/results/<card>.{json,md,png} and train_step_<card>_fp16.{json,md}, or into $1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
OUT="${1:-benchmarks/results}"
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'run_cuda.sh: no CUDA device visible to torch')"
START=$SECONDS
"$PYTHON" -m pytest -q -p no:cacheprovider --device cuda tests/test_devices.py -rs
"$PYTHON" -m benchmarks.bench_train_step --device cuda --amp fp16 --batches 8 64 --rounds 5 --out "$OUT"
"$PYTHON" benchmarks/bench_blocks.py --device cuda --name auto --out "$OUT" --time-budget $(( 480 - (SECONDS - START) ))
