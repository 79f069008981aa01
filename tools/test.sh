#!/usr/bin/env bash
# The full test run (what CI runs): notebooks and package in sync, notebooks clean, README in sync with
# nbs/index.ipynb, nbdev's docs processing on every notebook, the documentation site (mkdocs, warnings are errors),
# every notebook's checks (nbdev_test, slow/gpu cells skipped), and pytest (the README quick start among them).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=.venv/bin/python
fail() { echo "FAILED: $*"; exit 1; }
echo "== nbdev_export leaves the package unchanged"
.venv/bin/nbdev_export
git diff --quiet -- robustclip_nb && [ -z "$(git status --porcelain -- robustclip_nb)" ] || { git status --porcelain -- robustclip_nb; fail "robustclip_nb/ is out of sync with nbs/: run nbdev_export and commit"; }
echo "== nbdev_clean leaves the notebooks unchanged"
.venv/bin/nbdev_clean
git diff --quiet -- nbs || { git diff --stat -- nbs; fail "notebooks are not clean: run nbdev_clean and commit"; }
echo "== README.md is generated from nbs/index.ipynb"
$PY tools/readme.py --check || fail "README.md differs from nbs/index.ipynb: run python tools/readme.py"
echo "== nbdev_proc_nbs processing runs clean on every notebook (on a temporary copy of nbs/)"
$PY tools/docs.py --nbdev-proc || fail "nbdev's docs processing fails on a notebook: keep imports in their own cells, define no name only in a skipped cell"
echo "== documentation site: mkdocs build --strict (notebooks rendered with their stored outputs, not executed)"
$PY tools/docs.py || fail "the documentation site does not build: see the mkdocs warnings above"
echo "== nbdev_test (one worker: parallel notebooks make torch threads fight on 2 cores)"
( cd nbs && ../.venv/bin/nbdev_test --n_workers 1 --timing --skip_folder_re '^(experiments$|[_.])' )
echo "== pytest"
$PY -m pytest -q --durations=8 -o tmp_path_retention_policy=failed tests
