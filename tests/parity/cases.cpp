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


// Conv geometries, spelled out (stride, pad, dilation, groups).
Conv2dOptions convOpts(int64_t stride, int64_t pad, int64_t dilation = 1, int64_t groups = 1) {
  return {{stride, stride}, {pad, pad}, {dilation, dilation}, groups};
}

// The gradients of conv2d wrt its input and filter for a cotangent input:
// puts conv2d_bwd_input and conv2d_bwd_filter in the forward graph, so torch
// checks their values, and the harness checks their own gradients (second
// order) through kiln's rules for them.
Outs convGrads(Leaves& l, Shape xs, Shape ws, Conv2dOptions o) {
  Tensor x = l(std::move(xs)), w = l(std::move(ws));
  Tensor y = conv2d(x, w, o);
  Tensor dy = l(y.shape());
  std::vector<Tensor> gs = grad(sum(y * dy), {x, w});
  return {gs[0], gs[1]};
}

// The gradient of a pool wrt its input for a cotangent input: maxpool2d_grad
// or avgpool2d_grad in the forward graph. With `ties`, the input holds the
// integers 0..2, so most windows have several maxima and the gradient must
// go to the first one in row-major order.
Outs poolGrad(Leaves& l, bool max, Shape xs, std::vector<int64_t> k, std::vector<int64_t> s,
              std::vector<int64_t> p, bool ties = false) {
  Tensor x = l(std::move(xs), 0.0f, 3.0f);
  if (ties) x = cast(cast(x, DType::I32), DType::F32);
  Tensor y = max ? maxPool2d(x, k, s, p) : avgPool2d(x, k, s, p);
  Tensor dy = l(y.shape());
  return grad(sum(y * dy), {x})[0];
}

// i32 labels in [lo, lo + count): negative or too large where lo < 0 or
// lo + count exceeds the table, to exercise the out-of-range rules.
Tensor indices(Leaves& l, Shape s, int32_t lo, int32_t count) {
  Tensor i = l.labels(std::move(s), count);
  return lo == 0 ? i : i + static_cast<double>(lo);
}

// conv -> relu -> maxpool -> linear, mean softmax cross-entropy over 4
// images of 2x8x8; outputs the loss and the logits.
Outs smallCnn(Graph& g, Leaves& l) {
  Tensor x = l({4, 2, 8, 8});
  Tensor y = l.labels({4}, 3);
  Conv2d c1(g, "c1", 2, 4, 3, convOpts(1, 1));
  Linear fc(g, "fc", 4 * 4 * 4, 3);
  Tensor h = MaxPool2d{}(relu(c1(x)));
  Tensor logits = fc(reshape(h, {4, -1}));
  return {mean(softmaxCrossEntropy(logits, y)), logits};
}

// Recurrent cells unrolled over T = 3 steps of a [B=2, T, 4] batch from a
// given initial state: outputs every step's h, stacked on axis 1.
Outs lstm(Graph& g, Leaves& l) {
  Tensor xs = l({2, 3, 4});
  LSTMCell cell(g, "lstm", 4, 5, 1.0);
  auto states = unroll(cell, timeSteps(xs), LSTMCell::State{l({2, 5}), l({2, 5})});
  std::vector<Tensor> hs;
  for (const auto& s : states) hs.push_back(s.h);
  return {stack(hs, 1), states.back().c};
}

Outs gru(Graph& g, Leaves& l) {
  Tensor xs = l({2, 3, 4});
  GRUCell cell(g, "gru", 4, 5);
  return stack(unroll(cell, timeSteps(xs), l({2, 5})), 1);
}

Outs rnn(Graph& g, Leaves& l) {
  Tensor xs = l({2, 3, 4});
  RNNCell cell(g, "rnn", 4, 5);
  return stack(unroll(cell, timeSteps(xs), l({2, 5})), 1);
}

// A sequence classifier: embedding -> LSTM over 4 steps -> linear on the
// last h -> mean cross-entropy.
Outs seqClassifier(Graph& g, Leaves& l) {
  Tensor tokens = l.labels({3, 4}, 7);
  Embedding emb(g, "emb", 7, 5);
  LSTMCell cell(g, "lstm", 5, 6);
  Linear out(g, "out", 6, 3);
  Tensor zero = g.constant(0.0, {3, 6});
  auto states = unroll(cell, timeSteps(emb(tokens)), LSTMCell::State{zero, zero});
  Tensor logits = out(states.back().h);
  return {mean(softmaxCrossEntropy(logits, l.labels({3}, 3))), logits};
}

}  // namespace

const std::vector<Case>& cases() {
  static const std::vector<Case> table = {
      // sources
      {"const", [](Graph& g, Leaves& l) { return l({3, 4}) * g.constant(2.5, {3, 4}); }},
      {"param", [](Graph&, Leaves& l) { return l({3, 4}) * l.param({3, 4}); }},
      {"param_init", [](Graph& g, Leaves& l) { return l({3, 4}) * g.param("w", {3, 4}, Init::uniform(-2, 2)); }},
      {"state", [](Graph& g, Leaves& l) { return l({3, 4}) + g.state("s", {3, 4}, Init::constant(0.5)); }},
      {"state_i32", [](Graph& g, Leaves& l) { return l({3, 4}) * cast(g.state("k", {3, 4}, Init::zeros(), DType::I32) + 3.0, DType::F32); }},
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
      {"reduce_max_axis1", [](Graph&, Leaves& l) { return reduceMax(l({3, 5}), {1}); }},
      {"reduce_max_axes02_keep", [](Graph&, Leaves& l) { return reduceMax(l({2, 3, 4}), {0, 2}, true); }},
      {"reduce_max_all", [](Graph&, Leaves& l) { return reduceMax(l({3, 5})); }},
      // every maximum is tied with a stop_gradient copy: kiln and torch.amax
      // both give each of the two half the gradient, so x gets dy/2
      {"reduce_max_ties", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return reduceMax(concat({x, stopGradient(x)}, 1), {1}); }},
      {"reduce_min_axis0", [](Graph&, Leaves& l) { return reduceMin(l({4, 3}), {0}); }},
      {"reduce_min_all_keep", [](Graph&, Leaves& l) { return reduceMin(l({2, 3, 4}), {}, true); }},
      {"reduce_min_ties", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return reduceMin(concat({stopGradient(x), x}, 0), {0}); }},
      {"argmin_axis1", [](Graph&, Leaves& l) { return argmin(l({4, 6}), 1); }},
      {"argmin_3d_axis0", [](Graph&, Leaves& l) { return argmin(l({3, 2, 4}), 0); }},
      {"logsumexp", [](Graph&, Leaves& l) { return logSumExp(l({3, 5}, -5.0f, 5.0f), {1}); }},
      {"logsumexp_large_keep", [](Graph&, Leaves& l) { return logSumExp(l({2, 3, 4}, 60.0f, 90.0f), {0, 2}, true); }},
      {"variance", [](Graph&, Leaves& l) { return variance(l({4, 5}), {1}); }},
      {"variance_unbiased_all", [](Graph&, Leaves& l) { return variance(l({3, 4}), {}, false, true); }},
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
      // more elementwise unary (ranges away from kinks and poles)
      {"log1p", [](Graph&, Leaves& l) { return log1p(l({3, 4}, -0.5f, 2.0f)); }},
      {"log1p_tiny", [](Graph&, Leaves& l) { return log1p(l({3, 4}, 1e-7f, 1e-5f)); }, true, 0, 1e-30},
      {"rsqrt", [](Graph&, Leaves& l) { return rsqrt(l({3, 4}, 0.2f, 3.0f)); }},
      {"abs", [](Graph&, Leaves& l) { return abs(l({3, 4})); }},
      // sign: no gradient; sign(-0) = -0 and sign(NaN) = NaN (log of a negative)
      {"sign", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return Outs{sign(x) * x, sign(x * 0.0), sign(log(l({4}, -2.0f, -1.0f)))}; }},
      {"leaky_relu", [](Graph&, Leaves& l) { return leakyRelu(l({4, 5}), 0.2); }},
      {"leaky_relu_default", [](Graph&, Leaves& l) { return leakyRelu(l({4, 5}, -3.0f, 3.0f)); }},
      {"elu", [](Graph&, Leaves& l) { return elu(l({4, 5}, -3.0f, 3.0f), 0.7); }},
      {"elu_wide", [](Graph&, Leaves& l) { return elu(l({4, 5}, -40.0f, 100.0f)); }},
      // both sides of the threshold 20, and far below it
      {"softplus", [](Graph&, Leaves& l) { return softplus(l({4, 5}, -5.0f, 5.0f)); }},
      {"softplus_threshold", [](Graph&, Leaves& l) { return softplus(l({4, 6}, 15.0f, 25.0f)); }},
      {"softplus_wide", [](Graph&, Leaves& l) { return softplus(l({4, 5}, -80.0f, 100.0f)); }, true, 0, 1e-30},
      {"erf", [](Graph&, Leaves& l) { return erf(l({3, 4}, -3.0f, 3.0f)); }},
      {"gelu", [](Graph&, Leaves& l) { return gelu(l({3, 5}, -4.0f, 4.0f)); }},
      {"sin", [](Graph&, Leaves& l) { return sin(l({3, 4}, -6.0f, 6.0f)); }},
      {"cos", [](Graph&, Leaves& l) { return cos(l({3, 4}, -6.0f, 6.0f)); }},
      {"square_clamp", [](Graph&, Leaves& l) { Tensor x = l({3, 5}, -2.0f, 2.0f); return clamp(square(x), 0.3, 2.0); }},
      {"sigmoid_range", [](Graph&, Leaves& l) { return sigmoidRange(l({3, 4}, -4.0f, 4.0f), -1.0, 5.0); }},
      // more elementwise binary
      {"minimum", [](Graph&, Leaves& l) { return minimum(l({3, 4}), l({3, 4})); }},
      {"minimum_bcast", [](Graph&, Leaves& l) { return minimum(l({2, 3, 4}), l({4})); }},
      // ties: kiln and torch both split the gradient equally, so x gets dy/2
      {"maximum_tie", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return maximum(x, stopGradient(x)); }},
      {"minimum_tie", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return minimum(stopGradient(x), x); }},
      {"pow", [](Graph&, Leaves& l) { return pow(l({3, 4}, 0.3f, 2.0f), l({3, 4}, -2.0f, 2.0f)); }},
      {"pow_scalar", [](Graph&, Leaves& l) { return pow(l({3, 4}, 0.3f, 2.0f), 3.0); }},
      // i32 arithmetic wraps (two's complement) in kiln and torch
      {"i32_arith",
       [](Graph& g, Leaves& l) {
         Tensor a = l.labels({3, 4}, 100), b = l.labels({3, 4}, 100);
         Tensor big = g.constant(2147483647.0, {3, 4}, DType::I32);
         return Outs{a + b, a - b, a * b, -a, abs(a - 50.0), a * big, b + big, maximum(a, b), minimum(a, b)};
       }},
      // comparisons: f32 masks of 0/1, no gradient; i32 labels give ties
      {"compare_f32",
       [](Graph&, Leaves& l) {
         Tensor a = l({3, 4}), b = l({3, 4}), m = maximum(a, b);
         return Outs{less(a, b), lessEqual(a, b), greater(a, b), greaterEqual(a, m), equal(a, m), notEqual(a, m)};
       }},
      {"compare_i32",
       [](Graph&, Leaves& l) {
         Tensor a = l.labels({4, 5}, 3), b = l.labels({4, 5}, 3);
         return Outs{less(a, b), lessEqual(a, b), greater(a, b), greaterEqual(a, b), equal(a, b), notEqual(a, b)};
       }},
      {"compare_mask_mul", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return greater(x, l({4})) * x; }},
      {"select", [](Graph&, Leaves& l) { return where(less(l({3, 4}), l({3, 4})), l({3, 4}), l({3, 4})); }},
      {"select_bcast", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return where(greater(x, l({4})), x * x, l({3, 1})); }},
      // f32 -> i32 truncates toward 0 and saturates, NaN gives 0; i32 -> f32
      {"cast",
       [](Graph&, Leaves& l) {
         Tensor x = l({3, 4}, -5.0f, 5.0f);
         return Outs{cast(x, DType::I32), cast(cast(x, DType::I32), DType::F32) * x};
       }},
      {"cast_saturate_nan",
       [](Graph&, Leaves& l) {
         return Outs{cast(l({4, 5}, -6e9f, 6e9f), DType::I32), cast(log(l({3}, -2.0f, -1.0f)), DType::I32),
                     cast(l.labels({6}, 1000) * 4099.0, DType::F32)};
       }},
      {"stop_gradient", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return x * stopGradient(x) + stopGradient(exp(x)); }},
      // more layout
      {"concat_axis0", [](Graph&, Leaves& l) { return concat({l({2, 3}), l({1, 3}), l({3, 3})}, 0); }},
      {"concat_axis1_3d", [](Graph&, Leaves& l) { Tensor x = l({2, 2, 3}); return concat({x, l({2, 1, 3}), x * x}, 1); }},
      {"concat_i32", [](Graph&, Leaves& l) { return concat({l.labels({2, 2}, 5), l.labels({2, 3}, 5)}, -1); }},
      {"slice", [](Graph&, Leaves& l) { return slice(l({5, 6}), {1, 0}, {4, 6}, {1, 2}); }},
      {"slice_3d_stride", [](Graph&, Leaves& l) { return slice(l({4, 5, 6}), {0, 1, 2}, {4, 5, -1}, {3, 2, 2}); }},
      {"slice_negative_begin", [](Graph&, Leaves& l) { return slice(l({4, 5}), {-3}, {-1}); }},
      {"split_stack", [](Graph&, Leaves& l) { auto p = split(l({6, 3}), {1, 2, 3}, 0); return stack({sum(p[1], {0}), squeeze(p[0]) * 2.0, sum(p[2], {0})}, 1); }},
      {"squeeze_unsqueeze", [](Graph&, Leaves& l) { return unsqueeze(squeeze(l({3, 1, 4})), 0) * l({1, 3, 4}); }},
      {"pad", [](Graph&, Leaves& l) { return pad(l({2, 3}), {1, 0}, {2, 1}); }},
      {"pad_interior", [](Graph&, Leaves& l) { return pad(l({3, 4}), {0, 2}, {1, 0}, {1, 2}); }},
      {"pad_3d", [](Graph&, Leaves& l) { return pad(l({2, 2, 3}), {1, 0, 1}, {0, 1, 1}, {0, 1, 0}); }},
      // batched matmul: leading dims are a batch, ta/tb transpose the last two
      {"matmul_batch", [](Graph&, Leaves& l) { return matmul(l({2, 3, 5}), l({2, 5, 4})); }},
      {"matmul_batch_ta", [](Graph&, Leaves& l) { return matmul(l({2, 5, 3}), l({2, 5, 4}), true, false); }},
      {"matmul_batch_tb", [](Graph&, Leaves& l) { return matmul(l({2, 3, 5}), l({2, 4, 5}), false, true); }},
      {"matmul_batch_4d_ta_tb", [](Graph&, Leaves& l) { return matmul(l({2, 3, 5, 2}), l({2, 3, 4, 5}), true, true); }},
      // indexing; out-of-range indices read 0 and write nothing
      {"gather", [](Graph&, Leaves& l) { return gather(l({5, 3}), indices(l, {4}, 0, 5)); }},
      {"gather_out_of_range", [](Graph&, Leaves& l) { return gather(l({5, 3}), indices(l, {3, 4}, -2, 9)); }},
      {"gather_1d_table", [](Graph&, Leaves& l) { return gather(l({6}), indices(l, {2, 5}, -1, 8)); }},
      // 12 lookups of 5 rows: duplicates accumulate in the table's gradient
      {"embedding_duplicates", [](Graph& g, Leaves& l) { Embedding emb(g, "emb", 5, 3); return emb(l.labels({4, 3}, 5)); }},
      {"scatter_add", [](Graph&, Leaves& l) { return scatterAdd(l({6, 3}), indices(l, {6}, 0, 4), 4); }},
      {"scatter_add_out_of_range", [](Graph&, Leaves& l) { return scatterAdd(l({2, 5, 3}), indices(l, {2, 5}, -2, 8), 4); }},
      {"take_along_axis1", [](Graph&, Leaves& l) { return takeAlongAxis(l({3, 5}), indices(l, {3, 4}, 0, 5), 1); }},
      {"take_along_axis0_out_of_range", [](Graph&, Leaves& l) { return takeAlongAxis(l({4, 3}), indices(l, {6, 3}, -2, 8), 0); }},
      {"take_along_3d", [](Graph&, Leaves& l) { return takeAlongAxis(l({2, 4, 3}), indices(l, {2, 2, 3}, 0, 4), 1); }},
      {"scatter_along", [](Graph&, Leaves& l) { return scatterAlongAxis(l({3, 4}), indices(l, {3, 4}, 0, 5), 1, {3, 5}); }},
      {"scatter_along_out_of_range",
       [](Graph&, Leaves& l) { return scatterAlongAxis(l({5, 2, 3}), indices(l, {5, 2, 3}, -1, 6), 0, {3, 2, 3}); }},
      // convolution, NCHW, no bias
      {"conv2d", [](Graph&, Leaves& l) { return conv2d(l({2, 3, 6, 6}), l({4, 3, 3, 3})); }},
      {"conv2d_stride2", [](Graph&, Leaves& l) { return conv2d(l({2, 2, 7, 7}), l({3, 2, 3, 3}), convOpts(2, 0)); }},
      {"conv2d_pad1", [](Graph&, Leaves& l) { return conv2d(l({1, 2, 5, 5}), l({3, 2, 3, 3}), convOpts(1, 1)); }},
      {"conv2d_stride2_pad2", [](Graph&, Leaves& l) { return conv2d(l({2, 2, 6, 5}), l({2, 2, 3, 3}), convOpts(2, 2)); }},
      {"conv2d_dilation2", [](Graph&, Leaves& l) { return conv2d(l({1, 2, 7, 7}), l({3, 2, 3, 3}), convOpts(1, 1, 2)); }},
      {"conv2d_groups2", [](Graph&, Leaves& l) { return conv2d(l({2, 4, 5, 5}), l({6, 2, 3, 3}), convOpts(1, 1, 1, 2)); }},
      {"conv2d_depthwise", [](Graph&, Leaves& l) { return conv2d(l({1, 3, 5, 5}), l({3, 1, 3, 3}), convOpts(1, 1, 1, 3)); }},
      {"conv2d_1x1", [](Graph&, Leaves& l) { return conv2d(l({2, 4, 3, 3}), l({5, 4, 1, 1})); }},
      {"conv2d_rect",
       [](Graph&, Leaves& l) { return conv2d(l({1, 2, 6, 7}), l({2, 2, 2, 3}), {{1, 2}, {1, 0}, {2, 1}, 1}); }},
      {"conv2d_layer", [](Graph& g, Leaves& l) { Conv2d c(g, "c", 3, 4, 3, convOpts(2, 1)); return c(l({2, 3, 6, 6})); }},
      {"conv2d_grads", [](Graph&, Leaves& l) { return convGrads(l, {2, 3, 5, 5}, {4, 3, 3, 3}, convOpts(1, 0)); }},
      {"conv2d_grads_stride2_pad1", [](Graph&, Leaves& l) { return convGrads(l, {2, 2, 6, 6}, {3, 2, 3, 3}, convOpts(2, 1)); }},
      {"conv2d_grads_dilation_groups",
       [](Graph&, Leaves& l) { return convGrads(l, {1, 4, 7, 7}, {4, 2, 3, 3}, convOpts(1, 2, 2, 2)); }},
      // pooling, NCHW; padding never wins a max, and counts as zeros in an average
      {"maxpool2d", [](Graph&, Leaves& l) { return maxPool2d(l({2, 3, 6, 6}), {2, 2}); }},
      {"maxpool2d_3x3_s2_pad1", [](Graph&, Leaves& l) { return maxPool2d(l({2, 2, 7, 7}), {3, 3}, {2, 2}, {1, 1}); }},
      {"maxpool2d_pad_negative", [](Graph&, Leaves& l) { return maxPool2d(l({1, 2, 5, 5}, -3.0f, -1.0f), {2, 2}, {1, 1}, {1, 1}); }},
      {"maxpool2d_overlap_rect", [](Graph&, Leaves& l) { return maxPool2d(l({1, 2, 6, 7}), {3, 2}, {1, 2}); }},
      // maxpool2d_grad has no gradient rule of its own (Ops.def: missingGrad)
      {"maxpool2d_grad", [](Graph&, Leaves& l) { return poolGrad(l, true, {2, 2, 6, 6}, {2, 2}, {2, 2}, {0, 0}); }, false},
      {"maxpool2d_grad_ties_pad",
       [](Graph&, Leaves& l) { return poolGrad(l, true, {2, 2, 7, 7}, {3, 3}, {2, 2}, {1, 1}, true); }, false},
      {"maxpool2d_grad_ties_overlap",
       [](Graph&, Leaves& l) { return poolGrad(l, true, {1, 3, 5, 6}, {2, 3}, {1, 1}, {0, 1}, true); }, false},
      {"avgpool2d", [](Graph&, Leaves& l) { return avgPool2d(l({2, 3, 6, 6}), {2, 2}); }},
      {"avgpool2d_3x3_s2_pad1", [](Graph&, Leaves& l) { return avgPool2d(l({2, 2, 7, 7}), {3, 3}, {2, 2}, {1, 1}); }},
      {"avgpool2d_rect_pad", [](Graph&, Leaves& l) { return avgPool2d(l({1, 2, 5, 6}), {2, 4}, {1, 2}, {1, 2}); }},
      {"avgpool2d_grad", [](Graph&, Leaves& l) { return poolGrad(l, false, {2, 2, 7, 7}, {3, 3}, {2, 2}, {1, 1}); }},
      // random numbers: torch recomputes kiln's counter-based generator in
      // numpy; uniform values are exact floats, so they must match exactly
      {"random_uniform", [](Graph& g, Leaves&) { return Outs{randomUniform(g, {3, 5}), randomUniform(g, {7})}; }, true,
       1e-30, 1e-38},
      {"random_normal", [](Graph& g, Leaves&) { return Outs{randomNormal(g, {4, 6}), randomNormal(g, {5})}; }, true,
       1e-30, 1e-38},
      {"random_mul", [](Graph& g, Leaves& l) { return randomNormal(g, {3, 4}) * l({3, 4}) + randomUniform(g, {4}); }},
      {"dropout", [](Graph&, Leaves& l) { return dropout(l({5, 8}), 0.3, true); }},
      {"dropout_off", [](Graph&, Leaves& l) { return dropout(l({3, 4}), 0.5, false) * 2.0; }},
      // losses
      {"softmax_cross_entropy_probs",
       [](Graph&, Leaves& l) { return softmaxCrossEntropyProbs(l({4, 5}, -3.0f, 3.0f), softmax(l({4, 5}))); }},
      {"bce_with_logits", [](Graph&, Leaves& l) { return bceWithLogits(l({4, 5}, -4.0f, 4.0f), l({4, 5}, 0.0f, 1.0f)); }},
      {"bce_with_logits_large", [](Graph&, Leaves& l) { return bceWithLogits(l({4, 6}, -90.0f, 90.0f), l({4, 6}, 0.0f, 1.0f)); }},
      {"mse_loss", [](Graph&, Leaves& l) { return mean(mseLoss(l({4, 3}), l({4, 3}))); }},
      {"l1_loss", [](Graph&, Leaves& l) { return l1Loss(l({4, 3}), l({4, 3})); }},
      {"huber", [](Graph&, Leaves& l) { return huberLoss(l({5, 4}, -2.0f, 2.0f), l({5, 4}, -2.0f, 2.0f)); }},
      {"huber_delta", [](Graph&, Leaves& l) { return mean(huberLoss(l({5, 4}, -2.0f, 2.0f), l({5, 4}), 0.3)); }},
      {"negative_sampling_loss", [](Graph&, Leaves& l) { return negativeSamplingLoss(l({3, 4}), l({3, 4}), l({3, 5, 4})); }},
      {"negative_sampling_loss_large",
       [](Graph&, Leaves& l) { return negativeSamplingLoss(l({3, 4}, -4.0f, 4.0f), l({3, 4}, -4.0f, 4.0f), l({3, 2, 4}, -4.0f, 4.0f)); }},
      {"sampled_softmax_loss",
       [](Graph&, Leaves& l) {
         return sampledSoftmaxLoss(l({3, 4}), l.param({7, 4}), l.param({7}, -0.1f, 0.1f), l.labels({3}, 7), l.labels({3, 5}, 7));
       }},
      // layers
      {"batchnorm_train_2d", [](Graph& g, Leaves& l) { BatchNorm bn(g, "bn", 4); return bn(l({6, 4}, -2.0f, 3.0f), true); }},
      {"batchnorm_train_4d", [](Graph& g, Leaves& l) { BatchNorm bn(g, "bn", 3); return bn(l({2, 3, 4, 4}), true); }},
      {"batchnorm_infer", [](Graph& g, Leaves& l) { BatchNorm bn(g, "bn", 3); return bn(l({2, 3, 2, 2}), false) * l({2, 3, 2, 2}); }},
      {"layernorm", [](Graph& g, Leaves& l) { LayerNorm ln(g, "ln", 6); return ln(l({4, 6}, -2.0f, 3.0f)); }},
      {"layernorm_3d", [](Graph& g, Leaves& l) { LayerNorm ln(g, "ln", 5); return ln(l({2, 3, 5})) * l({5}); }},
      {"lstm", lstm},
      {"gru", gru},
      {"rnn", rnn},
      {"seq_classifier", seqClassifier},
      {"small_cnn", smallCnn},
      // compositions: fan-out, several outputs, small models
      {"fanout", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return x * x + exp(x) * sum(x, {1}, true); }},
      {"two_outputs", [](Graph&, Leaves& l) { Tensor x = l({3, 4}); return Outs{tanh(x), sum(x * x, {0})}; }},
      {"mlp", mlp},
      {"mlp_tied", mlpTied},
  };
  return table;
}

}  // namespace kiln::parity
