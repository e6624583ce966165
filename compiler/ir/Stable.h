// Numerically stable forms of log(...) patterns, recognised on the graph.
// Shared by the DSL (which builds the stable form directly, so autodiff
// differentiates the stable forward graph) and the `stable` pass (which
// rewrites existing graphs, e.g. parsed .kir files).
//
//   log(exp(logSoftmax(x)))            -> logSoftmax(x)
//   log(exp(x) / sum(exp(x), a, keep)) -> logSoftmax(x, a)   (naive softmax)
//   log(sigmoid(x))                    -> -softplus(-x)
//   log(sum(exp(x), axes))             -> logSumExp(x, axes) = m + log(sum(exp(x - m)))
//   log(1 + x), log(x + 1)             -> log1p(x)
#pragma once

#include <optional>
#include <vector>

#include "Graph.h"

namespace kiln::ir {

enum class StableKind { LogSoftmaxOf, NaiveSoftmax, LogSigmoid, LogSumExp, Log1p };

struct StableMatch {
  StableKind kind;
  ValueId x;                  // the pattern's input (for LogSoftmaxOf: the logsoftmax value itself)
  std::vector<int64_t> axes;  // NaiveSoftmax: {axis}; LogSumExp: the summed axes
  bool keep = false;          // LogSumExp: keep reduced dims
};

// What log(v) can be rewritten to, if anything.
std::optional<StableMatch> matchStableLog(const Graph& g, ValueId v);

}  // namespace kiln::ir
