// The PyTorch parity cases: one row per case. Adding a case is one row here;
// check.py and CTest pick it up by name (ctest -R parity.<name>).
//
// Leaves: l(shape, lo, hi) is an f32 input filled uniformly in [lo, hi),
// l.labels(shape, classes) an i32 input, l.param(shape) an f32 param. Keep
// inputs away from kinks and poles (log/sqrt/div get positive ranges) so
// kiln and torch differentiate the same smooth function.
#include <fmt/format.h>

#include "Parity.h"

namespace kiln::parity {

Tensor Leaves::operator()(Shape s, float lo, float hi, Loc loc) {
  Tensor t = g_.input(fmt::format("in{}", inputs_++), std::move(s), DType::F32, loc);
  ranges_[t.id()] = {lo, hi, 0};
  return t;
}

Tensor Leaves::labels(Shape s, int32_t classes, Loc loc) {
  Tensor t = g_.input(fmt::format("in{}", inputs_++), std::move(s), DType::I32, loc);
  ranges_[t.id()] = {0, 0, classes};
  return t;
}

Tensor Leaves::param(Shape s, float lo, float hi, Loc loc) {
  Tensor t = g_.param(fmt::format("p{}", params_++), std::move(s), Init::zeros(), loc);
  ranges_[t.id()] = {lo, hi, 0};
  return t;
}

namespace {

// A 12-16-5 MLP on 8 examples with a mean softmax cross-entropy loss, as in
// examples/mnist_mlp but small: outputs the loss and the logits.
Outs mlp(Graph& g, Leaves& l) {
  Tensor x = l({8, 12});
  Tensor y = l.labels({8}, 5);
  Linear l1(g, "l1", 12, 16), l2(g, "l2", 16, 5);
  Tensor logits = l2(relu(l1(x)));
  return {mean(softmaxCrossEntropy(logits, y)), logits};
}

// tanh and sigmoid layers, a squared-error loss, a weight used twice.
Outs mlpTied(Graph& g, Leaves& l) {
  Tensor x = l({6, 4});
  Tensor target = l({6, 4}, 0.0f, 1.0f);
  Tensor w = l.param({4, 4}, -0.5f, 0.5f);
  Tensor b = l.param({4}, -0.1f, 0.1f);
  Tensor h = tanh(matmul(x, w) + b);
  Tensor out = sigmoid(matmul(h, w, false, true));
  Tensor d = out - target;
  return {mean(d * d), out};
}

}  // namespace

const std::vector<Case>& cases() {
  static const std::vector<Case> table = {
      // sources
      {"const", [](Graph& g, Leaves& l) { return l({3, 4}) * g.constant(2.5, {3, 4}); }},
      {"param", [](Graph&, Leaves& l) { return l({3, 4}) * l.param({3, 4}); }},
      {"param_init", [](Graph& g, Leaves& l) { return l({3, 4}) * g.param("w", {3, 4}, Init::uniform(-2, 2)); }},
      {"state", [](Graph& g, Leaves& l) { return l({3, 4}) + g.state("s", {3, 4}, Init::constant(0.5)); }},
      // elementwise binary, with numpy-style broadcasting (explicit broadcast ops)
      {"add", [](Graph&, Leaves& l) { return l({3, 4}) + l({3, 4}); }},
      {"add_bcast_row", [](Graph&, Leaves& l) { return l({3, 4}) + l({4}); }},
      {"add_bcast_col", [](Graph&, Leaves& l) { return l({3, 4}) + l({3, 1}); }},
      {"add_bcast_both", [](Graph&, Leaves& l) { return l({3, 1}) + l({1, 4}); }},
      {"add_scalar", [](Graph&, Leaves& l) { return l({3, 4}) + 1.5; }},
      {"sub", [](Graph&, Leaves& l) { return l({3, 4}) - l({3, 4}); }},
      {"sub_scalar_lhs", [](Graph&, Leaves& l) { return 2.0 - l({3, 4}); }},
      {"sub_bcast_3d", [](Graph&, Leaves& l) { return l({2, 3, 4}) - l({3, 1}); }},
      {"mul", [](Graph&, Leaves& l) { return l({3, 4}) * l({3, 4}); }},
      {"mul_bcast_3d", [](Graph&, Leaves& l) { return l({2, 1, 4}) * l({3, 1}); }},
      {"mul_scalar_input", [](Graph&, Leaves& l) { return l({3, 4}) * l({}); }},
      {"div", [](Graph&, Leaves& l) { return l({3, 4}) / l({3, 4}, 0.5f, 2.0f); }},
      {"div_bcast", [](Graph&, Leaves& l) { return l({3, 4}) / l({4}, -2.0f, -0.5f); }},
      {"div_scalar_lhs", [](Graph&, Leaves& l) { return 1.0 / l({3, 4}, 0.5f, 2.0f); }},
      {"maximum", [](Graph&, Leaves& l) { return maximum(l({3, 4}), l({3, 4})); }},
      {"maximum_bcast", [](Graph&, Leaves& l) { return maximum(l({3, 4}), l({1, 4})); }},
      // elementwise unary
      {"neg", [](Graph&, Leaves& l) { return -l({3, 4}); }},
      {"exp", [](Graph&, Leaves& l) { return exp(l({3, 4}, -3.0f, 3.0f)); }},
      {"log", [](Graph&, Leaves& l) { return log(l({3, 4}, 0.2f, 3.0f)); }},
      {"sqrt", [](Graph&, Leaves& l) { return sqrt(l({3, 4}, 0.2f, 3.0f)); }},
      {"relu", [](Graph&, Leaves& l) { return relu(l({4, 5})); }},
      {"tanh", [](Graph&, Leaves& l) { return tanh(l({3, 4}, -3.0f, 3.0f)); }},
      {"sigmoid", [](Graph&, Leaves& l) { return sigmoid(l({3, 4}, -4.0f, 4.0f)); }},
      // saturated ranges: exp near f32 overflow scale, sigmoid/tanh flat tails
      // (values span 2e-9..5e8: a tiny atol makes the small ones count too)
      {"exp_wide", [](Graph&, Leaves& l) { return exp(l({3, 4}, -20.0f, 20.0f)); }, true, 0, 1e-30},
      {"log_small", [](Graph&, Leaves& l) { return log(l({3, 4}, 1e-6f, 1e-3f)); }, true, 0, 1e-30},
      {"tanh_wide", [](Graph&, Leaves& l) { return tanh(l({3, 4}, -20.0f, 20.0f)); }},
      {"sigmoid_wide", [](Graph&, Leaves& l) { return sigmoid(l({3, 4}, -40.0f, 40.0f)); }},
      {"step", [](Graph&, Leaves& l) { return step(l({4, 5})); }},  // gradient: zero everywhere
      {"step_mul", [](Graph&, Leaves& l) { Tensor x = l({4, 5}); return step(x) * x; }},
      // reductions
      {"sum_axis0", [](Graph&, Leaves& l) { return sum(l({3, 4}), {0}); }},
      {"sum_axis1", [](Graph&, Leaves& l) { return sum(l({3, 4}), {1}); }},
      {"sum_axis1_keep", [](Graph&, Leaves& l) { return sum(l({3, 4}), {1}, true); }},
      {"sum_all", [](Graph&, Leaves& l) { return sum(l({2, 3, 4})); }},
      {"sum_all_keep", [](Graph&, Leaves& l) { return sum(l({2, 3, 4}), {}, true); }},
      {"sum_axes02_keep", [](Graph&, Leaves& l) { return sum(l({2, 3, 4}), {0, 2}, true); }},
      {"sum_axes13", [](Graph&, Leaves& l) { return sum(l({2, 3, 4, 5}), {1, 3}); }},
      {"sum_negative_axis", [](Graph&, Leaves& l) { return sum(l({2, 3, 4}), {-2}); }},
      {"mean_axis1_keep", [](Graph&, Leaves& l) { return mean(l({3, 4}), {1}, true); }},
      {"mean_all", [](Graph&, Leaves& l) { return mean(l({3, 5})); }},
      // reduce_max has no gradient rule yet (Ops.def: missingGrad): forward only
      {"reduce_max_axis1", [](Graph&, Leaves& l) { return reduceMax(l({3, 5}), {1}); }, false},
      {"reduce_max_axes02_keep", [](Graph&, Leaves& l) { return reduceMax(l({2, 3, 4}), {0, 2}, true); }, false},
      {"reduce_max_all", [](Graph&, Leaves& l) { return reduceMax(l({3, 5})); }, false},
      {"argmax_axis1", [](Graph&, Leaves& l) { return argmax(l({4, 6}), 1); }},
      {"argmax_axis0", [](Graph&, Leaves& l) { return argmax(l({4, 6}), 0); }},
      {"argmax_3d_axis1", [](Graph&, Leaves& l) { return argmax(l({2, 5, 3}), 1); }},
      // layout
      {"reshape", [](Graph&, Leaves& l) { return reshape(l({3, 4}), {2, -1}) * l({2, 6}); }},
      {"reshape_3d", [](Graph&, Leaves& l) { return reshape(l({2, 3, 4}), {4, 3, 2}) * l({4, 3, 2}); }},
      {"transpose_2d", [](Graph&, Leaves& l) { return transpose(l({3, 4})) * l({4, 3}); }},
      {"transpose_3d_201", [](Graph&, Leaves& l) { return transpose(l({2, 3, 4}), {2, 0, 1}); }},
      {"transpose_3d_reverse", [](Graph&, Leaves& l) { return transpose(l({2, 3, 4})) * l({4, 3, 2}); }},
      {"transpose_4d_1302", [](Graph&, Leaves& l) { return transpose(l({2, 3, 4, 5}), {1, 3, 0, 2}); }},
      {"broadcast_3d", [](Graph&, Leaves& l) { return broadcastTo(l({2, 1, 3}), {4, 2, 5, 3}); }},
      {"broadcast_scalar", [](Graph&, Leaves& l) { return broadcastTo(l({}), {3, 4}); }},
      // contractions
      {"matmul", [](Graph&, Leaves& l) { return matmul(l({3, 5}), l({5, 4})); }},
      {"matmul_ta", [](Graph&, Leaves& l) { return matmul(l({5, 3}), l({5, 4}), true, false); }},
      {"matmul_tb", [](Graph&, Leaves& l) { return matmul(l({3, 5}), l({4, 5}), false, true); }},
      {"matmul_ta_tb", [](Graph&, Leaves& l) { return matmul(l({5, 3}), l({4, 5}), true, true); }},
      {"matmul_vector", [](Graph&, Leaves& l) { return matmul(l({1, 7}), l({7, 1})); }},
      {"matmul_same_operand", [](Graph&, Leaves& l) { Tensor a = l({4, 4}); return matmul(a, a, true, false); }},
      // softmax family and losses
      {"logsoftmax_axis0", [](Graph&, Leaves& l) { return logSoftmax(l({3, 5}, -3.0f, 3.0f), 0); }},
      {"logsoftmax_axis1", [](Graph&, Leaves& l) { return logSoftmax(l({3, 5}, -3.0f, 3.0f), 1); }},
      {"logsoftmax_3d_axis1", [](Graph&, Leaves& l) { return logSoftmax(l({2, 4, 3}, -3.0f, 3.0f), 1); }},
      {"logsoftmax_large", [](Graph&, Leaves& l) { return logSoftmax(l({2, 6}, 50.0f, 80.0f), 1); }},
      {"softmax", [](Graph&, Leaves& l) { return softmax(l({2, 6}, -3.0f, 3.0f)); }},
      {"onehot", [](Graph&, Leaves& l) { return oneHot(l.labels({6}, 4), 4); }},
      {"onehot_2d_mul", [](Graph&, Leaves& l) { return oneHot(l.labels({2, 3}, 5), 5) * l({2, 3, 5}); }},
      {"softmax_cross_entropy", [](Graph&, Leaves& l) { return softmaxCrossEntropy(l({6, 4}, -3.0f, 3.0f), l.labels({6}, 4)); }},
      {"softmax_cross_entropy_mean",
       [](Graph&, Leaves& l) { return mean(softmaxCrossEntropy(l({6, 4}, -3.0f, 3.0f), l.labels({6}, 4))); }},
      // compositions: fan-out, several outputs, small models
      {"fanout", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return x * x + exp(x) * sum(x, {1}, true); }},
      {"two_outputs", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return Outs{tanh(x), sum(x * x, {0})}; }},
      {"mlp", mlp},
      {"mlp_tied", mlpTied},
  };
  return table;
}

}  // namespace kiln::parity
