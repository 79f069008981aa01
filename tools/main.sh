#!/usr/bin/env bash
# The main job on the offline default:
#  1. train the offline base model on first use (cached afterwards) and evaluate it clean on every offline test set;
#  2. the `quick` experiment batch: every experiment notebook (FARE/TeCoA, AdvPT, MMCoA, AdvLoRA) through papermill,
#     figures and tables into figures/<experiment>/, executed notebooks into runs/quick/<experiment>/;
#  3. the base model under the AutoAttack-style suite (APGD-CE + APGD-T, 100 iterations) at 4/255.
# Each phase prints its wall time. Results are tidy CSVs with a provenance JSON beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
RC=.venv/bin/robustclip
OUT=figures/offline-base
mkdir -p $OUT
phase() { local t=$SECONDS; "$@"; echo "[main.sh] $(( (SECONDS - t) / 60 )) min $(( (SECONDS - t) % 60 )) s: $*"; }
phase $RC base --name offline-base
phase $RC eval --model offline-base --dataset offline --out $OUT/clean.csv
phase $RC run --profile quick --out runs --figures-dir figures
phase $RC eval --model offline-base --dataset fashion-mnist --n 500 --attack aa --eps 4/255 --out $OUT/aa_fashion-mnist.csv
