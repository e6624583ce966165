// The compile driver: graph -> passes -> kernel plan -> LLVM -> object, with
// every stage optionally dumped to a directory (KILN_DUMP or dumpDir).
#pragma once

#include <string>
#include <vector>

#include "codegen/Codegen.h"
#include "ir/Graph.h"
#include "lower/Plan.h"
#include "passes/Passes.h"

namespace kiln {

struct CompileOptions {
  std::string dumpDir;        // empty = $KILN_DUMP if set, else no dumps
  std::string targetCpu;      // empty = host
  bool verifyEach = false;    // verifier after every pass (always on in debug builds)
  bool emitAssembly = false;  // keep module.s text even without dumps
  std::vector<std::string> passes;  // empty = the default pipeline
  bool fuse = true;           // fuse elementwise producers into their consumers' kernels
  // Planned memory (persistent buffers + arena) above this fails the compile
  // with the figures, before any code is generated or memory allocated.
  // -1 = $KILN_MEMORY_LIMIT if set (bytes, or a number with K, M, G or T:
  // KiB...TiB), else kDefaultMemoryLimit; 0 = no limit.
  int64_t memoryLimitBytes = -1;
  static constexpr int64_t kDefaultMemoryLimit = int64_t(8) << 30;  // 8 GiB
  // Checked mode (also KILN_CHECKED=1 at compile time): every entry point
  // stops at the first non-finite f32 input or op result and reports the op,
  // its source line and the call number (docs/errors.md). Compiles without
  // fusion; off, the generated code is exactly the unchecked code.
  bool checked = false;
  // Reuse object code through the compile cache (driver/Cache.h; KILN_CACHE=0
  // turns it off everywhere): -1 = the default, on for jit::compile and off
  // otherwise; 0 = off; 1 = on. Never used when dumping or keeping assembly.
  int cache = -1;
};

}  // namespace kiln

namespace kiln::driver {

// Per entry point: ops are the non-source nodes the function needs (one
// kernel each before fusion), before and after the passes.
struct FunctionStats {
  std::string name;
  int32_t opsBefore = 0, opsAfter = 0;
  int64_t kernels = 0, arenaBytes = 0, naiveBytes = 0, persistentBytes = 0;
};

struct CompileStats {
  int32_t opsBefore = 0, opsAfter = 0;
  std::vector<FunctionStats> functions;
  int64_t kernels = 0;
  int64_t bufferBytes = 0;
  double totalMs = 0, passesMs = 0, llvmOptMs = 0, llvmEmitMs = 0;
  bool cacheHit = false;     // the object code came from the compile cache (no LLVM ran)
  bool cacheStored = false;  // a miss whose object code was written to the cache
  std::vector<passes::PassRecord> passRecords;
};

struct Compiled {
  ir::Graph graph;  // after the passes
  lower::ModulePlan plan;
  codegen::CodegenResult code;
  CompileStats stats;
  std::string dumpDir;  // where dumps went, or empty
};

// `builtText` (optional) is the graph as the user built it, before autodiff;
// it is dumped as 00-built.kir. `g` is dumped as 01-grad.kir.
Compiled compile(const ir::Graph& g, std::string_view prefix, const CompileOptions& opts,
                 const std::string& builtText = {});

// Per-function counts and bytes for report.json and kiln-opt --stats.
std::vector<FunctionStats> functionStats(const ir::Graph& before, const ir::Graph& after, const lower::ModulePlan& plan);

// The limit compile() applies: opts.memoryLimitBytes, $KILN_MEMORY_LIMIT or
// the default (0 = none). Throws CompileError on a malformed variable.
int64_t memoryLimit(const CompileOptions& opts);
// Whether compile() builds checked code: opts.checked or KILN_CHECKED=1.
bool checkedMode(const CompileOptions& opts);
// "12.3 GiB", "512 KiB", "100 bytes": sizes in diagnostics.
std::string formatBytes(int64_t bytes);

// Writes `text` to dir/name, creating dir; throws with the path on failure.
void writeFile(const std::string& dir, const std::string& name, std::string_view text);

}  // namespace kiln::driver
