// Kernel IR: what each entry point runs, in order, over which buffers.
//
// Every non-source op becomes one kernel (a loop nest of its op family) for
// now; fusion will group several ops into one kernel. Every value gets a
// buffer in one block of memory per model instance: sources and function
// outputs in named, persistent buffers; everything else in an activation
// area. This first plan gives each temporary its own slot (no reuse).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/Graph.h"

namespace kiln::lower {

enum class BufferKind { Input, Param, State, Output, Temp };
std::string_view bufferKindName(BufferKind k);

// A user-visible buffer (inputs, params, state, outputs).
struct NamedBuffer {
  std::string name;  // source name, or "function.output" for outputs
  BufferKind kind;
  ir::ValueId value;
  int64_t offset = 0;
  ir::TensorType type;
};

struct Kernel {
  ir::ValueId value;  // the op it computes (its output buffer is offsetOf[value])
};

// A buffer-to-buffer copy run after a function's kernels. Copies run in
// order and never read a buffer an earlier copy of the same call wrote: an
// output that is a source is copied out before any update, and an update
// whose value is another update's target reads a staged copy.
struct Copy {
  std::string dst, src;  // labels for listings: "%3", "f.out", "stage"
  int64_t dstOffset = 0, srcOffset = 0, bytes = 0;
};

struct FunctionPlan {
  std::string name;
  std::vector<Kernel> kernels;  // in execution order
  std::vector<Copy> copies;     // outputs of sources, staging, then updates
};

struct ModulePlan {
  std::vector<int64_t> offsetOf;  // by value id; -1 = no buffer
  std::vector<NamedBuffer> named;
  std::vector<FunctionPlan> functions;
  int64_t totalBytes = 0;
  int64_t persistentBytes = 0;  // sources and outputs
  int64_t tempBytes = 0;
};

inline constexpr int64_t kBufferAlign = 64;

ModulePlan planModule(const ir::Graph& g);

// Human-readable kernel listing (the kernels.txt dump).
std::string printPlan(const ir::Graph& g, const ModulePlan& p);

}  // namespace kiln::lower
