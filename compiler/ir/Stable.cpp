// Recognisers for the stable rewrites of log(...) (see Stable.h).
#include "Stable.h"

#include <cmath>

namespace kiln::ir {
namespace {

// Looks through broadcasts and reshapes (which only repeat or relabel
// elements) to the value that produced them.
ValueId stripIndexOps(const Graph& g, ValueId v) {
  while (g.node(v).op == OpKind::Broadcast || g.node(v).op == OpKind::Reshape) v = g.node(v).operands[0];
  return v;
}

bool isSplatOne(const Graph& g, ValueId v) {
  const Node& n = g.node(stripIndexOps(g, v));
  return n.op == OpKind::Constant && n.type.dtype == DType::F32 && n.attrs.has("value") &&
         static_cast<float>(n.attrs.getFloat("value")) == 1.0f;
}

// Two values compute exp of the same operand (the same node, or two equal
// exp nodes before cse merged them).
bool sameExp(const Graph& g, ValueId a, ValueId b) {
  const Node &na = g.node(a), &nb = g.node(b);
  return na.op == OpKind::Exp && nb.op == OpKind::Exp && na.operands[0] == nb.operands[0];
}

}  // namespace

std::optional<StableMatch> matchStableLog(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (n.type.dtype != DType::F32) return std::nullopt;
  switch (n.op) {
    case OpKind::Exp: {
      ValueId in = n.operands[0];
      if (g.node(in).op == OpKind::LogSoftmax) return StableMatch{StableKind::LogSoftmaxOf, in, {}, false};
      return std::nullopt;
    }
    case OpKind::Sigmoid: return StableMatch{StableKind::LogSigmoid, n.operands[0], {}, false};
    case OpKind::Add: {
      if (isSplatOne(g, n.operands[0])) return StableMatch{StableKind::Log1p, n.operands[1], {}, false};
      if (isSplatOne(g, n.operands[1])) return StableMatch{StableKind::Log1p, n.operands[0], {}, false};
      return std::nullopt;
    }
    case OpKind::Sum: {
      const Node& e = g.node(n.operands[0]);
      if (e.op != OpKind::Exp) return std::nullopt;
      return StableMatch{StableKind::LogSumExp, e.operands[0], n.attrs.getInts("axes"), n.attrs.getInt("keep", 0) != 0};
    }
    case OpKind::Div: {
      // exp(x) / broadcast(sum(exp(x), {a}, keep)) with the sum's result
      // (before broadcasting) shaped like x with dim a = 1
      ValueId num = n.operands[0];
      if (g.node(num).op != OpKind::Exp) return std::nullopt;
      ValueId den = n.operands[1];
      ValueId pre = den;
      if (g.node(pre).op == OpKind::Broadcast) pre = g.node(pre).operands[0];
      ValueId s = pre;
      if (g.node(s).op == OpKind::Reshape) s = g.node(s).operands[0];
      const Node& sn = g.node(s);
      if (sn.op != OpKind::Sum || !sameExp(g, sn.operands[0], num)) return std::nullopt;
      const auto& axes = sn.attrs.getInts("axes");
      if (axes.size() != 1) return std::nullopt;
      Shape want = g.type(num).shape;
      want[static_cast<size_t>(axes[0])] = 1;
      if (g.type(pre).shape != want) return std::nullopt;
      return StableMatch{StableKind::NaiveSoftmax, g.node(num).operands[0], {axes[0]}, false};
    }
    default: return std::nullopt;
  }
}

}  // namespace kiln::ir
