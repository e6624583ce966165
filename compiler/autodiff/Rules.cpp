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
// d max(a,b) = (dy*m, dy*(1-m)), m = [a>b] + [a==b]/2: ties share the
// gradient equally, as PyTorch does
Grads vjpMaximum(const VjpArgs& a) {
  Tensor m = add(greater(a.in[0], a.in[1]), equal(a.in[0], a.in[1]) * 0.5);
  Tensor da = mul(a.dy, m);
  return {da, sub(a.dy, da)};
}
// d min(a,b): as max with [a<b]
Grads vjpMinimum(const VjpArgs& a) {
  Tensor m = add(less(a.in[0], a.in[1]), equal(a.in[0], a.in[1]) * 0.5);
  Tensor da = mul(a.dy, m);
  return {da, sub(a.dy, da)};
}
// d a^b = (dy*b*a^(b-1), dy*a^b*ln a); the b gradient is 0 where a == 0
Grads vjpPow(const VjpArgs& a) {
  const Tensor &x = a.in[0], &p = a.in[1];
  Tensor dx = mul(a.dy, mul(p, pow(x, p - 1.0)));
  Tensor zero = a.g.constant(0.0, x.shape());
  Tensor dp = where(equal(x, zero), zero, mul(a.dy, mul(a.out, log(x))));
  return {dx, dp};
}
// d(-x) = -dy
Grads vjpNeg(const VjpArgs& a) { return {neg(a.dy)}; }
// d exp(x) = dy*exp(x)
Grads vjpExp(const VjpArgs& a) { return {mul(a.dy, a.out)}; }
// d log(x) = dy/x
Grads vjpLog(const VjpArgs& a) { return {div(a.dy, a.in[0])}; }
// d sqrt(x) = dy*0.5/sqrt(x)
Grads vjpSqrt(const VjpArgs& a) { return {div(a.dy * 0.5, a.out)}; }
// d relu(x) = dy*[x>0] (0 at the kink), read from the output ([relu(x)>0] ==
// [x>0]) so the pre-activation has one reader and fuses into the relu
Grads vjpRelu(const VjpArgs& a) { return {mul(a.dy, step(a.out))}; }
// d tanh(x) = dy*(1-tanh(x)^2)
Grads vjpTanh(const VjpArgs& a) { return {mul(a.dy, 1.0 - mul(a.out, a.out))}; }
// d sigmoid(x) = dy*s*(1-s)
Grads vjpSigmoid(const VjpArgs& a) { return {mul(a.dy, mul(a.out, 1.0 - a.out))}; }
// d log1p(x) = dy/(1+x)
Grads vjpLog1p(const VjpArgs& a) { return {div(a.dy, a.in[0] + 1.0)}; }
// d x^-1/2 = -dy/2 * x^-3/2 = -dy/2 * y^3
Grads vjpRsqrt(const VjpArgs& a) { return {mul(a.dy, mul(a.out, mul(a.out, a.out)) * -0.5)}; }
// d|x| = dy*sign(x) (0 at 0)
Grads vjpAbs(const VjpArgs& a) { return {mul(a.dy, sign(a.in[0]))}; }
// d leaky(x) = dy * (x > 0 ? 1 : alpha)
Grads vjpLeakyRelu(const VjpArgs& a) {
  double alpha = a.node.attrs.getFloat("alpha");
  Tensor s = step(a.in[0]);
  return {mul(a.dy, s * (1.0 - alpha) + alpha)};
}
// d elu(x) = dy * (x > 0 ? 1 : y + alpha)
Grads vjpElu(const VjpArgs& a) {
  double alpha = a.node.attrs.getFloat("alpha");
  Tensor one = a.g.constant(1.0, a.out.shape());
  return {mul(a.dy, where(step(a.in[0]), one, a.out + alpha))};
}
// d softplus(x) = dy*sigmoid(x)
Grads vjpSoftplus(const VjpArgs& a) { return {mul(a.dy, sigmoid(a.in[0]))}; }
// d erf(x) = dy * 2/sqrt(pi) * e^(-x^2)
Grads vjpErf(const VjpArgs& a) {
  return {mul(a.dy, exp(neg(mul(a.in[0], a.in[0]))) * 1.1283791670955126)};
}
// d sin(x) = dy*cos(x)
Grads vjpSin(const VjpArgs& a) { return {mul(a.dy, cos(a.in[0]))}; }
// d cos(x) = -dy*sin(x)
Grads vjpCos(const VjpArgs& a) { return {neg(mul(a.dy, sin(a.in[0])))}; }
// d select(c, a, b) = (none, c ? dy : 0, c ? 0 : dy)
Grads vjpSelect(const VjpArgs& a) {
  Tensor zero = a.g.constant(0.0, a.out.shape());
  return {Tensor(), where(a.in[0], a.dy, zero), where(a.in[0], zero, a.dy)};
}
// a cast between f32 values is the identity; to or from i32 nothing flows
Grads vjpCast(const VjpArgs& a) {
  if (a.in[0].dtype() != DType::F32 || a.out.dtype() != DType::F32) return {Tensor()};
  return {a.dy};
}

// d sum(x, axes) = broadcast(dy with the reduced axes restored as 1)
Grads vjpSum(const VjpArgs& a) {
  Shape kept = a.in[0].shape();
  for (int64_t ax : a.node.attrs.getInts("axes")) kept[ax] = 1;
  return {broadcastTo(reshape(a.dy, kept), a.in[0].shape())};
}

// d max(x, axes) = dy * [x == max] / (number of ties): ties share equally
// (PyTorch's amax)
static Grads reduceExtremumGrad(const VjpArgs& a) {
  const auto& axes = a.node.attrs.getInts("axes");
  Shape kept = a.in[0].shape();
  for (int64_t ax : axes) kept[ax] = 1;
  Tensor m = equal(a.in[0], reshape(a.out, kept));
  Tensor count = sum(m, axes, true);
  return {mul(m, div(reshape(a.dy, kept), count))};
}
Grads vjpReduceMax(const VjpArgs& a) { return reduceExtremumGrad(a); }
Grads vjpReduceMin(const VjpArgs& a) { return reduceExtremumGrad(a); }

// d reshape(x) = reshape(dy, shape(x))
Grads vjpReshape(const VjpArgs& a) { return {reshape(a.dy, a.in[0].shape())}; }

// d concat(x0, x1, ...) = the matching slices of dy
Grads vjpConcat(const VjpArgs& a) {
  int64_t axis = a.node.attrs.getInt("axis"), at = 0;
  Grads out;
  for (const Tensor& x : a.in) {
    out.push_back(sliceAxis(a.dy, axis, at, x.shape()[axis]));
    at += x.shape()[axis];
  }
  return out;
}

// d x[b:e:s] = dy spread back: pad with b before, s-1 between, the rest after
Grads vjpSlice(const VjpArgs& a) {
  const auto &b = a.node.attrs.getInts("begin"), &st = a.node.attrs.getInts("stride");
  const Shape &in = a.in[0].shape(), &out = a.out.shape();
  std::vector<int64_t> hi(in.size()), interior(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    interior[d] = st[d] - 1;
    hi[d] = in[d] - b[d] - (out[d] - 1) * st[d] - 1;
  }
  return {pad(a.dy, b, hi, interior)};
}

// d pad(x) = the slice of dy where x's elements landed
Grads vjpPad(const VjpArgs& a) {
  const auto &lo = a.node.attrs.getInts("lo"), &interior = a.node.attrs.getInts("interior");
  const Shape& in = a.in[0].shape();
  std::vector<int64_t> e(in.size()), st(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    st[d] = interior[d] + 1;
    e[d] = lo[d] + (in[d] - 1) * st[d] + 1;
  }
  return {slice(a.dy, lo, e, st)};
}

// d table[idx] = scatter-add of dy into the table's rows (duplicates add)
Grads vjpGather(const VjpArgs& a) { return {scatterAdd(a.dy, a.in[1], a.in[0].shape()[0]), Tensor()}; }
// d scatterAdd(src, idx) = dy[idx]
Grads vjpScatterAdd(const VjpArgs& a) { return {gather(a.dy, a.in[1]), Tensor()}; }
Grads vjpTakeAlong(const VjpArgs& a) {
  int64_t axis = a.node.attrs.getInt("axis");
  return {scatterAlongAxis(a.dy, a.in[1], axis, a.in[0].shape()), Tensor()};
}
Grads vjpScatterAlong(const VjpArgs& a) {
  return {takeAlongAxis(a.dy, a.in[1], a.node.attrs.getInt("axis")), Tensor()};
}

// y = conv(x, w) is bilinear: dx = convBwdInput(dy, w), dw = convBwdFilter(x, dy)
Grads vjpConv2d(const VjpArgs& a) {
  Graph& g = a.g;
  Tensor dx = g.build(ir::OpKind::Conv2dBwdInput, {a.dy, a.in[1]}, a.node.attrs, a.in[0].type(), std::source_location::current());
  Tensor dw = g.build(ir::OpKind::Conv2dBwdFilter, {a.in[0], a.dy}, a.node.attrs, a.in[1].type(), std::source_location::current());
  return {dx, dw};
}
// dx = B(dy, w) with <B(dy,w), g> = <dy, conv(g, w)>:
// d/d dy = conv(g, w), d/dw = convBwdFilter(g, dy)
Grads vjpConv2dBwdInput(const VjpArgs& a) {
  Graph& g = a.g;
  Tensor ddy = g.build(ir::OpKind::Conv2d, {a.dy, a.in[1]}, a.node.attrs, {}, std::source_location::current());
  Tensor dw = g.build(ir::OpKind::Conv2dBwdFilter, {a.dy, a.in[0]}, a.node.attrs, a.in[1].type(), std::source_location::current());
  return {ddy, dw};
}
// dw = F(x, dy) with <F(x,dy), g> = <dy, conv(x, g)>:
// d/dx = convBwdInput(dy, g), d/d dy = conv(x, g)
Grads vjpConv2dBwdFilter(const VjpArgs& a) {
  Graph& g = a.g;
  Tensor dx = g.build(ir::OpKind::Conv2dBwdInput, {a.in[1], a.dy}, a.node.attrs, a.in[0].type(), std::source_location::current());
  Tensor ddy = g.build(ir::OpKind::Conv2d, {a.in[0], a.dy}, a.node.attrs, {}, std::source_location::current());
  return {dx, ddy};
}
// d maxpool(x) = dy routed to each window's first maximum
Grads vjpMaxPool2d(const VjpArgs& a) {
  return {a.g.build(ir::OpKind::MaxPool2dGrad, {a.in[0], a.dy}, a.node.attrs, {}, std::source_location::current())};
}
Grads vjpAvgPool2d(const VjpArgs& a) {
  return {a.g.build(ir::OpKind::AvgPool2dGrad, {a.dy}, a.node.attrs, a.in[0].type(), std::source_location::current())};
}
// avgpool's gradient is linear in dy; its adjoint is avgpool itself
Grads vjpAvgPool2dGrad(const VjpArgs& a) {
  return {a.g.build(ir::OpKind::AvgPool2d, {a.dy}, a.node.attrs, {}, std::source_location::current())};
}

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
#define KILN_OP(Kind, Text, Arity, Flags, Shape, Grad, Family, Doc) &Grad,
#include "ir/Ops.def"
};
static_assert(std::size(kRules) == ir::kOpCount);

}  // namespace

GradKind gradKind(ir::OpKind op) { return entryFor(kRules[static_cast<int>(op)]).kind; }
VjpFn vjpRule(ir::OpKind op) { return entryFor(kRules[static_cast<int>(op)]).fn; }

}  // namespace kiln::autodiff
