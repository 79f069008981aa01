#!/usr/bin/env bash
# Set up a fresh machine for robustclip_nb: Debian data packages, a virtual environment in .venv with the pinned
# torch/torchvision pair (constraints.txt), and the package with its dev extras in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB_PKGS="dataset-fashion-mnist tuxpaint-stamps-default gcompris-qt-data"
if ! dpkg -s $DEB_PKGS >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian data packages: $DEB_PKGS"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $DEB_PKGS >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import torch, torchvision, open_clip, peft, nbdev, robustclip_nb" || { echo "set-up failed: the package does not import"; exit 1; }
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "set-up done: $(.venv/bin/python -c 'import torch, robustclip_nb; print("torch", torch.__version__, "| robustclip_nb", robustclip_nb.__version__)')"
