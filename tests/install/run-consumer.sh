#!/usr/bin/env bash
# run-consumer.sh BUILD_DIR SOURCE_DIR: installs the kiln in BUILD_DIR into
# BUILD_DIR/install-test/prefix, builds tests/install/consumer against that
# prefix with find_package(kiln), runs the program it trains, and runs the
# installed kiln-opt on the model's IR dump.
set -euo pipefail
build=$1; src=$2
work=$build/install-test
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in include/kiln/kiln.h include/kiln/rt/Runtime.h include/kiln/compiler/ir/Builder.h lib/libkiln.a \
         lib/libkiln_rt.a bin/kiln-opt lib/cmake/kiln/kilnConfig.cmake lib/cmake/kiln/KilnAddModel.cmake; do
  [ -e "$prefix/$f" ] || { echo "run-consumer: $prefix/$f was not installed"; exit 1; }
done

echo "== configure the consumer"
launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$src/tests/install/consumer" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" | tee "$work/configure.log"
grep -q "kiln_consumer: kiln from $prefix/" "$work/configure.log" ||
  { echo "run-consumer: find_package(kiln) did not find the installed prefix"; exit 1; }

echo "== build the consumer"
cmake --build "$work/build" -j2

echo "== run it"
"$src/tests/check-metric.sh" "final w" 2.99:3.01 "final b" -1.01:-0.99 "final loss" :1e-6 \
    -- "$work/build/train_line"
"$src/tests/check-no-llvm.sh" "$work/build/train_line"

echo "== installed kiln-opt on the consumer's dump"
"$prefix/bin/kiln-opt" "$work/build/dumps/line/01-grad.kir" --passes=dce > "$work/kiln-opt.out"
grep -q "^func @trainStep" "$work/kiln-opt.out" || { echo "run-consumer: kiln-opt printed no trainStep"; exit 1; }
echo "run-consumer: ok"
