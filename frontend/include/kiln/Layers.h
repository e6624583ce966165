// Layers: named groups of params with a call operator, built from DSL ops
// (no layer is an op of its own). Default initializations follow PyTorch's,
// so a model ported from it starts from the same distribution.
#pragma once

#include <string>
#include <optional>
#include <utility>
#include <vector>

#include "ir/Builder.h"

namespace kiln {

// Lookup table: idx i32[...] -> f32[..., dim]. Init N(0, 1) as nn.Embedding.
class Embedding {
public:
  Embedding(Graph& g, const std::string& name, int64_t count, int64_t dim, Init init = Init::normal(0, 1),
            Loc loc = Loc::current());
  Tensor operator()(Tensor idx, Loc loc = Loc::current()) const;
  Tensor weight;  // f32[count, dim]
  // When >= 0, this id (a row of the table) reads as zeros and gets no
  // gradient: use it to pad variable-length inputs (nn.Embedding's
  // padding_idx). Ids are checked to lie in [0, count) on every call.
  int64_t paddingIdx = -1;
};

// 2-D convolution with bias, NCHW. Weight f32[out, in/groups, k, k] and bias
// U(-1/sqrt(fanIn), 1/sqrt(fanIn)), fanIn = in/groups*k*k, as nn.Conv2d.
class Conv2d {
public:
  Conv2d(Graph& g, const std::string& name, int64_t in, int64_t out, int64_t kernel, Conv2dOptions opts = {},
         bool bias = true, Loc loc = Loc::current());
  Tensor operator()(Tensor x, Loc loc = Loc::current()) const;
  Tensor weight, bias;
  Conv2dOptions opts;
};

// Batch normalization over every axis but 1 (features/channels): x f32[N,C]
// or f32[N,C,H,W]. Training mode normalizes with the batch statistics and
// registers the running-statistics update (momentum, unbiased variance, as
// nn.BatchNorm) that every training step applies by itself; inference mode
// uses the running statistics.
class BatchNorm {
public:
  BatchNorm(Graph& g, const std::string& name, int64_t features, double momentum = 0.1, double eps = 1e-5,
            Loc loc = Loc::current());
  Tensor operator()(Tensor x, bool training, Loc loc = Loc::current());
  Tensor gamma, beta, runningMean, runningVar;

private:
  double momentum_, eps_;
  bool updateRegistered_ = false;
};

// Layer normalization over the last dim, with gain and bias.
class LayerNorm {
public:
  LayerNorm(Graph& g, const std::string& name, int64_t features, double eps = 1e-5, Loc loc = Loc::current());
  Tensor operator()(Tensor x, Loc loc = Loc::current()) const;
  Tensor gamma, beta;

private:
  double eps_;
};

// Inverted dropout with probability p; the identity when not training.
struct Dropout {
  double p = 0.5;
  Tensor operator()(Tensor x, bool training, Loc loc = Loc::current()) const { return dropout(x, p, training, loc); }
};

struct MaxPool2d {
  std::vector<int64_t> kernel{2, 2}, stride{}, pad{0, 0};
  Tensor operator()(Tensor x, Loc loc = Loc::current()) const { return maxPool2d(x, kernel, stride, pad, loc); }
};

enum class Activation { Tanh, Relu };

// h' = act(x Wx + h Wh + b). Defaults as nn.RNNCell: every weight
// U(-1/sqrt(hidden), 1/sqrt(hidden)). For relu RNNs, Le et al.'s
// initialization is recurrentInit = Init::identity(), biasInit = zeros.
struct RNNOptions {
  Activation activation = Activation::Tanh;
  std::optional<Init> inputInit, recurrentInit, biasInit;  // default: U(-1/sqrt(h), 1/sqrt(h))
};

class RNNCell {
public:
  RNNCell(Graph& g, const std::string& name, int64_t in, int64_t hidden, RNNOptions opts = {}, Loc loc = Loc::current());
  Tensor operator()(Tensor x, Tensor h, Loc loc = Loc::current()) const;
  int64_t hidden() const { return hidden_; }
  Tensor wx, wh, b;

private:
  Activation act_;
  int64_t hidden_;
};

// LSTM cell, gates (i, f, g, o) in that order as nn.LSTMCell:
// c' = f*c + i*g, h' = o*tanh(c'). Weights Wx f32[in,4h], Wh f32[h,4h],
// bias f32[4h], all U(-1/sqrt(h), 1/sqrt(h)); forgetBias is added to the
// forget gate's bias at init (0 = PyTorch's default).
class LSTMCell {
public:
  LSTMCell(Graph& g, const std::string& name, int64_t in, int64_t hidden, double forgetBias = 0.0,
           Loc loc = Loc::current());
  struct State {
    Tensor h, c;
  };
  State operator()(Tensor x, State s, Loc loc = Loc::current()) const;
  int64_t hidden() const { return hidden_; }
  Tensor wx, wh, b;

private:
  int64_t hidden_;
};

// GRU cell as nn.GRUCell: r = s(x Wr + br + h Ur + cr), z likewise,
// n = tanh(x Wn + bn + r*(h Un + cn)), h' = (1-z)*n + z*h.
class GRUCell {
public:
  GRUCell(Graph& g, const std::string& name, int64_t in, int64_t hidden, Loc loc = Loc::current());
  Tensor operator()(Tensor x, Tensor h, Loc loc = Loc::current()) const;
  int64_t hidden() const { return hidden_; }
  Tensor wx, wh, bx, bh;

private:
  int64_t hidden_;
};

// Runs `step` over the time steps of xs with shared weights:
// h[t] = step(xs[t], h[t-1]), h[-1] = h0. Returns every h[t].
template <typename Cell, typename State>
std::vector<State> unroll(const Cell& step, const std::vector<Tensor>& xs, State h0) {
  std::vector<State> out;
  State h = std::move(h0);
  for (const Tensor& x : xs) {
    h = step(x, h);
    out.push_back(h);
  }
  return out;
}

// The T slices x[:, t, ...] of a [B, T, ...] tensor (a batch of sequences),
// each of shape [B, ...].
std::vector<Tensor> timeSteps(Tensor x, Loc loc = Loc::current());

}  // namespace kiln
