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

// All operands share operand 0's type.
Result sameTypes(const Graph& g, const Node& n) {
  const TensorType& t0 = operandType(g, n, 0);
  for (size_t i = 1; i < n.operands.size(); ++i) {
    const TensorType& ti = operandType(g, n, i);
    if (ti != t0) return fail(n, "operand types differ ({} vs {})", typeStr(t0), typeStr(ti));
  }
  return ok(t0);
}

Result needF32(const Graph& g, const Node& n, Result r) {
  if (r.type && r.type->dtype != DType::F32) return fail(n, "needs f32 operands, got {}", typeStr(*r.type));
  return r;
}

Result shapeUnaryF(const Graph& g, const Node& n) { return needF32(g, n, ok(operandType(g, n, 0))); }
Result shapeUnary(const Graph& g, const Node& n) { return ok(operandType(g, n, 0)); }
Result shapeBinary(const Graph& g, const Node& n) { return sameTypes(g, n); }
Result shapeBinaryF(const Graph& g, const Node& n) { return needF32(g, n, sameTypes(g, n)); }

Result shapeCompare(const Graph& g, const Node& n) {
  Result r = sameTypes(g, n);
  if (!r.type) return r;
  return ok({DType::F32, r.type->shape});
}

Result shapeSelect(const Graph& g, const Node& n) {
  const TensorType& c = operandType(g, n, 0);
  if (c.dtype != DType::F32) return fail(n, "the condition must be an f32 mask, got {}", typeStr(c));
  Result r = sameTypes(g, n);
  if (!r.type) return r;
  return ok(operandType(g, n, 1));
}

Result shapeCast(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  if (n.type.shape != t.shape)
    return fail(n, "cannot change the shape ({} to {})", shapeStr(t.shape), shapeStr(n.type.shape));
  return ok(n.type);
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

Result shapeArgReduce(const Graph& g, const Node& n) {
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
  if (a.rank() < 2 || a.rank() != b.rank())
    return fail(n, "needs operands of equal rank >= 2, got {} and {}", typeStr(a), typeStr(b));
  size_t r = a.shape.size();
  for (size_t d = 0; d + 2 < r; ++d)
    if (a.shape[d] != b.shape[d]) return fail(n, "batch dims differ: {} and {}", typeStr(a), typeStr(b));
  bool ta = n.attrs.getInt("ta", 0) != 0, tb = n.attrs.getInt("tb", 0) != 0;
  int64_t a0 = a.shape[r - 2], a1 = a.shape[r - 1], b0 = b.shape[r - 2], b1 = b.shape[r - 1];
  int64_t m = ta ? a1 : a0, ka = ta ? a0 : a1;
  int64_t kb = tb ? b1 : b0, nn = tb ? b0 : b1;
  if (ka != kb)
    return fail(n, "inner dims differ ({} vs {}): lhs {}{}, rhs {}{}", ka, kb, typeStr(a), ta ? " (transposed)" : "",
                typeStr(b), tb ? " (transposed)" : "");
  Shape out(a.shape.begin(), a.shape.end() - 2);
  out.push_back(m);
  out.push_back(nn);
  return ok({DType::F32, out});
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


// The per-dim integer list attribute `key` of length `rank`.
std::vector<int64_t> dimList(const Node& n, std::string_view key, size_t rank) {
  const auto& v = n.attrs.getInts(key);
  if (v.size() != rank)
    throw CompileError(fmt::format("'{}' has {} entries for rank {}", key, v.size(), rank));
  return v;
}

Result shapeConcat(const Graph& g, const Node& n) {
  const TensorType& t0 = operandType(g, n, 0);
  int64_t axis = n.attrs.getInt("axis");
  if (axis < 0 || axis >= t0.rank()) return fail(n, "axis {} out of range for rank {}", axis, t0.rank());
  Shape out = t0.shape;
  for (size_t i = 1; i < n.operands.size(); ++i) {
    const TensorType& ti = operandType(g, n, i);
    bool okShape = ti.dtype == t0.dtype && ti.rank() == t0.rank();
    for (int64_t d = 0; okShape && d < t0.rank(); ++d)
      if (d != axis && ti.shape[d] != t0.shape[d]) okShape = false;
    if (!okShape)
      return fail(n, "operand {} is {}, which cannot be joined with {} along axis {}", i, typeStr(ti), typeStr(t0), axis);
    out[axis] += ti.shape[axis];
  }
  return ok({t0.dtype, out});
}

Result shapeSlice(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  size_t r = t.shape.size();
  auto begin = dimList(n, "begin", r), end = dimList(n, "end", r), stride = dimList(n, "stride", r);
  Shape out(r);
  for (size_t d = 0; d < r; ++d) {
    if (stride[d] < 1) return fail(n, "stride must be >= 1, got {} on dim {}", stride[d], d);
    if (begin[d] < 0 || end[d] > t.shape[d] || begin[d] >= end[d])
      return fail(n, "dim {}: [{}, {}) is not a non-empty range inside 0..{}", d, begin[d], end[d], t.shape[d]);
    out[d] = (end[d] - begin[d] + stride[d] - 1) / stride[d];
  }
  return ok({t.dtype, out});
}

Result shapePad(const Graph& g, const Node& n) {
  const TensorType& t = operandType(g, n, 0);
  size_t r = t.shape.size();
  auto lo = dimList(n, "lo", r), hi = dimList(n, "hi", r), in = dimList(n, "interior", r);
  Shape out(r);
  for (size_t d = 0; d < r; ++d) {
    if (lo[d] < 0 || hi[d] < 0 || in[d] < 0) return fail(n, "dim {}: padding must be >= 0", d);
    out[d] = lo[d] + hi[d] + t.shape[d] + (t.shape[d] - 1) * in[d];
  }
  if (!checkedNumElements(out)) return fail(n, "result {} is too large", shapeStr(out));
  return ok({t.dtype, out});
}

Result shapeGather(const Graph& g, const Node& n) {
  const TensorType& table = operandType(g, n, 0);
  const TensorType& idx = operandType(g, n, 1);
  if (idx.dtype != DType::I32) return fail(n, "needs i32 indices, got {}", typeStr(idx));
  if (table.rank() < 1) return fail(n, "needs a table of rank >= 1, got {}", typeStr(table));
  Shape out = idx.shape;
  out.insert(out.end(), table.shape.begin() + 1, table.shape.end());
  return ok({table.dtype, out});
}

Result shapeScatterAdd(const Graph& g, const Node& n) {
  const TensorType& src = operandType(g, n, 0);
  const TensorType& idx = operandType(g, n, 1);
  if (idx.dtype != DType::I32) return fail(n, "needs i32 indices, got {}", typeStr(idx));
  if (src.dtype != DType::F32) return fail(n, "needs an f32 source, got {}", typeStr(src));
  const Shape& out = n.type.shape;
  Shape expect = idx.shape;
  if (!out.empty()) expect.insert(expect.end(), out.begin() + 1, out.end());
  if (out.empty() || expect != src.shape || !checkedNumElements(out))
    return fail(n, "source {} with indices {} cannot scatter into {}", typeStr(src), typeStr(idx), shapeStr(out));
  return ok({DType::F32, out});
}

// x and idx have equal rank and agree on every dim but `axis`.
Result checkAlong(const Graph& g, const Node& n, const TensorType& x, const TensorType& idx) {
  if (idx.dtype != DType::I32) return fail(n, "needs i32 indices, got {}", typeStr(idx));
  int64_t axis = n.attrs.getInt("axis");
  if (axis < 0 || axis >= x.rank()) return fail(n, "axis {} out of range for rank {}", axis, x.rank());
  bool same = idx.rank() == x.rank();
  for (int64_t d = 0; same && d < x.rank(); ++d)
    if (d != axis && idx.shape[d] != x.shape[d]) same = false;
  if (!same) return fail(n, "indices {} do not match {} off axis {}", typeStr(idx), typeStr(x), axis);
  return ok(x);
}

Result shapeTakeAlong(const Graph& g, const Node& n) {
  const TensorType& x = operandType(g, n, 0);
  const TensorType& idx = operandType(g, n, 1);
  Result r = checkAlong(g, n, x, idx);
  if (!r.type) return r;
  return ok({x.dtype, idx.shape});
}

Result shapeScatterAlong(const Graph& g, const Node& n) {
  const TensorType& src = operandType(g, n, 0);
  const TensorType& idx = operandType(g, n, 1);
  if (src.shape != idx.shape || src.dtype != DType::F32)
    return fail(n, "needs an f32 source shaped like the indices, got {} and {}", typeStr(src), typeStr(idx));
  if (!checkedNumElements(n.type.shape)) return fail(n, "bad result shape {}", shapeStr(n.type.shape));
  Result r = checkAlong(g, n, {DType::F32, n.type.shape}, idx);
  if (!r.type) return r;
  return ok({DType::F32, n.type.shape});
}

}  // namespace

ConvGeom convGeom(const Attrs& a) {
  ConvGeom c;
  auto two = [&](std::string_view key, int64_t dflt, int64_t out[2]) {
    if (!a.has(key)) {
      out[0] = out[1] = dflt;
      return;
    }
    const auto& v = a.getInts(key);
    if (v.size() != 2) throw CompileError(fmt::format("'{}' needs 2 entries, has {}", key, v.size()));
    out[0] = v[0];
    out[1] = v[1];
  };
  two("stride", 1, c.stride);
  two("pad", 0, c.pad);
  two("dilation", 1, c.dilation);
  two("kernel", 1, c.kernel);
  c.groups = a.getInt("groups", 1);
  return c;
}

namespace {

// Output size of a sliding window, or -1 when the window does not fit.
int64_t windowOut(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  int64_t span = dil * (k - 1) + 1;
  if (in + 2 * pad < span) return -1;
  return (in + 2 * pad - span) / stride + 1;
}

// The conv2d result type for input x and filter w, or an error.
Result convResult(const Node& n, const TensorType& x, const TensorType& w) {
  if (x.dtype != DType::F32 || w.dtype != DType::F32 || x.rank() != 4 || w.rank() != 4)
    return fail(n, "needs f32 x [N,C,H,W] and w [O,C/groups,KH,KW], got {} and {}", typeStr(x), typeStr(w));
  ConvGeom c = convGeom(n.attrs);
  for (int i = 0; i < 2; ++i)
    if (c.stride[i] < 1 || c.dilation[i] < 1 || c.pad[i] < 0)
      return fail(n, "stride and dilation must be >= 1 and pad >= 0");
  if (c.groups < 1 || x.shape[1] % c.groups || w.shape[0] % c.groups || w.shape[1] * c.groups != x.shape[1])
    return fail(n, "x has {} channels, w {} (x{} groups): channels must split evenly into groups", x.shape[1],
                w.shape[1], c.groups);
  int64_t oh = windowOut(x.shape[2], w.shape[2], c.stride[0], c.pad[0], c.dilation[0]);
  int64_t ow = windowOut(x.shape[3], w.shape[3], c.stride[1], c.pad[1], c.dilation[1]);
  if (oh < 1 || ow < 1) return fail(n, "the {}x{} filter does not fit the {}x{} input", w.shape[2], w.shape[3], x.shape[2], x.shape[3]);
  return ok({DType::F32, {x.shape[0], w.shape[0], oh, ow}});
}

Result shapeConv2d(const Graph& g, const Node& n) {
  return convResult(n, operandType(g, n, 0), operandType(g, n, 1));
}

// dx has the declared shape; conv(dx, w) must have dy's shape.
Result shapeConv2dBwdInput(const Graph& g, const Node& n) {
  const TensorType& dy = operandType(g, n, 0);
  Result r = convResult(n, n.type, operandType(g, n, 1));
  if (!r.type) return r;
  if (*r.type != dy) return fail(n, "dy is {} but the input shape {} gives {}", typeStr(dy), typeStr(n.type), typeStr(*r.type));
  return ok(n.type);
}

Result shapeConv2dBwdFilter(const Graph& g, const Node& n) {
  const TensorType& dy = operandType(g, n, 1);
  Result r = convResult(n, operandType(g, n, 0), n.type);
  if (!r.type) return r;
  if (*r.type != dy) return fail(n, "dy is {} but the filter shape {} gives {}", typeStr(dy), typeStr(n.type), typeStr(*r.type));
  return ok(n.type);
}

Result poolResult(const Node& n, const TensorType& x) {
  if (x.dtype != DType::F32 || x.rank() != 4) return fail(n, "needs f32 x [N,C,H,W], got {}", typeStr(x));
  ConvGeom c = convGeom(n.attrs);
  for (int i = 0; i < 2; ++i) {
    if (c.kernel[i] < 1 || c.stride[i] < 1 || c.pad[i] < 0) return fail(n, "kernel and stride must be >= 1 and pad >= 0");
    if (2 * c.pad[i] > c.kernel[i]) return fail(n, "pad {} is more than half the kernel {}", c.pad[i], c.kernel[i]);
  }
  int64_t oh = windowOut(x.shape[2], c.kernel[0], c.stride[0], c.pad[0], 1);
  int64_t ow = windowOut(x.shape[3], c.kernel[1], c.stride[1], c.pad[1], 1);
  if (oh < 1 || ow < 1) return fail(n, "the {}x{} window does not fit the {}x{} input", c.kernel[0], c.kernel[1], x.shape[2], x.shape[3]);
  return ok({DType::F32, {x.shape[0], x.shape[1], oh, ow}});
}

Result shapePool2d(const Graph& g, const Node& n) { return poolResult(n, operandType(g, n, 0)); }

Result shapeMaxPool2dGrad(const Graph& g, const Node& n) {
  const TensorType& x = operandType(g, n, 0);
  Result r = poolResult(n, x);
  if (!r.type) return r;
  if (*r.type != operandType(g, n, 1)) return fail(n, "dy is {}, the pool gives {}", typeStr(operandType(g, n, 1)), typeStr(*r.type));
  return ok(x);
}

Result shapeAvgPool2dGrad(const Graph& g, const Node& n) {
  Result r = poolResult(n, n.type);
  if (!r.type) return r;
  if (*r.type != operandType(g, n, 0)) return fail(n, "dy is {}, the pool of {} gives {}", typeStr(operandType(g, n, 0)), typeStr(n.type), typeStr(*r.type));
  return ok(n.type);
}

Result shapeRandom(const Graph& g, const Node& n) {
  const TensorType& key = operandType(g, n, 0);
  if (key != TensorType{DType::I32, {2}}) return fail(n, "needs an i32[2] key, got {}", typeStr(key));
  std::string dist = n.attrs.getString("dist");
  if (dist != "uniform" && dist != "normal") return fail(n, "unknown distribution \"{}\"", dist);
  n.attrs.getInt("stream");
  if (n.type.dtype != DType::F32 || !checkedNumElements(n.type.shape)) return fail(n, "bad result type {}", typeStr(n.type));
  return ok(n.type);
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
#define KILN_OP(Kind, Text, Arity, Flags, Shape, Grad, Family, Doc) \
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
