// The builder DSL: op constructors with shape checks at build time.
#include "Builder.h"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "Shapes.h"
#include "Stable.h"
#include "Text.h"
#include <kiln/rt/Init.h>

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
  rt::InitKind kind;
  if (!rt::parseInitKind(init.kind, kind))
    fail(n.loc, fmt::format("{}: unknown initializer \"{}\"", ir::opName(op), init.kind));
  bool intKind = kind == rt::InitKind::Seed || kind == rt::InitKind::Zeros;
  if (dtype == DType::I32 ? !intKind : kind == rt::InitKind::Seed)
    fail(n.loc, fmt::format("{}: initializer \"{}\" does not apply to {}", ir::opName(op), init.kind, ir::typeStr(n.type)));
  if ((kind == rt::InitKind::Identity || kind == rt::InitKind::Orthogonal) && n.type.shape.size() != 2)
    fail(n.loc, fmt::format("{}: initializer \"{}\" needs a matrix, got {}", ir::opName(op), init.kind, ir::typeStr(n.type)));
  const Shape& s = n.type.shape;
  n.attrs.set("init", init.kind);
  if (init.kind == "constant" || init.kind == "identity" || init.kind == "orthogonal") n.attrs.set("a", init.a);
  if (init.kind == "uniform" || init.kind == "normal" || init.kind == "truncated_normal") {
    n.attrs.set("a", init.a);
    n.attrs.set("b", init.b);
  }
  if (init.kind.starts_with("xavier") || init.kind.starts_with("he") || init.kind == "orthogonal" ||
      init.kind == "identity") {
    // [in, out] matrices; [O, C, KH, KW] conv filters count the receptive
    // field (as PyTorch does); other shapes use the first and last dims.
    int64_t fanIn = s.empty() ? 1 : s.front(), fanOut = s.empty() ? 1 : s.back();
    if (s.size() == 4) {
      fanIn = s[1] * s[2] * s[3];
      fanOut = s[0] * s[2] * s[3];
    }
    n.attrs.set("fan_in", fanIn);
    n.attrs.set("fan_out", fanOut);
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
Tensor log(Tensor x, Loc loc) {
  Graph& g = x.graph();
  if (g.stableRewrites())
    if (auto m = ir::matchStableLog(g.ir(), x.id())) {
      Tensor in = g.tensor(m->x);
      switch (m->kind) {
        case ir::StableKind::LogSoftmaxOf: return in;
        case ir::StableKind::NaiveSoftmax: return logSoftmax(in, m->axes[0], loc);
        case ir::StableKind::LogSigmoid: return neg(softplus(neg(in, loc), loc), loc);
        case ir::StableKind::LogSumExp: return logSumExp(in, m->axes, m->keep, loc);
        case ir::StableKind::Log1p: return log1p(in, loc);
      }
    }
  return unary(OpKind::Log, x, loc);
}
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
  Tensor idx = reshape(labels, {labels.dim(0), 1}, loc);
  Tensor picked = takeAlongAxis(logSoftmax(logits, 1, loc), idx, 1, loc);
  return neg(reshape(picked, {logits.dim(0)}, loc), loc);
}

}  // namespace kiln

namespace kiln {

// ---- graph-level helpers ----

Tensor Graph::rngKey(Loc loc) {
  if (rngKey_ >= 0) return tensor(rngKey_);
  Tensor key = state("rng.key", {2}, Init{"seed", 0, 0}, DType::I32, loc);
  rngKey_ = key.id();
  // key + (0, 1): the step half counts training steps
  Tensor one = concat({constant(0, {1}, DType::I32, loc), constant(1, {1}, DType::I32, loc)}, 0, loc);
  addStateUpdate(key, add(key, one, loc), loc);
  return key;
}

void Graph::addStateUpdate(Tensor target, Tensor value, Loc loc) {
  ir::SourceLoc where = locOf(loc);
  if (&target.graph() != this || &value.graph() != this) fail(where, "addStateUpdate: tensors of another graph");
  if (ir_.node(target.id()).op != OpKind::State)
    fail(where, fmt::format("addStateUpdate: target {} is not a state", ir::describeValue(ir_, target.id())));
  if (target.type() != value.type())
    fail(where, fmt::format("addStateUpdate: value {} does not match state {}", ir::typeStr(value.type()),
                            ir::typeStr(target.type())));
  for (const StateUpdate& u : stateUpdates_)
    if (u.target.id() == target.id())
      fail(where, fmt::format("addStateUpdate: state \"{}\" already has an update", ir_.node(target.id()).name));
  stateUpdates_.push_back({target, value});
}

// ---- more elementwise ----

static Tensor withAlpha(OpKind op, Tensor x, double alpha, Loc loc) {
  Attrs a;
  a.set("alpha", static_cast<double>(static_cast<float>(alpha)));
  return x.graph().build(op, {x}, std::move(a), {}, loc);
}

Tensor minimum(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Minimum, a, b, loc); }
Tensor pow(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Pow, a, b, loc); }
Tensor pow(Tensor a, double b, Loc loc) { return binary(OpKind::Pow, a, scalarLike(a, b, loc), loc); }
Tensor log1p(Tensor x, Loc loc) { return unary(OpKind::Log1p, x, loc); }
Tensor rsqrt(Tensor x, Loc loc) { return unary(OpKind::Rsqrt, x, loc); }
Tensor abs(Tensor x, Loc loc) { return unary(OpKind::Abs, x, loc); }
Tensor sign(Tensor x, Loc loc) { return unary(OpKind::Sign, x, loc); }
Tensor leakyRelu(Tensor x, double alpha, Loc loc) { return withAlpha(OpKind::LeakyRelu, x, alpha, loc); }
Tensor elu(Tensor x, double alpha, Loc loc) { return withAlpha(OpKind::Elu, x, alpha, loc); }
Tensor softplus(Tensor x, Loc loc) { return unary(OpKind::Softplus, x, loc); }
Tensor erf(Tensor x, Loc loc) { return unary(OpKind::Erf, x, loc); }
Tensor sin(Tensor x, Loc loc) { return unary(OpKind::Sin, x, loc); }
Tensor cos(Tensor x, Loc loc) { return unary(OpKind::Cos, x, loc); }
Tensor square(Tensor x, Loc loc) { return mul(x, x, loc); }

// gelu(x) = x/2 * (1 + erf(x/sqrt 2))
Tensor gelu(Tensor x, Loc loc) {
  Tensor e = erf(mul(x, scalarLike(x, 0.70710678118654752, loc), loc), loc);
  return mul(mul(x, scalarLike(x, 0.5, loc), loc), add(e, scalarLike(x, 1.0, loc), loc), loc);
}

Tensor clamp(Tensor x, double lo, double hi, Loc loc) {
  if (!(lo <= hi)) fail(x.graph().locOf(loc), fmt::format("clamp: lo {} is above hi {}", lo, hi));
  return minimum(maximum(x, scalarLike(x, lo, loc), loc), scalarLike(x, hi, loc), loc);
}

Tensor sigmoidRange(Tensor x, double lo, double hi, Loc loc) {
  if (!(lo < hi)) fail(x.graph().locOf(loc), fmt::format("sigmoidRange: lo {} is not below hi {}", lo, hi));
  return add(mul(sigmoid(x, loc), scalarLike(x, hi - lo, loc), loc), scalarLike(x, lo, loc), loc);
}

Tensor less(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Less, a, b, loc); }
Tensor lessEqual(Tensor a, Tensor b, Loc loc) { return binary(OpKind::LessEq, a, b, loc); }
Tensor greater(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Greater, a, b, loc); }
Tensor greaterEqual(Tensor a, Tensor b, Loc loc) { return binary(OpKind::GreaterEq, a, b, loc); }
Tensor equal(Tensor a, Tensor b, Loc loc) { return binary(OpKind::Equal, a, b, loc); }
Tensor notEqual(Tensor a, Tensor b, Loc loc) { return binary(OpKind::NotEqual, a, b, loc); }

Tensor where(Tensor cond, Tensor a, Tensor b, Loc loc) {
  Graph& g = cond.graph();
  auto s1 = ir::broadcastShapes(a.shape(), b.shape());
  auto s = s1 ? ir::broadcastShapes(*s1, cond.shape()) : std::nullopt;
  if (!s)
    fail(g.locOf(loc), fmt::format("where: cannot broadcast {}, {} and {}", ir::typeStr(cond.type()),
                                   ir::typeStr(a.type()), ir::typeStr(b.type())));
  return g.build(OpKind::Select, {broadcastTo(cond, *s, loc), broadcastTo(a, *s, loc), broadcastTo(b, *s, loc)}, {}, {},
                 loc);
}

Tensor cast(Tensor x, DType to, Loc loc) {
  if (x.dtype() == to) return x;
  return x.graph().build(OpKind::Cast, {x}, {}, {to, x.shape()}, loc);
}

Tensor stopGradient(Tensor x, Loc loc) { return unary(OpKind::StopGradient, x, loc); }

// ---- more reductions ----

Tensor reduceMin(Tensor x, std::vector<int64_t> axes, bool keepDims, Loc loc) {
  return reduce(OpKind::ReduceMin, x, std::move(axes), keepDims, loc);
}

Tensor argmin(Tensor x, int64_t axis, Loc loc) {
  Attrs a;
  a.set("axis", normAxis(x, axis, "argmin", loc));
  return x.graph().build(OpKind::Argmin, {x}, std::move(a), {}, loc);
}

// logsumexp(x) = m + log(sum(exp(x - m))), m = max(x) held constant: the
// gradient through m cancels exactly, so it is cut.
Tensor logSumExp(Tensor x, std::vector<int64_t> axes, bool keepDims, Loc loc) {
  auto norm = normAxes(x, axes, "logSumExp", loc);
  Tensor m = stopGradient(reduceMax(x, norm, true, loc), loc);
  Tensor s = sum(exp(sub(x, m, loc), loc), norm, true, loc);
  Tensor r = add(unary(OpKind::Log, s, loc), m, loc);  // a plain log: this is the stable form
  if (keepDims) return r;
  Shape out;
  for (int64_t d = 0; d < x.rank(); ++d)
    if (!std::binary_search(norm.begin(), norm.end(), d)) out.push_back(x.shape()[d]);
  return reshape(r, out, loc);
}

Tensor variance(Tensor x, std::vector<int64_t> axes, bool keepDims, bool unbiased, Loc loc) {
  auto norm = normAxes(x, axes, "variance", loc);
  int64_t count = 1;
  for (int64_t a : norm) count *= x.shape()[a];
  if (unbiased && count < 2) fail(x.graph().locOf(loc), "variance: an unbiased estimate needs at least 2 elements");
  Tensor d = sub(x, mean(x, norm, true, loc), loc);
  Tensor s = sum(mul(d, d, loc), norm, keepDims, loc);
  return mul(s, scalarLike(x, 1.0 / static_cast<double>(unbiased ? count - 1 : count), loc), loc);
}

// ---- more layout ----

Tensor concat(const std::vector<Tensor>& xs, int64_t axis, Loc loc) {
  if (xs.empty()) throw Error("concat: needs at least one tensor");
  if (xs.size() == 1) return xs[0];
  Attrs a;
  a.set("axis", normAxis(xs[0], axis, "concat", loc));
  return xs[0].graph().build(OpKind::Concat, xs, std::move(a), {}, loc);
}

Tensor slice(Tensor x, std::vector<int64_t> begin, std::vector<int64_t> end, std::vector<int64_t> stride, Loc loc) {
  int64_t r = x.rank();
  if (static_cast<int64_t>(begin.size()) > r || end.size() != begin.size() || stride.size() > begin.size())
    fail(x.graph().locOf(loc), fmt::format("slice: begin/end/stride have {}/{}/{} entries for {}", begin.size(),
                                           end.size(), stride.size(), ir::typeStr(x.type())));
  stride.resize(begin.size(), 1);
  for (int64_t d = 0; d < r; ++d) {
    int64_t n = x.shape()[d];
    if (d >= static_cast<int64_t>(begin.size())) {
      begin.push_back(0);
      end.push_back(n);
      stride.push_back(1);
      continue;
    }
    if (begin[d] < 0) begin[d] += n;
    if (end[d] < 0) end[d] += n;
  }
  Attrs a;
  a.set("begin", std::move(begin));
  a.set("end", std::move(end));
  a.set("stride", std::move(stride));
  return x.graph().build(OpKind::Slice, {x}, std::move(a), {}, loc);
}

Tensor sliceAxis(Tensor x, int64_t axis, int64_t start, int64_t len, Loc loc) {
  int64_t ax = normAxis(x, axis, "slice", loc);
  std::vector<int64_t> b(x.rank(), 0), e = x.shape();
  b[ax] = start;
  e[ax] = start + len;
  return slice(x, b, e, {}, loc);
}

Tensor pad(Tensor x, std::vector<int64_t> lo, std::vector<int64_t> hi, std::vector<int64_t> interior, Loc loc) {
  if (interior.empty()) interior.assign(x.rank(), 0);
  Attrs a;
  a.set("lo", std::move(lo));
  a.set("hi", std::move(hi));
  a.set("interior", std::move(interior));
  return x.graph().build(OpKind::Pad, {x}, std::move(a), {}, loc);
}

std::vector<Tensor> split(Tensor x, std::vector<int64_t> sizes, int64_t axis, Loc loc) {
  int64_t ax = normAxis(x, axis, "split", loc), total = 0;
  for (int64_t s : sizes) total += s;
  if (total != x.shape()[ax])
    fail(x.graph().locOf(loc), fmt::format("split: sizes add up to {}, but axis {} of {} has {}", total, ax,
                                           ir::typeStr(x.type()), x.shape()[ax]));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(sliceAxis(x, ax, at, s, loc));
    at += s;
  }
  return out;
}

Tensor unsqueeze(Tensor x, int64_t axis, Loc loc) {
  int64_t r = x.rank();
  if (axis < 0) axis += r + 1;
  if (axis < 0 || axis > r)
    fail(x.graph().locOf(loc), fmt::format("unsqueeze: axis out of range for {}", ir::typeStr(x.type())));
  Shape s = x.shape();
  s.insert(s.begin() + axis, 1);
  return reshape(x, s, loc);
}

Tensor squeeze(Tensor x, std::vector<int64_t> axes, Loc loc) {
  Shape s;
  auto norm = axes.empty() ? std::vector<int64_t>{} : normAxes(x, axes, "squeeze", loc);
  for (int64_t d = 0; d < x.rank(); ++d) {
    bool listed = axes.empty() ? x.shape()[d] == 1 : std::binary_search(norm.begin(), norm.end(), d);
    if (listed && x.shape()[d] != 1)
      fail(x.graph().locOf(loc), fmt::format("squeeze: dim {} of {} is not 1", d, ir::typeStr(x.type())));
    if (!listed) s.push_back(x.shape()[d]);
  }
  return reshape(x, s, loc);
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis, Loc loc) {
  if (xs.empty()) throw Error("stack: needs at least one tensor");
  std::vector<Tensor> parts;
  for (const Tensor& t : xs) {
    if (t.type() != xs[0].type())
      fail(t.graph().locOf(loc), fmt::format("stack: {} differs from {}", ir::typeStr(t.type()), ir::typeStr(xs[0].type())));
    parts.push_back(unsqueeze(t, axis, loc));
  }
  return concat(parts, axis < 0 ? axis : axis, loc);
}

// ---- indexing ----

Tensor gather(Tensor table, Tensor idx, Loc loc) { return table.graph().build(OpKind::Gather, {table, idx}, {}, {}, loc); }

Tensor scatterAdd(Tensor src, Tensor idx, int64_t rows, Loc loc) {
  Shape out{rows};
  if (src.rank() >= idx.rank()) out.insert(out.end(), src.shape().begin() + idx.rank(), src.shape().end());
  return src.graph().build(OpKind::ScatterAdd, {src, idx}, {}, {DType::F32, out}, loc);
}

Tensor takeAlongAxis(Tensor x, Tensor idx, int64_t axis, Loc loc) {
  Attrs a;
  a.set("axis", normAxis(x, axis, "takeAlongAxis", loc));
  return x.graph().build(OpKind::TakeAlong, {x, idx}, std::move(a), {}, loc);
}

Tensor scatterAlongAxis(Tensor src, Tensor idx, int64_t axis, Shape shape, Loc loc) {
  Attrs a;
  a.set("axis", normAxis(src, axis, "scatterAlongAxis", loc));
  return src.graph().build(OpKind::ScatterAlong, {src, idx}, std::move(a), {DType::F32, std::move(shape)}, loc);
}

// ---- convolution and pooling ----

static Attrs convAttrs(const Conv2dOptions& o) {
  Attrs a;
  a.set("stride", o.stride);
  a.set("pad", o.pad);
  a.set("dilation", o.dilation);
  a.set("groups", o.groups);
  return a;
}

Tensor conv2d(Tensor x, Tensor w, const Conv2dOptions& o, Loc loc) {
  return x.graph().build(OpKind::Conv2d, {x, w}, convAttrs(o), {}, loc);
}

static Tensor pool(OpKind op, Tensor x, std::vector<int64_t> kernel, std::vector<int64_t> stride,
                   std::vector<int64_t> pad, Loc loc) {
  if (stride.empty()) stride = kernel;
  Attrs a;
  a.set("kernel", std::move(kernel));
  a.set("stride", std::move(stride));
  a.set("pad", std::move(pad));
  return x.graph().build(op, {x}, std::move(a), {}, loc);
}

Tensor maxPool2d(Tensor x, std::vector<int64_t> kernel, std::vector<int64_t> stride, std::vector<int64_t> pad, Loc loc) {
  return pool(OpKind::MaxPool2d, x, std::move(kernel), std::move(stride), std::move(pad), loc);
}

Tensor avgPool2d(Tensor x, std::vector<int64_t> kernel, std::vector<int64_t> stride, std::vector<int64_t> pad, Loc loc) {
  return pool(OpKind::AvgPool2d, x, std::move(kernel), std::move(stride), std::move(pad), loc);
}

// ---- random numbers ----

static Tensor random(Graph& g, Shape shape, const char* dist, Loc loc) {
  Tensor key = g.rngKey(loc);
  Attrs a;
  a.set("dist", std::string(dist));
  a.set("stream", g.nextStream());
  return g.build(OpKind::Random, {key}, std::move(a), {DType::F32, std::move(shape)}, loc);
}

Tensor randomUniform(Graph& g, Shape shape, Loc loc) { return random(g, std::move(shape), "uniform", loc); }
Tensor randomNormal(Graph& g, Shape shape, Loc loc) { return random(g, std::move(shape), "normal", loc); }

// keep = u >= p (probability 1-p); y = x * keep / (1-p)
Tensor dropout(Tensor x, double p, bool training, Loc loc) {
  if (!(p >= 0.0 && p < 1.0)) fail(x.graph().locOf(loc), fmt::format("dropout: p must be in [0, 1), got {}", p));
  if (!training || p == 0.0) return x;
  Tensor u = randomUniform(x.graph(), x.shape(), loc);
  Tensor keep = greaterEqual(u, scalarLike(x, p, loc), loc);
  return mul(x, mul(keep, scalarLike(x, 1.0 / (1.0 - p), loc), loc), loc);
}

// ---- losses ----

Tensor softmaxCrossEntropyProbs(Tensor logits, Tensor probs, Loc loc) {
  if (logits.rank() != 2 || probs.type() != logits.type())
    fail(logits.graph().locOf(loc), fmt::format("softmaxCrossEntropyProbs: needs logits and probabilities f32[N,C], got {} and {}",
                                                ir::typeStr(logits.type()), ir::typeStr(probs.type())));
  return neg(sum(mul(probs, logSoftmax(logits, 1, loc), loc), {1}, false, loc), loc);
}

Tensor bceWithLogits(Tensor x, Tensor z, Loc loc) {
  if (x.type() != z.type())
    fail(x.graph().locOf(loc), fmt::format("bceWithLogits: logits {} and targets {} differ", ir::typeStr(x.type()),
                                           ir::typeStr(z.type())));
  Tensor tail = log1p(exp(neg(abs(x, loc), loc), loc), loc);
  return add(sub(relu(x, loc), mul(x, z, loc), loc), tail, loc);
}

static void sameType(Tensor a, Tensor b, const char* what, Loc loc) {
  if (a.type() != b.type())
    fail(a.graph().locOf(loc), fmt::format("{}: prediction {} and target {} differ", what, ir::typeStr(a.type()),
                                           ir::typeStr(b.type())));
}

Tensor mseLoss(Tensor p, Tensor t, Loc loc) {
  sameType(p, t, "mseLoss", loc);
  Tensor d = sub(p, t, loc);
  return mul(d, d, loc);
}

Tensor l1Loss(Tensor p, Tensor t, Loc loc) {
  sameType(p, t, "l1Loss", loc);
  return abs(sub(p, t, loc), loc);
}

Tensor huberLoss(Tensor p, Tensor t, double delta, Loc loc) {
  sameType(p, t, "huberLoss", loc);
  if (!(delta > 0)) fail(p.graph().locOf(loc), fmt::format("huberLoss: delta must be positive, got {}", delta));
  Tensor d = sub(p, t, loc), a = abs(d, loc);
  Tensor quad = mul(mul(d, d, loc), scalarLike(p, 0.5, loc), loc);
  Tensor lin = mul(sub(a, scalarLike(p, 0.5 * delta, loc), loc), scalarLike(p, delta, loc), loc);
  return where(lessEqual(a, scalarLike(p, delta, loc), loc), quad, lin, loc);
}

// log sigmoid(x) = -softplus(-x)
static Tensor logSigmoid(Tensor x, Loc loc) { return neg(softplus(neg(x, loc), loc), loc); }

Tensor negativeSamplingLoss(Tensor u, Tensor v, Tensor negs, Loc loc) {
  if (u.rank() != 2 || v.type() != u.type() || negs.rank() != 3 || negs.dim(0) != u.dim(0) || negs.dim(2) != u.dim(1))
    fail(u.graph().locOf(loc), fmt::format("negativeSamplingLoss: needs center and context f32[B,D] and negatives "
                                           "f32[B,K,D], got {}, {} and {}", ir::typeStr(u.type()),
                                           ir::typeStr(v.type()), ir::typeStr(negs.type())));
  Tensor pos = sum(mul(u, v, loc), {1}, false, loc);
  Tensor negDots = sum(mul(negs, unsqueeze(u, 1, loc), loc), {2}, false, loc);  // [B,K]
  Tensor negTerm = sum(logSigmoid(neg(negDots, loc), loc), {1}, false, loc);
  return neg(add(logSigmoid(pos, loc), negTerm, loc), loc);
}

Tensor sampledSoftmaxLoss(Tensor h, Tensor w, Tensor b, Tensor labels, Tensor samples, Loc loc) {
  if (h.rank() != 2 || w.rank() != 2 || w.dim(1) != h.dim(1) || b.rank() != 1 || b.dim(0) != w.dim(0) ||
      labels.rank() != 1 || labels.dim(0) != h.dim(0) || samples.rank() != 2 || samples.dim(0) != h.dim(0))
    fail(h.graph().locOf(loc), fmt::format("sampledSoftmaxLoss: needs hidden f32[B,D], weights f32[V,D], bias f32[V], "
                                           "labels i32[B], samples i32[B,S]; got {}, {}, {}, {}, {}",
                                           ir::typeStr(h.type()), ir::typeStr(w.type()), ir::typeStr(b.type()),
                                           ir::typeStr(labels.type()), ir::typeStr(samples.type())));
  Tensor cand = concat({unsqueeze(labels, 1, loc), samples}, 1, loc);                 // [B,1+S]
  Tensor logits = sum(mul(gather(w, cand, loc), unsqueeze(h, 1, loc), loc), {2}, false, loc);  // [B,1+S]
  logits = add(logits, gather(b, cand, loc), loc);
  Tensor zero = h.graph().constant(0, {h.dim(0)}, DType::I32, loc);
  return softmaxCrossEntropy(logits, zero, loc);
}

}  // namespace kiln
