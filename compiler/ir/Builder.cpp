// The builder DSL: op constructors with shape checks at build time.
#include "Builder.h"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "Shapes.h"
#include "Text.h"

namespace kiln {

using ir::Attrs;
using ir::OpKind;
using ir::TensorType;

const ir::TensorType& Tensor::type() const {
  if (!g_) throw Error("use of an empty Tensor handle");
  return g_->ir().type(id_);
}

int64_t Tensor::dim(int64_t i) const {
  int64_t r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r) throw Error(fmt::format("dim {} out of range for {}", i, ir::typeStr(type())));
  return shape()[i];
}

ir::SourceLoc Graph::locOf(const Loc& loc) const {
  if (override_.valid()) return override_;
  std::string_view f = loc.file_name();
  auto slash = f.find_last_of('/');
  if (slash != std::string_view::npos) f = f.substr(slash + 1);
  return {std::string(f), static_cast<int>(loc.line())};
}

[[noreturn]] static void fail(const ir::SourceLoc& where, std::string_view msg) {
  throw Error(where.valid() ? fmt::format("{}: {}", where.str(), msg) : std::string(msg));
}

Tensor Graph::build(OpKind op, std::vector<Tensor> operands, Attrs attrs, TensorType declared, Loc loc) {
  ir::Node n;
  n.op = op;
  n.attrs = std::move(attrs);
  n.type = std::move(declared);
  n.loc = locOf(loc);
  for (const Tensor& t : operands) {
    if (&t.graph() != this) fail(n.loc, fmt::format("{}: operand belongs to another graph", ir::opName(op)));
    n.operands.push_back(t.id());
  }
  ir::TypeResult r = ir::inferType(ir_, n);
  if (!r.type) fail(n.loc, r.error);
  n.type = *r.type;
  return Tensor(this, ir_.add(std::move(n)));
}

static Shape checkedShape(Shape s, const ir::SourceLoc& where, std::string_view what) {
  for (int64_t d : s)
    if (d <= 0) fail(where, fmt::format("{}: dimensions must be positive, got {}", what, ir::shapeStr(s)));
  if (!ir::checkedNumElements(s))
    fail(where, fmt::format("{}: {} has more than 2^40 elements", what, ir::shapeStr(s)));
  return s;
}

Tensor Graph::input(std::string name, Shape shape, DType dtype, Loc loc) {
  ir::Node n;
  n.op = OpKind::Input;
  n.name = std::move(name);
  n.loc = locOf(loc);
  n.type = {dtype, checkedShape(std::move(shape), n.loc, "input")};
  if (ir_.findSource(n.name) >= 0) fail(n.loc, fmt::format("input: name \"{}\" is already used", n.name));
  return Tensor(this, ir_.add(std::move(n)));
}

static Tensor addSource(Graph& g, OpKind op, std::string name, Shape shape, DType dtype, const Init& init,
                        ir::SourceLoc where) {
  ir::Node n;
  n.op = op;
  n.name = std::move(name);
  n.loc = where;
  n.type = {dtype, checkedShape(std::move(shape), n.loc, ir::opName(op))};
  if (g.ir().findSource(n.name) >= 0)
    fail(n.loc, fmt::format("{}: name \"{}\" is already used", ir::opName(op), n.name));
  static const char* kKinds[] = {"zeros", "constant", "uniform", "normal", "xavier_uniform", "he_uniform", "he_normal"};
  if (std::find(std::begin(kKinds), std::end(kKinds), init.kind) == std::end(kKinds))
    fail(n.loc, fmt::format("{}: unknown initializer \"{}\"", ir::opName(op), init.kind));
  const Shape& s = n.type.shape;
  n.attrs.set("init", init.kind);
  if (init.kind == "constant" || init.kind == "uniform" || init.kind == "normal") {
    n.attrs.set("a", init.a);
    if (init.kind != "constant") n.attrs.set("b", init.b);
  }
  if (init.kind.starts_with("xavier") || init.kind.starts_with("he")) {
    n.attrs.set("fan_in", s.empty() ? int64_t(1) : s.front());
    n.attrs.set("fan_out", s.empty() ? int64_t(1) : s.back());
  }
  return g.tensor(g.ir().add(std::move(n)));
}

Tensor Graph::param(std::string name, Shape shape, Init init, Loc loc) {
  return addSource(*this, OpKind::Param, std::move(name), std::move(shape), DType::F32, init, locOf(loc));
}

Tensor Graph::state(std::string name, Shape shape, Init init, DType dtype, Loc loc) {
  return addSource(*this, OpKind::State, std::move(name), std::move(shape), dtype, init, locOf(loc));
}

Tensor Graph::constant(double value, Shape shape, DType dtype, Loc loc) {
  Attrs a;
  // Store the float the kernel will use, printed in its shortest form.
  a.set("value", dtype == DType::F32 ? static_cast<double>(static_cast<float>(value)) : std::trunc(value));
  return build(OpKind::Constant, {}, std::move(a), {dtype, std::move(shape)}, loc);
}

// ---- elementwise ----

static Tensor binary(OpKind op, Tensor a, Tensor b, Loc loc) {
  Graph& g = a.graph();
  auto out = ir::broadcastShapes(a.shape(), b.shape());
  if (!out)
    fail(g.locOf(loc), fmt::format("{}: cannot broadcast {} with {}", ir::opName(op), ir::typeStr(a.type()),
                                   ir::typeStr(b.type())));
  if (a.shape() != *out) a = broadcastTo(a, *out, loc);
  if (b.shape() != *out) b = broadcastTo(b, *out, loc);
  return g.build(op, {a, b}, {}, {}, loc);
}

static Tensor unary(OpKind op, Tensor x, Loc loc) { return x.graph().build(op, {x}, {}, {}, loc); }

Tensor add(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Add, a, b, loc); }
Tensor sub(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Sub, a, b, loc); }
Tensor mul(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Mul, a, b, loc); }
Tensor div(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Div, a, b, loc); }
Tensor maximum(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Maximum, a, b, loc); }
Tensor neg(Tensor x, Loc loc) { return unary(OpKind::Neg, x, loc); }
Tensor exp(Tensor x, Loc loc) { return unary(OpKind::Exp, x, loc); }
Tensor log(Tensor x, Loc loc) { return unary(OpKind::Log, x, loc); }
Tensor sqrt(Tensor x, Loc loc) { return unary(OpKind::Sqrt, x, loc); }
Tensor relu(Tensor x, Loc loc) { return unary(OpKind::Relu, x, loc); }
Tensor tanh(Tensor x, Loc loc) { return unary(OpKind::Tanh, x, loc); }
Tensor sigmoid(Tensor x, Loc loc) { return unary(OpKind::Sigmoid, x, loc); }
Tensor step(Tensor x, Loc loc) { return unary(OpKind::Step, x, loc); }

static Tensor scalarLike(Tensor like, double v, Loc loc) { return like.graph().constant(v, {}, like.dtype(), loc); }

Tensor operator+(TensorAt a, Tensor b) { return add(a.t, b, a.loc); }
Tensor operator-(TensorAt a, Tensor b) { return sub(a.t, b, a.loc); }
Tensor operator*(TensorAt a, Tensor b) { return mul(a.t, b, a.loc); }
Tensor operator/(TensorAt a, Tensor b) { return div(a.t, b, a.loc); }
Tensor operator+(TensorAt a, double b) { return add(a.t, scalarLike(a.t, b, a.loc), a.loc); }
Tensor operator-(TensorAt a, double b) { return sub(a.t, scalarLike(a.t, b, a.loc), a.loc); }
Tensor operator*(TensorAt a, double b) { return mul(a.t, scalarLike(a.t, b, a.loc), a.loc); }
Tensor operator/(TensorAt a, double b) { return div(a.t, scalarLike(a.t, b, a.loc), a.loc); }
Tensor operator+(double a, TensorAt b) { return add(scalarLike(b.t, a, b.loc), b.t, b.loc); }
Tensor operator-(double a, TensorAt b) { return sub(scalarLike(b.t, a, b.loc), b.t, b.loc); }
Tensor operator*(double a, TensorAt b) { return mul(scalarLike(b.t, a, b.loc), b.t, b.loc); }
Tensor operator/(double a, TensorAt b) { return div(scalarLike(b.t, a, b.loc), b.t, b.loc); }
Tensor operator-(TensorAt x) { return neg(x.t, x.loc); }

// ---- reductions ----

// Normalizes user axes (negative, unsorted, empty = all) to sorted unique.
static std::vector<int64_t> normAxes(Tensor x, std::vector<int64_t> axes, std::string_view op, Loc loc) {
  int64_t r = x.rank();
  if (axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  for (int64_t& a : axes) {
    int64_t orig = a;
    if (a < 0) a += r;
    if (a < 0 || a >= r)
      fail(x.graph().locOf(loc), fmt::format("{}: axis {} out of range for {}", op, orig, ir::typeStr(x.type())));
  }
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  return axes;
}

static Tensor reduce(OpKind op, Tensor x, std::vector<int64_t> axes, bool keep, Loc loc) {
  Attrs a;
  a.set("axes", normAxes(x, std::move(axes), ir::opName(op), loc));
  a.set("keep", int64_t(keep ? 1 : 0));
  return x.graph().build(op, {x}, std::move(a), {}, loc);
}

Tensor sum(Tensor x, std::vector<int64_t> axes, bool keepDims, Loc loc) {
  return reduce(OpKind::Sum, x, std::move(axes), keepDims, loc);
}

Tensor mean(Tensor x, std::vector<int64_t> axes, bool keepDims, Loc loc) {
  auto norm = normAxes(x, axes, "mean", loc);
  int64_t count = 1;
  for (int64_t a : norm) count *= x.shape()[a];
  Tensor s = reduce(OpKind::Sum, x, norm, keepDims, loc);
  return mul(s, x.graph().constant(1.0 / static_cast<double>(count), {}, DType::F32, loc), loc);
}

Tensor reduceMax(Tensor x, std::vector<int64_t> axes, bool keepDims, Loc loc) {
  return reduce(OpKind::ReduceMax, x, std::move(axes), keepDims, loc);
}

static int64_t normAxis(Tensor x, int64_t axis, std::string_view op, Loc loc) {
  return normAxes(x, {axis}, op, loc).front();
}

Tensor argmax(Tensor x, int64_t axis, Loc loc) {
  Attrs a;
  a.set("axis", normAxis(x, axis, "argmax", loc));
  return x.graph().build(OpKind::Argmax, {x}, std::move(a), {}, loc);
}

// ---- layout ----

Tensor reshape(Tensor x, Shape shape, Loc loc) {
  int64_t known = 1, inferAt = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && inferAt < 0) inferAt = static_cast<int64_t>(i);
    else known *= shape[i];
  }
  int64_t count = x.type().numElements();
  if (inferAt >= 0) {
    if (known <= 0 || count % known != 0)
      fail(x.graph().locOf(loc), fmt::format("reshape: cannot reshape {} ({} elements) to {}", ir::typeStr(x.type()),
                                             count, ir::shapeStr(shape)));
    shape[inferAt] = count / known;
  }
  return x.graph().build(OpKind::Reshape, {x}, {}, {x.dtype(), std::move(shape)}, loc);
}

Tensor transpose(Tensor x, std::vector<int64_t> perm, Loc loc) {
  if (perm.empty())
    for (int64_t i = x.rank() - 1; i >= 0; --i) perm.push_back(i);
  Attrs a;
  a.set("perm", std::move(perm));
  return x.graph().build(OpKind::Transpose, {x}, std::move(a), {}, loc);
}

Tensor broadcastTo(Tensor x, Shape shape, Loc loc) {
  if (x.shape() == shape) return x;
  return x.graph().build(OpKind::Broadcast, {x}, {}, {x.dtype(), std::move(shape)}, loc);
}

// ---- contractions, softmax, losses ----

Tensor matmul(Tensor a, Tensor b, bool transA, bool transB, Loc loc) {
  Attrs at;
  at.set("ta", int64_t(transA));
  at.set("tb", int64_t(transB));
  return a.graph().build(OpKind::MatMul, {a, b}, std::move(at), {}, loc);
}

Tensor logSoftmax(Tensor x, int64_t axis, Loc loc) {
  Attrs a;
  a.set("axis", normAxis(x, axis, "logsoftmax", loc));
  return x.graph().build(OpKind::LogSoftmax, {x}, std::move(a), {}, loc);
}

Tensor softmax(Tensor x, int64_t axis, Loc loc) { return exp(logSoftmax(x, axis, loc), loc); }

Tensor oneHot(Tensor indices, int64_t depth, Loc loc) {
  Attrs a;
  a.set("depth", depth);
  return indices.graph().build(OpKind::OneHot, {indices}, std::move(a), {}, loc);
}

Tensor softmaxCrossEntropy(Tensor logits, Tensor labels, Loc loc) {
  if (logits.rank() != 2 || labels.rank() != 1 || labels.dtype() != DType::I32 || labels.dim(0) != logits.dim(0))
    fail(logits.graph().locOf(loc),
         fmt::format("softmaxCrossEntropy: needs logits f32[N,C] and labels i32[N], got {} and {}",
                     ir::typeStr(logits.type()), ir::typeStr(labels.type())));
  Tensor picked = sum(mul(oneHot(labels, logits.dim(1), loc), logSoftmax(logits, 1, loc), loc), {1}, false, loc);
  return neg(picked, loc);
}

}  // namespace kiln
