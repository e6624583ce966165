// stable: numerically stable rewrites of log(...) patterns, wherever they
// occur (forward or backward graphs). The patterns and their algebra are in
// ir/Stable.h; the DSL applies the same rewrites while a model is built, so
// this pass matters for graphs that arrive as text or were built with
// Graph::setStableRewrites(false).
//
// Each rewrite changes rounding (that is the point: the naive forms overflow
// to inf or NaN where the stable ones stay finite), so it is not bit-exact.
#include "Passes.h"
#include "Rewrite.h"
#include "ir/Stable.h"

namespace kiln::passes {
namespace {

using ir::Node;
using ir::OpKind;
using ir::ValueId;

struct Emitter {
  Rebuilder& rb;
  ir::SourceLoc loc;
  ValueId op(OpKind k, std::vector<ValueId> operands, ir::TensorType t, ir::Attrs a = {}) {
    Node n;
    n.op = k;
    n.operands = std::move(operands);
    n.type = std::move(t);
    n.attrs = std::move(a);
    n.loc = loc;
    return rb.emit(std::move(n));
  }
};

}  // namespace

bool runStable(ir::Graph& g) {
  Rebuilder rb(g);
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    std::optional<ir::StableMatch> m;
    if (n.op == OpKind::Log) m = ir::matchStableLog(g, n.operands[0]);
    if (!m) {
      rb.keep(v);
      continue;
    }
    Emitter e{rb, n.loc};
    ValueId x = rb.map(m->x);
    const ir::TensorType& xt = g.type(m->x);
    ValueId out = -1;
    switch (m->kind) {
      case ir::StableKind::LogSoftmaxOf:  // log(exp(logSoftmax(x))) -> logSoftmax(x)
        out = x;
        break;
      case ir::StableKind::NaiveSoftmax: {  // log(exp(x) / sum(exp(x), a)) -> logSoftmax(x, a)
        ir::Attrs a;
        a.set("axis", m->axes[0]);
        out = e.op(OpKind::LogSoftmax, {x}, xt, std::move(a));
        break;
      }
      case ir::StableKind::LogSigmoid: {  // log(sigmoid(x)) -> -softplus(-x)
        ValueId nx = e.op(OpKind::Neg, {x}, xt);
        out = e.op(OpKind::Neg, {e.op(OpKind::Softplus, {nx}, xt)}, xt);
        break;
      }
      case ir::StableKind::LogSumExp: {  // log(sum(exp(x))) -> m + log(sum(exp(x - m))), m = max(x)
        ir::Shape kept = xt.shape;
        for (int64_t ax : m->axes) kept[static_cast<size_t>(ax)] = 1;
        ir::Attrs ma;
        ma.set("axes", m->axes);
        ma.set("keep", int64_t(1));
        ValueId mx = e.op(OpKind::ReduceMax, {x}, {ir::DType::F32, kept}, std::move(ma));
        ValueId bm = kept == xt.shape ? mx : e.op(OpKind::Broadcast, {mx}, xt);
        ValueId ex = e.op(OpKind::Exp, {e.op(OpKind::Sub, {x, bm}, xt)}, xt);
        ir::Attrs sa;
        sa.set("axes", m->axes);
        sa.set("keep", int64_t(m->keep ? 1 : 0));
        ValueId s = e.op(OpKind::Sum, {ex}, n.type, std::move(sa));
        ValueId ls = e.op(OpKind::Log, {s}, n.type);
        ValueId mm = m->keep ? mx : e.op(OpKind::Reshape, {mx}, n.type);
        out = e.op(OpKind::Add, {ls, mm}, n.type);
        break;
      }
      case ir::StableKind::Log1p:  // log(1 + x) -> log1p(x)
        out = e.op(OpKind::Log1p, {x}, n.type);
        break;
    }
    rb.replace(v, out);
    rb.markChanged();
  }
  return rb.finish(g);
}

}  // namespace kiln::passes
