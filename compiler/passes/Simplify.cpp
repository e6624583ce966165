// simplify: algebraic identities, each with its algebra beside it. Nodes are
// visited in index order with their operands already simplified, so chains
// (neg(neg(neg(neg x))), transpose of transpose of transpose) collapse in one
// run. A rewrite either maps a value onto an existing one or emits a
// replacement in its place; values left unused are dce's job.
//
// Exactness: every rewrite gives bit-identical results except three, which
// are documented where they are made: `x + 0 -> x` keeps a -0 that the add
// would have turned into +0 (kiln treats the sign of zero as insignificant,
// like -fno-signed-zeros), the pool-gradient rewrite may turn a -0 into +0,
// and `sum(broadcast(x)) -> x * n` rounds once where the sum rounded n times.
//
// Not rewritten on purpose:
//   exp(log(x)) -> x   not exact: expf(logf(x)) differs from x in the last
//                      bits for most x, and log(x) is NaN for x < 0
//   x * 0 -> 0         not safe: inf * 0 and NaN * 0 are NaN, and -x * 0 is
//                      -0, so the product is not a constant unless x is
//                      known finite, which a static pass cannot know
#include <algorithm>
#include <cmath>
#include <set>

#include "Passes.h"
#include "Rewrite.h"
#include "ir/Shapes.h"

namespace kiln::passes {
namespace {

using ir::Node;
using ir::OpKind;
using ir::ValueId;

class Simplifier {
public:
  explicit Simplifier(const ir::Graph& g) : g_(g), rb_(g) {}

  bool run(ir::Graph& out) {
    // transposes read (untransposed) by >= kBatchMinGroup products of at
    // most kGemmInPlaceRows rows: the batch pass's shared transposes
    std::vector<int32_t> smallReaders(static_cast<size_t>(g_.size()), 0);
    for (ValueId v = 0; v < g_.size(); ++v) {
      const Node& n = g_.node(v);
      if (isFewRowsProduct(n) && n.attrs.getInt("tb", 0) == 0 && g_.node(n.operands[1]).op == OpKind::Transpose)
        ++smallReaders[n.operands[1]];
    }
    for (ValueId v = 0; v < g_.size(); ++v) {
      ValueId to = ir::isSource(g_.node(v).op) ? -1 : simplify(rb_.mapped(v));
      if (to >= 0) rb_.replace(v, to);
      else if (ValueId kept = rb_.keep(v); smallReaders[v] >= kBatchMinGroup) sharedWeight_.insert(kept);
    }
    return rb_.finish(out);
  }

private:
  // The splat value of new value v as the kernels see it (a const, possibly
  // through broadcasts and reshapes, which only repeat it), as f32.
  std::optional<float> splat(ValueId v) const {
    const Node* n = &rb_.node(v);
    while (n->op == OpKind::Broadcast || n->op == OpKind::Reshape) n = &rb_.node(n->operands[0]);
    if (n->type.dtype != ir::DType::F32) return std::nullopt;
    if (auto c = constValue(*n)) return static_cast<float>(*c);
    return std::nullopt;
  }
  bool isSplat(ValueId v, float want) const {
    auto s = splat(v);
    return s && *s == want;  // == treats -0 and +0 alike; callers say when that matters
  }
  bool isPositiveZero(ValueId v) const {
    auto s = splat(v);
    return s && *s == 0.0f && !std::signbit(*s);
  }
  const ir::TensorType& type(ValueId newId) const { return rb_.node(newId).type; }
  ValueId emitLike(const Node& replaced, Node n) {
    n.loc = replaced.loc;
    return rb_.emit(std::move(n));
  }

  // Returns the new id that replaces n, or -1 to keep n.
  ValueId simplify(const Node& n) {
    const auto& ops = n.operands;
    switch (n.op) {
      case OpKind::Mul:
        // x * 1 -> x (exact: x * 1 == x for every float, -0, inf and NaN included)
        if (isSplat(ops[1], 1.0f)) return ops[0];
        // 1 * x -> x (the same, with the operands swapped: mul is commutative)
        if (ir::isCommutative(n.op) && isSplat(ops[0], 1.0f)) return ops[1];
        return simplifyPoolGradTimesStep(n);
      case OpKind::Add:
        // x + 0 -> x (exact except -0 + +0 = +0, where the rewrite keeps -0;
        // for a -0 constant it is exact: x + -0 == x for every x)
        if (isSplat(ops[1], 0.0f)) return ops[0];
        // 0 + x -> x (add is commutative)
        if (ir::isCommutative(n.op) && isSplat(ops[0], 0.0f)) return ops[1];
        return -1;
      case OpKind::Sub:
        // x - (+0) -> x (exact, -0 - +0 = -0 included; x - (-0) = x + 0 is
        // not rewritten since it turns -0 into +0)
        if (isPositiveZero(ops[1])) return ops[0];
        return -1;
      case OpKind::Div:
        // x / 1 -> x (exact: IEEE division by one returns x)
        if (isSplat(ops[1], 1.0f)) return ops[0];
        return -1;
      case OpKind::Neg: {
        // neg(neg(x)) -> x (exact: negation flips the sign bit only)
        const Node& a = rb_.node(ops[0]);
        if (a.op == OpKind::Neg) return a.operands[0];
        return -1;
      }
      case OpKind::Transpose: return simplifyTranspose(n);
      case OpKind::Reshape: {
        // reshape(x) to x's own shape -> x
        if (type(ops[0]) == n.type) return ops[0];
        // reshape(reshape(x)) -> reshape(x): a reshape only reinterprets the
        // row-major element order, so only the last shape matters
        const Node& a = rb_.node(ops[0]);
        if (a.op != OpKind::Reshape) return -1;
        if (type(a.operands[0]) == n.type) return a.operands[0];
        Node r = n;
        r.operands = {a.operands[0]};
        return emitLike(n, std::move(r));
      }
      case OpKind::Broadcast: {
        // broadcast(x) to x's own shape -> x
        if (type(ops[0]) == n.type) return ops[0];
        // broadcast(broadcast(x)) -> broadcast(x): broadcasting is
        // transitive, each output element still reads the same x element
        const Node& a = rb_.node(ops[0]);
        if (a.op != OpKind::Broadcast) return -1;
        Node r = n;
        r.operands = {a.operands[0]};
        return emitLike(n, std::move(r));
      }
      case OpKind::MatMul: return simplifyMatMul(n);
      case OpKind::Sum: return simplifySumOfBroadcast(n);
      default: return -1;
    }
  }

  ValueId simplifyTranspose(const Node& n) {
    const auto& perm = n.attrs.getInts("perm");
    // transpose(x, identity) -> x
    bool identity = true;
    for (size_t d = 0; d < perm.size(); ++d) identity &= perm[d] == static_cast<int64_t>(d);
    if (identity) return n.operands[0];
    // transpose(transpose(x, p), q) -> transpose(x, c) with c[d] = p[q[d]]:
    // output dim d is the inner result's dim q[d], which is x's dim p[q[d]];
    // -> x when c is the identity
    const Node& a = rb_.node(n.operands[0]);
    if (a.op != OpKind::Transpose) return -1;
    const auto& inner = a.attrs.getInts("perm");
    std::vector<int64_t> c(perm.size());
    bool composedIdentity = true;
    for (size_t d = 0; d < perm.size(); ++d) {
      c[d] = inner[static_cast<size_t>(perm[d])];
      composedIdentity &= c[d] == static_cast<int64_t>(d);
    }
    if (composedIdentity) return a.operands[0];
    Node r = n;
    r.operands = {a.operands[0]};
    r.attrs.set("perm", c);
    return emitLike(n, std::move(r));
  }

  // matmul(transpose(a), b, ta) -> matmul(a, b, !ta) and likewise for b:
  // the flag reads the operand transposed in place, in the same summation
  // order, so the result is bit-identical and the transpose kernel goes away.
  // Except the transposes the batch pass makes on purpose (sharedWeight_):
  // the right operand of several products of few rows, which the GEMM reads
  // in place untransposed but packs on every call transposed.
  ValueId simplifyMatMul(const Node& n) {
    Node r = n;
    bool changed = false;
    for (int side = 0; side < 2; ++side) {
      const Node& a = rb_.node(n.operands[static_cast<size_t>(side)]);
      if (a.op != OpKind::Transpose || a.type.rank() != 2) continue;
      const auto& perm = a.attrs.getInts("perm");
      if (perm != std::vector<int64_t>{1, 0}) continue;
      const char* flag = side == 0 ? "ta" : "tb";
      if (side == 1 && sharedWeight_.count(n.operands[1]) && n.attrs.getInt(flag, 0) == 0 && isFewRowsProduct(n))
        continue;
      r.operands[static_cast<size_t>(side)] = a.operands[0];
      r.attrs.set(flag, int64_t(n.attrs.getInt(flag, 0) == 0 ? 1 : 0));
      changed = true;
    }
    return changed ? emitLike(n, std::move(r)) : -1;
  }

  // maxpool2d_grad(x, dy) * step(x) -> maxpool2d_grad(x, dy * step(maxpool2d(x)))
  // for windows that do not overlap (stride >= kernel, no padding): the
  // relu-then-pool backward of every CNN. The gradient is nonzero only at
  // each window's first maximum p, where x[p] is the window's pooled value,
  // so step(x[p]) = step(y) and the step can be applied to dy, a quarter of
  // the size, before the routing; the full-size multiply (reading two
  // tensors and writing a third) goes, and maxpool2d(x) is the forward's own
  // (cse merges it). Exact except the sign of zero: at a maximum whose step
  // is 0, (0 + dy) * 0 is -0 for a negative dy where 0 + dy * 0 is +0 (kiln
  // treats the sign of zero as insignificant, as for x + 0 -> x); dy inf or
  // NaN gives NaN both ways. Overlapping windows would sum several dy at one
  // position, and inf * 0 of an overflowed sum is not 0 + ...: not rewritten.
  ValueId simplifyPoolGradTimesStep(const Node& n) {
    for (int side = 0; side < 2; ++side) {
      const Node grad = rb_.node(n.operands[static_cast<size_t>(side)]);  // copies: emitting may move nodes
      const Node& step = rb_.node(n.operands[static_cast<size_t>(1 - side)]);
      if (grad.op != OpKind::MaxPool2dGrad || step.op != OpKind::Step || step.operands[0] != grad.operands[0] ||
          grad.type != n.type || step.type != n.type)
        continue;
      ir::ConvGeom geom = ir::convGeom(grad.attrs);
      bool disjoint = true;
      for (int d = 0; d < 2; ++d)
        disjoint &= geom.pad[d] == 0 && geom.stride[d] >= geom.kernel[d] && geom.dilation[d] == 1;
      if (!disjoint) continue;
      ValueId x = grad.operands[0], dy = grad.operands[1];
      const ir::TensorType pooled = type(dy);
      Node pool;
      pool.op = OpKind::MaxPool2d;
      pool.type = pooled;
      pool.operands = {x};
      pool.attrs = grad.attrs;
      ValueId y = emitLike(n, std::move(pool));
      Node st;
      st.op = OpKind::Step;
      st.type = pooled;
      st.operands = {y};
      ValueId sy = emitLike(n, std::move(st));
      Node m;
      m.op = OpKind::Mul;
      m.type = pooled;
      m.operands = {dy, sy};
      ValueId dyStep = emitLike(n, std::move(m));
      Node r = grad;
      r.operands = {x, dyStep};
      return emitLike(n, std::move(r));
    }
    return -1;
  }

  // sum(broadcast(x), axes = the broadcast axes) -> reshape(x) * n, n being
  // the number of copies the broadcast made: every output element is the sum
  // of n copies of one x element. Not bit-exact: the sum rounds after each of
  // its n - 1 additions, the product once (it is the more accurate of the
  // two); inf and NaN propagate the same way through both.
  ValueId simplifySumOfBroadcast(const Node& n) {
    const Node& b = rb_.node(n.operands[0]);
    if (b.op != OpKind::Broadcast) return -1;
    ValueId x = b.operands[0];
    const ir::Shape &s = type(x).shape, &t = b.type.shape;
    size_t lead = t.size() - s.size();
    std::vector<int64_t> bcast;
    int64_t count = 1;
    for (size_t d = 0; d < t.size(); ++d)
      if (d < lead || (s[d - lead] == 1 && t[d] != 1)) {
        bcast.push_back(static_cast<int64_t>(d));
        count *= t[d];
      }
    if (bcast != n.attrs.getInts("axes") || bcast.empty()) return -1;
    ValueId y = x;
    if (type(x) != n.type) {
      Node r;
      r.op = OpKind::Reshape;
      r.type = n.type;
      r.operands = {x};
      y = emitLike(n, std::move(r));
    }
    Node c;
    c.op = OpKind::Constant;
    c.type = n.type;
    c.attrs.set("value", static_cast<double>(count));
    ValueId cv = emitLike(n, std::move(c));
    Node m;
    m.op = OpKind::Mul;
    m.type = n.type;
    m.operands = {y, cv};
    return emitLike(n, std::move(m));
  }

  const ir::Graph& g_;
  std::set<ValueId> sharedWeight_;  // new ids
  Rebuilder rb_;
};

}  // namespace

bool runSimplify(ir::Graph& g) { return Simplifier(g).run(g); }

}  // namespace kiln::passes
