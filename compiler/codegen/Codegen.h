// LLVM code generation: one LLVM module for every entry point of a planned
// graph, optimized for a target and emitted as an object file. The JIT loads
// the same object bytes the AOT path writes to disk.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/Graph.h"
#include "lower/Plan.h"

namespace kiln::codegen {

struct TargetOptions {
  std::string cpu;  // empty = the host CPU (its features detected)
};

struct CodegenResult {
  std::string llvmIR;     // before optimization
  std::string llvmOptIR;  // after
  std::string assembly;   // empty unless asked for
  std::vector<char> object;
  std::string cpu;
  double optimizeMs = 0, emitMs = 0;
};

// Symbol of entry point `fn` of model `prefix`: "<prefix>_<fn>"; its C type
// is `void(char* base)` where base is the model's memory block.
std::string entrySymbol(std::string_view prefix, std::string_view fn);

// What the object code depends on besides the graph and plan: the target
// triple, the CPU and its features (the host's when target.cpu is empty)
// and the LLVM version. Part of the compile cache's key (driver/Cache.h).
std::string targetDescription(const TargetOptions& target);
// The host's CPU name as LLVM knows it ("sapphirerapids").
std::string hostCpuName();
// Registers the host target with LLVM (once per process; generate() does it
// too). The JIT needs it even when the object came from the compile cache.
void initNativeTarget();

CodegenResult generate(const ir::Graph& g, const lower::ModulePlan& plan, std::string_view prefix,
                       const TargetOptions& target, bool wantAssembly);

}  // namespace kiln::codegen
