#!/usr/bin/env bash
# check-no-llvm.sh BINARY: fails unless ldd can read BINARY and lists no
# LLVM library among its dependencies.
set -uo pipefail
deps=$(ldd "$1") || { echo "check-no-llvm: ldd failed on $1"; exit 1; }
printf '%s\n' "$deps"
if printf '%s\n' "$deps" | grep -qi llvm; then echo "check-no-llvm: $1 links LLVM"; exit 1; fi
echo "check-no-llvm: $1 does not link LLVM"
