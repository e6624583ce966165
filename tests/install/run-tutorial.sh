#!/usr/bin/env bash
# run-tutorial.sh BUILD_DIR SOURCE_DIR: replays docs/tutorial.md against the
# prefix that run-consumer.sh installed (BUILD_DIR/install-test/prefix):
# writes the tutorial's files from its code blocks, builds the project,
# trains, and runs the JIT variant and the kiln-opt commands it shows.
set -euo pipefail
build=$1; src=$2
prefix=$build/install-test/prefix
work=$build/install-test/tutorial
[ -x "$prefix/bin/kiln-opt" ] || { echo "run-tutorial: no installed prefix at $prefix (run examples.install_consumer)"; exit 1; }
rm -rf "$work"
mkdir -p "$work/circle"
cd "$work/circle"

# The files, recognised by their contents rather than their order.
/usr/bin/python3 - "$src/docs/tutorial.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"```(\w*)\n(.*?)```", text, re.S)
files = {"model.cpp": "aot::emit", "main.cpp": '"circle.h"', "jit.cpp": "jit::compile",
         "CMakeLists.txt": "find_package(kiln", "CMakeLists.jit": "jit_train"}
for name, marker in files.items():
    found = [b for lang, b in blocks if lang in ("cpp", "cmake") and marker in b]
    if len(found) != 1:
        sys.exit(f"run-tutorial: expected one code block with {marker!r} in tutorial.md, found {len(found)}")
    open(name, "w").write(found[0])
PY
mv CMakeLists.jit jit.cmake

launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B build -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" > configure.log
cmake --build build
"$src/tests/check-metric.sh" "test accuracy" 0.95 ./build/train | tee train.out

(echo; cat jit.cmake) >> CMakeLists.txt
cmake --build build
./build/jit_train | tee jit.out
train_loss=$(sed -n 's/^step 2000  loss //p' train.out)
jit_loss=$(sed -n 's/^loss after 2000 steps: //p' jit.out)
[ -n "$train_loss" ] && [ "$train_loss" = "$jit_loss" ] ||
  { echo "run-tutorial: JIT loss '$jit_loss' differs from the AOT loss '$train_loss'"; exit 1; }

for f in 00-built.kir 01-grad.kir 02-dce.kir kernels.txt graph.dot module.ll module.opt.ll module.s report.json; do
  [ -s "build/dumps/$f" ] || { echo "run-tutorial: build/dumps/$f is missing"; exit 1; }
done
KOPT=$prefix/bin/kiln-opt
$KOPT build/dumps/01-grad.kir --passes=dce,cse --stats > after.kir 2> stats.txt
grep -q "^pass cse " stats.txt || { echo "run-tutorial: kiln-opt --stats printed no cse line"; exit 1; }
grep -q "^func @trainStep" after.kir
# (into files: grep -q on a pipe would end kiln-opt early with SIGPIPE)
$KOPT build/dumps/00-built.kir --emit=kernels > kernels.out
grep -q "^func @predict" kernels.out
$KOPT build/dumps/00-built.kir --emit=llvm > llvm.out
grep -q "^define" llvm.out
$KOPT build/dumps/00-built.kir --emit=asm > asm.out
$KOPT build/dumps/01-grad.kir --passes=dce,cse,fold --print-after-all > /dev/null
KILN_DUMP=$work/circle-dumps ./build/generators/circle_generator --out-dir "$work/circle-out"
[ -s "$work/circle-out/circle.o" ] && [ -s "$work/circle-dumps/01-grad.kir" ]
echo "run-tutorial: ok"
