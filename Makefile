# kiln's front door. `make demo` and `make test` work on a fresh Debian 12
# machine: they install what is missing, build, fetch the data and run.
BUILD ?= build
BUILD_DEBUG ?= build-debug
JOBS ?= 2
CTEST_ARGS ?=

.PHONY: all deps configure build debug test test-debug demo data bench docs clean

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

demo: build data
	$(BUILD)/bin/mnist_mlp --data data/mnist --epochs 10 --seed 1
	@echo "IR dumps of every stage (00-built.kir ... module.s, report.json): $(BUILD)/dumps/mnist_mlp/"

# Regenerates the docs that come from code (docs/ops.md from the op table).
docs: build
	$(BUILD)/bin/kiln_ops_doc --write docs/ops.md

bench:
	@echo "make bench: the benchmark is not written yet (issue 5); nothing was measured."

clean:
	rm -rf $(BUILD) $(BUILD_DEBUG)
