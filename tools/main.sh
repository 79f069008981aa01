#!/usr/bin/env bash
# The main job on the offline default: train the offline base model on first use (cached afterwards), evaluate it
# clean on every offline test set, and under an AutoAttack-style attack (APGD-CE + APGD-T, 100 iterations) at 4/255.
# Results (tidy CSV + provenance JSON) go to figures/offline-base/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
RC=.venv/bin/robustclip
OUT=figures/offline-base
mkdir -p $OUT
$RC base --name offline-base
$RC eval --model offline-base --dataset offline --out $OUT/clean.csv
$RC eval --model offline-base --dataset fashion-mnist --n 500 --attack aa --eps 4/255 --out $OUT/aa_fashion-mnist.csv
