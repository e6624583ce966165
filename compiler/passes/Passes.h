// Graph passes and the default pipeline.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/Graph.h"

namespace kiln::passes {

#define KILN_PASS(Fn, Name) bool Fn(ir::Graph& g);
#include "Passes.def"

using PassFn = bool (*)(ir::Graph&);
struct PassInfo {
  std::string_view name;
  PassFn fn;
};
const std::vector<PassInfo>& allPasses();
const PassInfo* findPass(std::string_view name);

// The GEMM (codegen/Gemm.cpp) reads a right operand that is not transposed
// in place, unpacked, when the product has at most this many rows; a
// transposed one it packs on every call. The batch pass therefore transposes
// a right operand shared by several such products once (docs/passes.md).
inline constexpr int64_t kGemmInPlaceRows = 48;
// Columns of the GEMM's panel with AVX-512 (lower::kGemmMaxNR; the batch
// pass avoids products whose last panel would hold only a few of them)
inline constexpr int64_t kGemmPanel = 32;
// The batch pass leaves groups of fewer members than this alone, so an
// ordinary MLP (one matmul per weight) is untouched.
inline constexpr size_t kBatchMinGroup = 4;
// Byte alignment at which a row slice of a buffer is a view rather than a
// copy (lower::kBufferAlign; lowering depends on the passes, not back, and
// lower/Aliases.cpp asserts the two agree)
inline constexpr int64_t kViewAlign = 64;

// A 2-D matmul of at most kGemmInPlaceRows rows: the products whose shared
// right operand the batch pass transposes once, and simplify then leaves so.
inline bool isFewRowsProduct(const ir::Node& n) {
  return n.op == ir::OpKind::MatMul && n.type.rank() == 2 && n.type.shape[0] <= kGemmInPlaceRows;
}

// The default pipeline, in order.
std::vector<std::string> defaultPipeline();

struct PassRecord {
  std::string name;
  bool changed = false;
  double ms = 0;
  int32_t nodesBefore = 0, nodesAfter = 0;
};

// Runs `names` in order. With `verifyEach`, the verifier runs after every
// pass and an error names the pass that broke the graph. `after` is called
// after each pass (for dumps).
std::vector<PassRecord> runPasses(ir::Graph& g, const std::vector<std::string>& names, bool verifyEach,
                                  const std::function<void(const PassRecord&, const ir::Graph&)>& after = {});

}  // namespace kiln::passes
