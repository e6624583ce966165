// The op test cases shared by ops_test.cpp and the op reference generator
// (tools/gen_ops_doc.cpp): one small graph per op or op variant.
#pragma once

#include <functional>
#include <set>

#include "TestUtil.h"
#include "autodiff/Grad.h"

namespace kiln::test {

// Makes the leaves of a case: inputs for the compile test, params (so they
// can be differentiated) for the gradient test. Records each leaf's range.
struct Leaf {
  Graph& g;
  bool asParams;
  struct Range {
    float lo, hi;
  };
  std::vector<std::pair<ir::ValueId, Range>> leaves;

  Tensor operator()(Shape s, DType t = DType::F32, float lo = -1.0f, float hi = 1.0f) {
    std::string name = fmt::format("in{}", leaves.size());
    Tensor x = (asParams && t == DType::F32) ? g.param(name, s, Init::zeros()) : g.input(name, s, t);
    leaves.push_back({x.id(), {lo, hi}});
    return x;
  }
};

struct OpCase {
  std::string name;
  std::function<Tensor(Graph&, Leaf&)> build;
  bool grad = true;  // has a gradient to check
};

// Values away from the kink at 0 on both sides: [0.2,1) then (-1,-0.2].
inline Tensor bothSides(Leaf& l, Shape s) { return concat({l(s, DType::F32, 0.2f, 1.0f), l(s, DType::F32, -1.0f, -0.2f)}, 0); }

// The gradient ops of a forward op, built by differentiating sum(f(x) * c)
// inside the case, so the case's output is itself a gradient (and its FD
// check is a second-order check).
inline Tensor gradOf(Tensor y, Tensor c, Tensor wrt) { return grad(sum(y * c), {wrt})[0]; }

inline std::vector<OpCase> cases() {
  return {
      {"add", [](Graph&, Leaf& l) { return l({3, 4}) + l({3, 4}); }},
      {"sub", [](Graph&, Leaf& l) { return l({3, 4}) - l({3, 4}); }},
      {"mul", [](Graph&, Leaf& l) { return l({3, 4}) * l({3, 4}); }},
      {"div", [](Graph&, Leaf& l) { return l({3, 4}) / l({3, 4}, DType::F32, 0.5f, 2.0f); }},
      {"maximum", [](Graph&, Leaf& l) { return maximum(l({3, 4}), l({3, 4})); }},
      {"neg", [](Graph&, Leaf& l) { return -l({3, 4}); }},
      {"exp", [](Graph&, Leaf& l) { return exp(l({3, 4})); }},
      {"log", [](Graph&, Leaf& l) { return log(l({3, 4}, DType::F32, 0.2f, 3.0f)); }},
      {"sqrt", [](Graph&, Leaf& l) { return sqrt(l({3, 4}, DType::F32, 0.2f, 3.0f)); }},
      {"relu", [](Graph&, Leaf& l) { return relu(l({3, 4})); }},
      {"tanh", [](Graph&, Leaf& l) { return tanh(l({3, 4}, DType::F32, -2.0f, 2.0f)); }},
      {"sigmoid", [](Graph&, Leaf& l) { return sigmoid(l({3, 4}, DType::F32, -3.0f, 3.0f)); }},
      {"step", [](Graph&, Leaf& l) { return step(l({3, 4})); }, false},
      {"const", [](Graph& g, Leaf& l) { return l({3, 4}) * g.constant(2.5, {3, 4}); }},
      {"scalar-broadcast", [](Graph&, Leaf& l) { return 3.0 * l({3, 4}) - 1.5; }},
      {"broadcast-row", [](Graph&, Leaf& l) { return l({3, 4}) + l({4}); }},
      {"broadcast-col", [](Graph&, Leaf& l) { return l({3, 4}) * l({3, 1}); }},
      {"broadcast-3d", [](Graph&, Leaf& l) { return broadcastTo(l({2, 1, 3}), {4, 2, 5, 3}); }},
      {"sum-axis1", [](Graph&, Leaf& l) { return sum(l({3, 4}), {1}); }},
      {"sum-axis0-keep", [](Graph&, Leaf& l) { return sum(l({3, 4}), {0}, true); }},
      {"sum-all", [](Graph&, Leaf& l) { return sum(l({2, 3, 4})); }},
      {"sum-middle", [](Graph&, Leaf& l) { return sum(l({2, 3, 4}), {-2}); }},
      {"mean", [](Graph&, Leaf& l) { return mean(l({3, 4}), {1}, true); }},
      {"reduce_max", [](Graph&, Leaf& l) { return reduceMax(l({3, 4}), {1}); }, false},
      {"argmax", [](Graph&, Leaf& l) { return argmax(l({3, 5}), 1); }, false},
      {"argmax-axis0", [](Graph&, Leaf& l) { return argmax(l({3, 5}), 0); }, false},
      {"reshape", [](Graph&, Leaf& l) { return reshape(l({3, 4}), {2, -1}) * l({2, 6}); }},
      {"transpose-2d", [](Graph&, Leaf& l) { return transpose(l({3, 4})) * l({4, 3}); }},
      {"transpose-3d", [](Graph&, Leaf& l) { return transpose(l({2, 3, 4}), {2, 0, 1}); }},
      {"matmul", [](Graph&, Leaf& l) { return matmul(l({3, 5}), l({5, 4})); }},
      {"matmul-ta", [](Graph&, Leaf& l) { return matmul(l({5, 3}), l({5, 4}), true, false); }},
      {"matmul-tb", [](Graph&, Leaf& l) { return matmul(l({3, 5}), l({4, 5}), false, true); }},
      {"matmul-ta-tb", [](Graph&, Leaf& l) { return matmul(l({5, 3}), l({4, 5}), true, true); }},
      {"logsoftmax", [](Graph&, Leaf& l) { return logSoftmax(l({3, 5}, DType::F32, -3.0f, 3.0f), 1); }},
      {"logsoftmax-axis0", [](Graph&, Leaf& l) { return logSoftmax(l({3, 5}, DType::F32, -3.0f, 3.0f), 0); }},
      {"softmax", [](Graph&, Leaf& l) { return softmax(l({2, 6})); }},
      {"onehot", [](Graph&, Leaf& l) { return oneHot(l({6}, DType::I32), 4); }, false},
      {"softmax-cross-entropy", [](Graph&, Leaf& l) { return softmaxCrossEntropy(l({6, 4}), l({6}, DType::I32)); }},
      {"minimum", [](Graph&, Leaf& l) { return minimum(l({3, 4}), l({3, 4})); }},
      {"maximum-i32", [](Graph&, Leaf& l) { return cast(maximum(l({6}, DType::I32), l({6}, DType::I32)), DType::F32); }, false},
      {"pow", [](Graph&, Leaf& l) { return pow(l({3, 4}, DType::F32, 0.5f, 2.0f), l({3, 4}, DType::F32, -1.5f, 1.5f)); }},
      {"log1p", [](Graph&, Leaf& l) { return log1p(l({3, 4}, DType::F32, -0.5f, 3.0f)); }},
      {"rsqrt", [](Graph&, Leaf& l) { return rsqrt(l({3, 4}, DType::F32, 0.3f, 3.0f)); }},
      {"abs", [](Graph&, Leaf& l) { return abs(bothSides(l, {2, 4})); }},
      {"abs-i32", [](Graph&, Leaf& l) { return cast(abs(-l({6}, DType::I32)), DType::F32); }, false},
      {"sign", [](Graph&, Leaf& l) { return sign(l({3, 4})); }, false},
      {"leaky_relu", [](Graph&, Leaf& l) { return leakyRelu(bothSides(l, {2, 4}), 0.1); }},
      {"elu", [](Graph&, Leaf& l) { return elu(bothSides(l, {2, 4}), 0.7); }},
      {"softplus", [](Graph&, Leaf& l) { return softplus(l({3, 4}, DType::F32, -4.0f, 4.0f)); }},
      {"softplus-large", [](Graph&, Leaf& l) { return softplus(l({3, 4}, DType::F32, 19.0f, 30.0f)); }},
      {"erf", [](Graph&, Leaf& l) { return erf(l({3, 4}, DType::F32, -2.0f, 2.0f)); }},
      {"gelu", [](Graph&, Leaf& l) { return gelu(l({3, 4}, DType::F32, -3.0f, 3.0f)); }},
      {"sin", [](Graph&, Leaf& l) { return sin(l({3, 4}, DType::F32, -3.0f, 3.0f)); }},
      {"cos", [](Graph&, Leaf& l) { return cos(l({3, 4}, DType::F32, -3.0f, 3.0f)); }},
      {"clamp", [](Graph&, Leaf& l) { return clamp(concat({l({4}, DType::F32, -3.0f, -1.5f), l({4}), l({4}, DType::F32, 1.5f, 3.0f)}), -1.2, 1.2); }},
      {"compare-f32", [](Graph&, Leaf& l) {
         Tensor a = l({3, 4}), b = l({3, 4});
         return less(a, b) + 2.0 * lessEqual(a, a) + 4.0 * greater(a, b) + 8.0 * greaterEqual(b, a) +
                16.0 * equal(a, a) + 32.0 * notEqual(a, b);
       }, false},
      {"compare-i32", [](Graph&, Leaf& l) {
         Tensor a = l({8}, DType::I32), b = l({8}, DType::I32);
         return less(a, b) + 2.0 * lessEqual(a, b) + 4.0 * greater(a, b) + 8.0 * greaterEqual(a, b) +
                16.0 * equal(a, b) + 32.0 * notEqual(a, b);
       }, false},
      {"select", [](Graph&, Leaf& l) { return where(cast(l({3, 4}, DType::I32), DType::F32), l({3, 4}), l({4})); }},
      {"cast-f32-i32", [](Graph&, Leaf& l) { return cast(l({3, 4}, DType::F32, -5.0f, 5.0f), DType::I32); }, false},
      {"reduce_max-grad", [](Graph&, Leaf& l) { return reduceMax(l({3, 4}), {1}); }},
      {"reduce_min", [](Graph&, Leaf& l) { return reduceMin(l({3, 4, 2}), {0, 2}, true); }},
      {"argmin", [](Graph&, Leaf& l) { return argmin(l({3, 5}), 1); }, false},
      {"logsumexp", [](Graph&, Leaf& l) { return logSumExp(l({3, 5}, DType::F32, -3.0f, 3.0f), {1}); }},
      {"variance", [](Graph&, Leaf& l) { return variance(l({4, 5}), {0}, false, true); }},
      {"concat-axis0", [](Graph&, Leaf& l) { return concat({l({2, 3}), l({4, 3})}, 0); }},
      {"concat-axis1", [](Graph&, Leaf& l) { return concat({l({2, 3}), l({2, 1}), l({2, 2})}, 1); }},
      {"slice-strided", [](Graph&, Leaf& l) { return slice(l({5, 7}), {1, 0}, {5, 7}, {2, 3}); }},
      {"split-stack", [](Graph&, Leaf& l) {
         auto parts = split(l({5, 3}), {2, 3}, 0);
         return stack({sum(parts[0], {0}), sum(parts[1], {0})}, 1);
       }},
      {"pad", [](Graph&, Leaf& l) { return pad(l({2, 3}), {1, 0}, {0, 2}, {1, 1}); }},
      {"stop_gradient", [](Graph&, Leaf& l) { return stopGradient(l({3, 4})); }, false},
      {"matmul-batched", [](Graph&, Leaf& l) { return matmul(l({2, 3, 5}), l({2, 5, 4})); }},
      {"matmul-batched-ta-tb", [](Graph&, Leaf& l) { return matmul(l({2, 5, 3}), l({2, 4, 5}), true, true); }},
      {"gather", [](Graph&, Leaf& l) { return gather(l({4, 3}), l({2, 5}, DType::I32)); }},
      {"scatter_add", [](Graph&, Leaf& l) { return scatterAdd(l({6, 3}), l({6}, DType::I32), 4); }},
      {"take_along", [](Graph&, Leaf& l) { return takeAlongAxis(l({3, 5}), l({3, 2}, DType::I32), 1); }},
      {"scatter_along", [](Graph&, Leaf& l) { return scatterAlongAxis(l({3, 4}), l({3, 4}, DType::I32), 1, {3, 5}); }},
      {"conv2d", [](Graph&, Leaf& l) { return conv2d(l({2, 3, 5, 5}), l({4, 3, 3, 3}), {{1, 1}, {1, 1}}); }},
      {"conv2d-strided-dilated", [](Graph&, Leaf& l) {
         return conv2d(l({1, 2, 7, 6}), l({3, 2, 2, 3}), {{2, 1}, {0, 1}, {1, 2}});
       }},
      {"conv2d-groups", [](Graph&, Leaf& l) { return conv2d(l({1, 4, 5, 5}), l({6, 2, 3, 3}), {{1, 1}, {0, 0}, {1, 1}, 2}); }},
      {"conv2d-1x1", [](Graph&, Leaf& l) { return conv2d(l({2, 3, 4, 4}), l({5, 3, 1, 1})); }},
      {"conv2d_bwd_input", [](Graph&, Leaf& l) {
         Tensor x = l({1, 2, 5, 5}), w = l({3, 2, 3, 3});
         Conv2dOptions o{{2, 2}, {1, 1}};
         return gradOf(conv2d(x, w, o), l({1, 3, 3, 3}), x);
       }},
      {"conv2d_bwd_filter", [](Graph&, Leaf& l) {
         Tensor x = l({2, 2, 5, 5}), w = l({3, 2, 3, 3});
         return gradOf(conv2d(x, w, {{1, 1}, {1, 1}}), l({2, 3, 5, 5}), w);
       }},
      {"maxpool2d", [](Graph&, Leaf& l) { return maxPool2d(l({2, 2, 6, 6}), {2, 2}); }},
      {"maxpool2d-padded", [](Graph&, Leaf& l) { return maxPool2d(l({1, 2, 5, 5}), {3, 3}, {2, 2}, {1, 1}); }},
      {"maxpool2d_grad", [](Graph&, Leaf& l) {
         Tensor x = l({1, 2, 5, 5});
         return gradOf(maxPool2d(x, {3, 3}, {2, 2}, {1, 1}), l({1, 2, 3, 3}), x);
       }, false},
      {"avgpool2d", [](Graph&, Leaf& l) { return avgPool2d(l({1, 2, 5, 5}), {3, 3}, {2, 2}, {1, 1}); }},
      {"avgpool2d_grad", [](Graph&, Leaf& l) {
         Tensor x = l({1, 2, 4, 4});
         return gradOf(avgPool2d(x, {2, 2}), l({1, 2, 2, 2}), x);
       }},
      {"random-uniform", [](Graph& g, Leaf& l) { return randomUniform(g, {3, 4}) * l({3, 4}); }},
      {"random-normal", [](Graph& g, Leaf& l) { return randomNormal(g, {3, 4}) * l({3, 4}); }},
      {"dropout", [](Graph&, Leaf& l) { return dropout(l({4, 5}), 0.4, true); }},
      {"bce-with-logits", [](Graph&, Leaf& l) { return bceWithLogits(l({3, 4}, DType::F32, -4.0f, 4.0f), l({3, 4}, DType::F32, 0.0f, 1.0f)); }},
      {"huber", [](Graph&, Leaf& l) { return huberLoss(concat({l({4}, DType::F32, -3.0f, -1.5f), l({4}, DType::F32, -0.8f, 0.8f)}), concat({l({4}, DType::F32, -0.2f, 0.2f), l({4}, DType::F32, -0.1f, 0.1f)}), 1.0); }},
      {"negative-sampling", [](Graph&, Leaf& l) { return negativeSamplingLoss(l({3, 4}), l({3, 4}), l({3, 2, 4})); }},
      {"sampled-softmax", [](Graph&, Leaf& l) {
         return sampledSoftmaxLoss(l({3, 4}), l({4, 4}), l({4}), l({3}, DType::I32), l({3, 2}, DType::I32));
       }},
      {"param", [](Graph& g, Leaf& l) { return l({3, 4}) * g.param("p", {3, 4}, Init::uniform(-1, 1)); }},
      {"state", [](Graph& g, Leaf& l) { return l({3, 4}) + g.state("s", {3, 4}, Init::constant(0.5)); }},
  };
}


// Ops whose VJP is built only from ops that have rules themselves, found by
// applying each op's rule in every case graph: their gradients can be
// differentiated again. An op whose rule never ran in a case is absent.
inline std::map<ir::OpKind, bool> secondOrderSupport() {
  std::map<ir::OpKind, bool> out;
  for (const OpCase& c : cases()) {
    Graph g;
    Leaf leaf{g, true, {}};
    c.build(g, leaf);
    ir::ValueId end = g.ir().size();
    for (ir::ValueId v = 0; v < end; ++v) {
      const ir::Node node = g.ir().node(v);
      if (autodiff::gradKind(node.op) != autodiff::GradKind::Rule || node.type.dtype != DType::F32) continue;
      ir::ValueId before = g.ir().size();
      autodiff::VjpArgs args{g, node, {}, g.tensor(v), g.input(fmt::format("dy{}", v), node.type.shape)};
      for (ir::ValueId o : node.operands) args.in.push_back(g.tensor(o));
      autodiff::vjpRule(node.op)(args);
      bool ok = out.count(node.op) ? out[node.op] : true;
      for (ir::ValueId k = before; k < g.ir().size(); ++k)
        if (autodiff::gradKind(g.ir().node(k).op) == autodiff::GradKind::Missing) ok = false;
      out[node.op] = ok;
    }
  }
  return out;
}

}  // namespace kiln::test
