// Shape rules: what each op's result type is, and which inputs are invalid.
#include "Shapes.h"

#include <algorithm>
#include <fmt/format.h>
#include <kiln/rt/Init.h>

namespace kiln::ir {
namespace {

using Result = TypeResult;

Result ok(TensorType t) { return {std::move(t), {}}; }

template <typename... Args>
Result fail(const Node& n, fmt::format_string<Args...> f, Args&&... args) {
  return {std::nullopt, fmt::format("{}: {}", opName(n.op), fmt::format(f, std::forward<Args>(args)...))};
}

const TensorType& operandType(const Graph& g, const Node& n, size_t i) {
  return g.type(n.operands[i]);
}

Result shapeSource(const Graph& g, const Node& n) {
  if (n.name.empty()) return fail(n, "needs a name");
  if (!checkedNumElements(n.type.shape))
    return fail(n, "'{}' has a non-positive dimension or too many elements in {}", n.name, shapeStr(n.type.shape));
  if (n.attrs.has("init")) {
    rt::InitKind kind;
    if (!rt::parseInitKind(n.attrs.getString("init"), kind))
      return fail(n, "'{}' has an unknown initializer \"{}\"", n.name, n.attrs.getString("init"));
  }
  return ok(n.type);
}

Result shapeConstant(const Graph& g, const Node& n) {
  if (!n.attrs.has("value")) return fail(n, "needs a 'value' attribute");
  n.attrs.getFloat("value");  // throws "must be a number" for strings and lists
  if (!checkedNumElements(n.type.shape))
    return fail(n, "non-positive dimension or too many elements in {}", shapeStr(n.type.shape));
  return ok(n.type);
}

Result shapeElementwise(const Graph& g, const Node& n) {
  const TensorType& t0 = operandType(g, n, 0);
  if (t0.dtype != DType::F32) return fail(n, "needs f32 operands, got {}", typeStr(t0));
  for (size_t i = 1; i < n.operands.size(); ++i) {
    const TensorType& ti = operandType(g, n, i);
    if (ti != t0)
      return fail(n, "operand types differ ({} vs {})", typeStr(t0), typeStr(ti));
  }
  return ok(t0);
}

// Checks `axes` is sorted, unique and in range for rank r.
std::string checkAxes(const std::vector<int64_t>& axes, int64_t r) {
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] < 0 || axes[i] >= r) return fmt::format("axis {} out of range for rank {}", axes[i], r);
    if (i > 0 && axes[i] <= axes[i - 1]) return "axes must be sorted and unique";
  }
  return {};
}

Result shapeReduce(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  if (t.dtype != DType::F32) return fail(n, "needs an f32 operand, got {}", typeStr(t));
  const auto& axes = n.attrs.getInts("axes");
  if (auto e = checkAxes(axes, t.rank()); !e.empty()) return fail(n, "{}", e);
  bool keep = n.attrs.getInt("keep", 0) != 0;
  Shape out;
  for (int64_t d = 0; d < t.rank(); ++d) {
    bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!reduced) out.push_back(t.shape[d]);
    else if (keep) out.push_back(1);
  }
  return ok({DType::F32, out});
}

Result shapeArgmax(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  if (t.dtype != DType::F32) return fail(n, "needs an f32 operand, got {}", typeStr(t));
  int64_t axis = n.attrs.getInt("axis");
  if (axis < 0 || axis >= t.rank()) return fail(n, "axis {} out of range for rank {}", axis, t.rank());
  Shape out = t.shape;
  out.erase(out.begin() + axis);
  return ok({DType::I32, out});
}

Result shapeReshape(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  if (!checkedNumElements(n.type.shape)) return fail(n, "bad target shape {}", shapeStr(n.type.shape));
  if (t.dtype != n.type.dtype) return fail(n, "cannot change dtype ({} to {})", typeStr(t), typeStr(n.type));
  if (t.numElements() != n.type.numElements())
    return fail(n, "element counts differ ({} has {}, {} has {})", shapeStr(t.shape), t.numElements(),
                shapeStr(n.type.shape), n.type.numElements());
  return ok(n.type);
}

Result shapeTranspose(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  const auto& perm = n.attrs.getInts("perm");
  if (static_cast<int64_t>(perm.size()) != t.rank())
    return fail(n, "perm has {} entries for rank {}", perm.size(), t.rank());
  std::vector<bool> seen(perm.size(), false);
  Shape out;
  for (int64_t p : perm) {
    if (p < 0 || p >= t.rank() || seen[p]) return fail(n, "perm is not a permutation of 0..{}", t.rank() - 1);
    seen[p] = true;
    out.push_back(t.shape[p]);
  }
  return ok({t.dtype, out});
}

Result shapeBroadcast(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  if (!checkedNumElements(n.type.shape)) return fail(n, "bad target shape {}", shapeStr(n.type.shape));
  if (t.dtype != n.type.dtype) return fail(n, "cannot change dtype ({} to {})", typeStr(t), typeStr(n.type));
  auto b = broadcastShapes(t.shape, n.type.shape);
  if (!b || *b != n.type.shape)
    return fail(n, "cannot broadcast {} to {}", shapeStr(t.shape), shapeStr(n.type.shape));
  return ok(n.type);
}

Result shapeMatMul(const Graph& g, const Node& n) {
  const TensorType& a = operandType(g, n, 0);
  const TensorType& b = operandType(g, n, 1);
  if (a.dtype != DType::F32 || b.dtype != DType::F32)
    return fail(n, "needs f32 operands, got {} and {}", typeStr(a), typeStr(b));
  if (a.rank() != 2 || b.rank() != 2)
    return fail(n, "needs rank-2 operands, got {} and {}", typeStr(a), typeStr(b));
  bool ta = n.attrs.getInt("ta", 0) != 0, tb = n.attrs.getInt("tb", 0) != 0;
  int64_t m = ta ? a.shape[1] : a.shape[0], ka = ta ? a.shape[0] : a.shape[1];
  int64_t kb = tb ? b.shape[1] : b.shape[0], nn = tb ? b.shape[0] : b.shape[1];
  if (ka != kb)
    return fail(n, "inner dims differ ({} vs {}): lhs {}{}, rhs {}{}", ka, kb, typeStr(a), ta ? " (transposed)" : "",
                typeStr(b), tb ? " (transposed)" : "");
  return ok({DType::F32, {m, nn}});
}

Result shapeLogSoftmax(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  if (t.dtype != DType::F32) return fail(n, "needs an f32 operand, got {}", typeStr(t));
  int64_t axis = n.attrs.getInt("axis");
  if (axis < 0 || axis >= t.rank()) return fail(n, "axis {} out of range for rank {}", axis, t.rank());
  return ok(t);
}

Result shapeOneHot(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  if (t.dtype != DType::I32) return fail(n, "needs i32 indices, got {}", typeStr(t));
  int64_t depth = n.attrs.getInt("depth");
  if (depth <= 0) return fail(n, "depth must be positive, got {}", depth);
  Shape out = t.shape;
  out.push_back(depth);
  return ok({DType::F32, out});
}

}  // namespace

std::optional<Shape> broadcastShapes(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void splitAxis(const Shape& s, int64_t axis, int64_t& outer, int64_t& len, int64_t& inner) {
  outer = inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= s[d];
  len = s[axis];
  for (size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
}

std::vector<int64_t> layoutStrides(const Graph& g, const Node& n) {
  const Shape& in = g.type(n.operands.at(0)).shape;
  std::vector<int64_t> st = stridesOf(in), out(n.type.shape.size(), 0);
  if (n.op == OpKind::Transpose) {
    const auto& perm = n.attrs.getInts("perm");
    for (size_t d = 0; d < perm.size(); ++d) out[d] = st[perm[d]];
    return out;
  }
  if (n.op != OpKind::Broadcast) throw CompileError(fmt::format("layoutStrides: {} is not a layout op", opName(n.op)));
  size_t lead = out.size() - in.size();
  for (size_t d = lead; d < out.size(); ++d) out[d] = in[d - lead] == 1 ? 0 : st[d - lead];
  return out;
}

TypeResult inferType(const Graph& g, const Node& n) {
  try {
    switch (n.op) {
#define KILN_OP(Kind, Text, Arity, Flags, Shape, Grad, Family) \
  case OpKind::Kind:                                           \
    return Shape(g, n);
#include "Ops.def"
    }
  } catch (const CompileError& e) {  // a missing or mistyped attribute
    return {std::nullopt, fmt::format("{}: {}", opName(n.op), e.what())};
  }
  return {std::nullopt, "unknown op"};
}

}  // namespace kiln::ir
