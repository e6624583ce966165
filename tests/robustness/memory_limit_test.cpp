// The compile-time memory limit: a graph whose planned memory (persistent
// buffers + arena) exceeds CompileOptions::memoryLimitBytes or
// KILN_MEMORY_LIMIT fails to compile with the figures, before any code is
// generated or any memory allocated (docs/errors.md, "Memory").
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <kiln/kiln.h>

#include <cstdlib>

using namespace kiln;

namespace {

// x -> exp(x) @ w: x and the output are persistent, exp(x) lives in the
// arena (a matmul operand is materialized).
void build(Graph& g, Module& m, int64_t rows, int64_t cols) {
  Tensor x = g.input("x", {rows, cols});
  Tensor w = g.input("w", {cols, 4});
  m.addFunction("f", {x, w}, {{"y", matmul(exp(x), w)}});
}

std::string compileError(const Module& m, const CompileOptions& opts) {
  try {
    jit::compile(m, opts);
  } catch (const Error& e) {
    return e.what();
  }
  return "(compiled)";
}

// Restores an environment variable at scope exit.
struct EnvVar {
  std::string name;
  explicit EnvVar(std::string n, const char* value) : name(std::move(n)) { ::setenv(name.c_str(), value, 1); }
  ~EnvVar() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_CASE("memory limit: a 24 GiB graph is refused at compile time by the default 8 GiB limit") {
  ::unsetenv("KILN_MEMORY_LIMIT");
  Graph g;
  Module m(g);
  build(g, m, int64_t(3) << 15, int64_t(1) << 15);  // x alone is 12 GiB
  CHECK(compileError(m, {}) ==
        "compile: planned memory 24.0 GiB (persistent 12.0 GiB, arena 12 GiB, scratch 32 KiB) exceeds the limit 8 GiB "
        "(CompileOptions::memoryLimitBytes or KILN_MEMORY_LIMIT)");
}

TEST_CASE("memory limit: CompileOptions::memoryLimitBytes is exact at the boundary, and 0 turns it off") {
  ::unsetenv("KILN_MEMORY_LIMIT");
  Graph g;
  Module m(g);
  build(g, m, 512, 256);
  CompileOptions off;
  off.memoryLimitBytes = 0;
  auto cm = jit::compile(m, off);
  const int64_t total = cm->compiled().plan.totalBytes;
  REQUIRE(total > 0);
  CompileOptions exact;
  exact.memoryLimitBytes = total;
  CHECK_NOTHROW(jit::compile(m, exact));
  CompileOptions under;
  under.memoryLimitBytes = total - 1;
  CHECK(compileError(m, under) ==
        fmt::format("compile: planned memory {} (persistent {}, arena {}, scratch {}) exceeds the limit {} "
                    "(CompileOptions::memoryLimitBytes or KILN_MEMORY_LIMIT)",
                    driver::formatBytes(total), driver::formatBytes(cm->compiled().plan.persistentBytes),
                    driver::formatBytes(cm->compiled().plan.tempBytes),
                    driver::formatBytes(cm->compiled().plan.scratchBytes), driver::formatBytes(total - 1)));
  CompileOptions small;
  small.memoryLimitBytes = 1 << 20;
  CHECK(compileError(m, small) ==
        "compile: planned memory 1.0 MiB (persistent 524 KiB, arena 512 KiB, scratch 32 KiB) exceeds the limit 1 MiB "
        "(CompileOptions::memoryLimitBytes or KILN_MEMORY_LIMIT)");
}

TEST_CASE("memory limit: KILN_MEMORY_LIMIT sets it, and a malformed value is an error") {
  Graph g;
  Module m(g);
  build(g, m, 512, 256);
  {
    EnvVar env("KILN_MEMORY_LIMIT", "512K");
    CHECK(compileError(m, {}) ==
          "compile: planned memory 1.0 MiB (persistent 524 KiB, arena 512 KiB, scratch 32 KiB) exceeds the limit 512 KiB "
          "(CompileOptions::memoryLimitBytes or KILN_MEMORY_LIMIT)");
    CompileOptions opts;  // the option wins over the variable
    opts.memoryLimitBytes = 2 << 20;
    CHECK_NOTHROW(jit::compile(m, opts));
  }
  {
    EnvVar env("KILN_MEMORY_LIMIT", "2G");
    CHECK(driver::memoryLimit({}) == int64_t(2) << 30);
    CHECK_NOTHROW(jit::compile(m, {}));
  }
  {
    EnvVar env("KILN_MEMORY_LIMIT", "1048576");
    CHECK(driver::memoryLimit({}) == 1 << 20);
  }
  {
    EnvVar env("KILN_MEMORY_LIMIT", "8 GB");
    CHECK(compileError(m, {}) ==
          "KILN_MEMORY_LIMIT: '8 GB' is not a size (bytes, or a number followed by K, M, G or T)");
  }
  CHECK(driver::memoryLimit({}) == CompileOptions::kDefaultMemoryLimit);
}

TEST_CASE("memory limit: sizes in messages") {
  CHECK(driver::formatBytes(0) == "0 bytes");
  CHECK(driver::formatBytes(1023) == "1023 bytes");
  CHECK(driver::formatBytes(1024) == "1 KiB");
  CHECK(driver::formatBytes(1536) == "1.5 KiB");
  CHECK(driver::formatBytes(int64_t(8) << 30) == "8 GiB");
  CHECK(driver::formatBytes((int64_t(123) << 30) / 10) == "12.3 GiB");
  CHECK(driver::formatBytes(int64_t(3) << 40) == "3 TiB");
}
