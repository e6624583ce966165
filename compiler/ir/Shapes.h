// Shape and dtype rules, one per op (the ShapeRule column of Ops.def).
#pragma once

#include <optional>
#include <string>

#include "Graph.h"

namespace kiln::ir {

// Computes the result type of `n` from its operands (already in `g`) and
// attributes. Ops whose type is declared rather than derived (sources,
// constants, reshape, broadcast) check `n.type` and return it. On failure
// returns a message such as "matmul: inner dims differ (784 vs 512)".
struct TypeResult {
  std::optional<TensorType> type;
  std::string error;
};
TypeResult inferType(const Graph& g, const Node& n);

// For a transpose or broadcast node: the operand's stride for each result
// dimension (0 where a dimension is broadcast), so result[idx] =
// operand[sum(idx[d] * strides[d])]. Shared by the interpreter and codegen.
std::vector<int64_t> layoutStrides(const Graph& g, const Node& n);

// Splits `shape` around `axis` into outer * len * inner (row-major), for
// ops that work along one axis (argmax, logsoftmax).
void splitAxis(const Shape& shape, int64_t axis, int64_t& outer, int64_t& len, int64_t& inner);

// Window geometry of conv2d and the pools, from their attributes (per
// spatial dim: [h, w]); absent attributes take their defaults (stride 1,
// pad 0, dilation 1, kernel 1, groups 1).
struct ConvGeom {
  int64_t stride[2], pad[2], dilation[2], kernel[2];
  int64_t groups;
};
ConvGeom convGeom(const Attrs& a);

// Numpy-style broadcast of two shapes, or nullopt if incompatible.
std::optional<Shape> broadcastShapes(const Shape& a, const Shape& b);

}  // namespace kiln::ir
