#!/usr/bin/env bash
# The main job on the offline default:
#  1. train the offline base model on first use (cached afterwards);
#  2. the `quick` experiment batch: every experiment notebook (FARE/TeCoA, AdvPT, MMCoA, AdvLoRA) through papermill,
#     two at a time on one thread each, figures and tables into figures/<experiment>/, executed notebooks into
#     runs/quick/<experiment>/;
#  3. alongside the batch, on one thread: the base model evaluated clean on every offline test set, then under the
#     AutoAttack-style suite (APGD-CE + APGD-T, 100 iterations) at 4/255.
# Each phase prints its wall time, and the job its total. Results are tidy CSVs with a provenance JSON beside them.
# A failed phase does not stop the others; the job exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
RC=.venv/bin/robustclip
OUT=figures/offline-base
mkdir -p $OUT
phase() { local t=$SECONDS; "$@"; local rc=$?; echo "[main.sh] $(( (SECONDS - t) / 60 )) min $(( (SECONDS - t) % 60 )) s: $* (exit $rc)"; return $rc; }
phase $RC base --name offline-base || exit 1
( export OMP_NUM_THREADS=1 ROBUSTCLIP_THREADS=1
  phase $RC eval --model offline-base --dataset offline --out $OUT/clean.csv
  c=$?
  phase $RC eval --model offline-base --dataset fashion-mnist --n 100 --attack aa --eps 4/255 --out $OUT/aa_fashion-mnist.csv
  exit $(( c || $? )) ) &
side=$!
phase $RC run --profile quick --jobs 2 --out runs --figures-dir figures; batch=$?
wait $side; side=$?
echo "[main.sh] total $(( SECONDS / 60 )) min $(( SECONDS % 60 )) s"
exit $(( batch || side ))
