# kiln's front door. `make demo` and `make test` work on a fresh Debian 12
# machine: they install what is missing, build, fetch the data and run.
BUILD ?= build
BUILD_DEBUG ?= build-debug
BUILD_ASAN ?= build-asan
JOBS ?= 2
CTEST_ARGS ?=

.PHONY: all deps configure build debug test test-debug test-asan demo data bench docs clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# A Debug build with assertions (and the verifier after every pass).
debug: deps
	@test -f $(BUILD_DEBUG)/CMakeCache.txt || cmake -S . -B $(BUILD_DEBUG) -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD_DEBUG) -j$(JOBS)

data: deps
	@scripts/fetch-data.sh

test: build data
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-debug: debug data
	cd $(BUILD_DEBUG) && ctest --output-on-failure -j$(JOBS) -LE slow $(CTEST_ARGS)

# The unit and robustness tests under AddressSanitizer and
# UndefinedBehaviorSanitizer (g++, -O1 with assertions); any report fails the
# test. Not run by make test or CI; see docs/testing.md.
ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
test-asan: deps data
	@test -f $(BUILD_ASAN)/CMakeCache.txt || cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS="$(ASAN_FLAGS)" \
	  -DCMAKE_EXE_LINKER_FLAGS="$(ASAN_FLAGS)" -DCMAKE_SHARED_LINKER_FLAGS="$(ASAN_FLAGS)" -DKILN_FUZZER=OFF
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j$(JOBS) -L 'unit|robustness' $(CTEST_ARGS)

demo: build data
	$(BUILD)/bin/mnist_mlp --data data/mnist --epochs 10 --seed 1
	@echo "IR dumps of every stage (00-built.kir ... module.s, report.json): $(BUILD)/dumps/mnist_mlp/"

# Regenerates the docs that come from code (docs/ops.md from the op table).
docs: build
	$(BUILD)/bin/kiln_ops_doc --write docs/ops.md

# The benchmark: kiln's AOT training steps against PyTorch, its matmul
# against OpenBLAS, and JIT compile times, interleaved in one run with 2
# threads. Writes $(BUILD)/bench/results.json and the table in
# docs/benchmarks.md (see there). Takes 5-8 minutes once built.
bench: configure
	cmake -S . -B $(BUILD) -DKILN_BENCH=ON
	cmake --build $(BUILD) -j$(JOBS)
	/usr/bin/python3 bench/run.py --build $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_DEBUG) $(BUILD_ASAN)
