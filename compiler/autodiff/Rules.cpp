// The gradient table: one VJP rule per op (the GradRule column of Ops.def),
// each written with the builder DSL. Each rule's algebra is in its comment.
#include <fmt/format.h>

#include "Grad.h"

namespace kiln::autodiff {
namespace {

using Grads = std::vector<Tensor>;

// Sentinels named in Ops.def; never called.
Grads noGrad(const VjpArgs&) { return {}; }
Grads missingGrad(const VjpArgs&) { return {}; }

// d(a+b) = (dy, dy)
Grads vjpAdd(const VjpArgs& a) { return {a.dy, a.dy}; }
// d(a-b) = (dy, -dy)
Grads vjpSub(const VjpArgs& a) { return {a.dy, neg(a.dy)}; }
// d(a*b) = (dy*b, dy*a)
Grads vjpMul(const VjpArgs& a) { return {mul(a.dy, a.in[1]), mul(a.dy, a.in[0])}; }
// d(a/b) = (dy/b, -dy*(a/b)/b)
Grads vjpDiv(const VjpArgs& a) { return {div(a.dy, a.in[1]), neg(div(mul(a.dy, a.out), a.in[1]))}; }
// d max(a,b) = (dy*[a>b], dy*[a<=b]); ties send the gradient to b
Grads vjpMaximum(const VjpArgs& a) {
  Tensor m = step(sub(a.in[0], a.in[1]));
  return {mul(a.dy, m), sub(a.dy, mul(a.dy, m))};
}
// d(-x) = -dy
Grads vjpNeg(const VjpArgs& a) { return {neg(a.dy)}; }
// d exp(x) = dy*exp(x)
Grads vjpExp(const VjpArgs& a) { return {mul(a.dy, a.out)}; }
// d log(x) = dy/x
Grads vjpLog(const VjpArgs& a) { return {div(a.dy, a.in[0])}; }
// d sqrt(x) = dy*0.5/sqrt(x)
Grads vjpSqrt(const VjpArgs& a) { return {div(a.dy * 0.5, a.out)}; }
// d relu(x) = dy*[x>0] (0 at the kink)
Grads vjpRelu(const VjpArgs& a) { return {mul(a.dy, step(a.in[0]))}; }
// d tanh(x) = dy*(1-tanh(x)^2)
Grads vjpTanh(const VjpArgs& a) { return {mul(a.dy, 1.0 - mul(a.out, a.out))}; }
// d sigmoid(x) = dy*s*(1-s)
Grads vjpSigmoid(const VjpArgs& a) { return {mul(a.dy, mul(a.out, 1.0 - a.out))}; }

// d sum(x, axes) = broadcast(dy with the reduced axes restored as 1)
Grads vjpSum(const VjpArgs& a) {
  Shape kept = a.in[0].shape();
  for (int64_t ax : a.node.attrs.getInts("axes")) kept[ax] = 1;
  return {broadcastTo(reshape(a.dy, kept), a.in[0].shape())};
}

// d reshape(x) = reshape(dy, shape(x))
Grads vjpReshape(const VjpArgs& a) { return {reshape(a.dy, a.in[0].shape())}; }

// d transpose(x, p) = transpose(dy, inverse(p))
Grads vjpTranspose(const VjpArgs& a) {
  const auto& perm = a.node.attrs.getInts("perm");
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int64_t>(i);
  return {transpose(a.dy, inv)};
}

// d broadcast(x) = sum of dy over the broadcast dims, reshaped to x: the one
// place where broadcast gradients are reduced.
Grads vjpBroadcast(const VjpArgs& a) {
  const Shape& in = a.in[0].shape();
  const Shape& out = a.out.shape();
  size_t lead = out.size() - in.size();
  std::vector<int64_t> axes;
  for (size_t d = 0; d < out.size(); ++d)
    if (d < lead || (in[d - lead] == 1 && out[d] != 1)) axes.push_back(static_cast<int64_t>(d));
  return {reshape(sum(a.dy, axes, true), in)};
}

// C = op(A) op(B); dA = dC op(B)^T, dB = op(A)^T dC, with the transposes
// folded into the matmul flags so no transpose op is built.
Grads vjpMatMul(const VjpArgs& a) {
  bool ta = a.node.attrs.getInt("ta", 0), tb = a.node.attrs.getInt("tb", 0);
  const Tensor &A = a.in[0], &B = a.in[1], &dC = a.dy;
  if (!ta && !tb) return {matmul(dC, B, false, true), matmul(A, dC, true, false)};
  if (!ta && tb) return {matmul(dC, B, false, false), matmul(dC, A, true, false)};
  if (ta && !tb) return {matmul(B, dC, false, true), matmul(A, dC, false, false)};
  return {matmul(B, dC, true, true), matmul(dC, A, true, true)};
}

// y = logSoftmax(x): dx = dy - softmax(x) * sum(dy, axis)
Grads vjpLogSoftmax(const VjpArgs& a) {
  int64_t axis = a.node.attrs.getInt("axis");
  return {sub(a.dy, mul(exp(a.out), sum(a.dy, {axis}, true)))};
}

struct Entry {
  VjpFn fn;
  GradKind kind;
};

Entry entryFor(VjpFn fn) {
  if (fn == &noGrad) return {nullptr, GradKind::None};
  if (fn == &missingGrad) return {nullptr, GradKind::Missing};
  return {fn, GradKind::Rule};
}

const VjpFn kRules[] = {
#define KILN_OP(Kind, Text, Arity, Flags, Shape, Grad, Family) &Grad,
#include "ir/Ops.def"
};
static_assert(std::size(kRules) == ir::kOpCount);

}  // namespace

GradKind gradKind(ir::OpKind op) { return entryFor(kRules[static_cast<int>(op)]).kind; }
VjpFn vjpRule(ir::OpKind op) { return entryFor(kRules[static_cast<int>(op)]).fn; }

}  // namespace kiln::autodiff
