// Layers built from DSL ops (see kiln/Layers.h).
#include "kiln/Layers.h"

#include <cmath>
#include <fmt/format.h>

namespace kiln {

static Init uniformBound(double fanIn) {
  double k = 1.0 / std::sqrt(fanIn);
  return Init::uniform(-k, k);
}

Embedding::Embedding(Graph& g, const std::string& name, int64_t count, int64_t dim, Init init, Loc loc)
    : weight(g.param(name + ".weight", {count, dim}, init, loc)) {}

Tensor Embedding::operator()(Tensor idx, Loc loc) const {
  Tensor rows = gather(weight, idx, loc);
  if (paddingIdx < 0) return rows;
  Graph& g = idx.graph();
  Tensor keep = notEqual(idx, g.constant(static_cast<double>(paddingIdx), {}, DType::I32, loc), loc);  // f32 mask
  return mul(rows, unsqueeze(keep, -1, loc), loc);
}

Conv2d::Conv2d(Graph& g, const std::string& name, int64_t in, int64_t out, int64_t kernel, Conv2dOptions o,
               bool hasBias, Loc loc)
    : opts(std::move(o)) {
  if (opts.groups < 1 || in % opts.groups != 0)
    throw Error(fmt::format("{}: Conv2d \"{}\": {} input channels do not split into {} groups", g.locOf(loc).str(),
                            name, in, opts.groups));
  double fanIn = static_cast<double>(in / opts.groups * kernel * kernel);
  weight = g.param(name + ".weight", {out, in / opts.groups, kernel, kernel}, uniformBound(fanIn), loc);
  if (hasBias) bias = g.param(name + ".bias", {out}, uniformBound(fanIn), loc);
}

Tensor Conv2d::operator()(Tensor x, Loc loc) const {
  Tensor y = conv2d(x, weight, opts, loc);
  if (!bias.valid()) return y;
  return add(y, reshape(bias, {1, bias.dim(0), 1, 1}, loc), loc);
}

// The axes statistics are taken over (all but 1), and the shape that
// broadcasts a per-feature vector against x.
static std::pair<std::vector<int64_t>, Shape> featureAxes(const Tensor& x, int64_t features, const char* what,
                                                          Loc loc) {
  if ((x.rank() != 2 && x.rank() != 4) || x.dim(1) != features)
    throw Error(fmt::format("{}: {}: needs f32[N,{}] or f32[N,{},H,W], got {}", x.graph().locOf(loc).str(), what,
                            features, features, ir::typeStr(x.type())));
  std::vector<int64_t> axes{0};
  Shape bshape(static_cast<size_t>(x.rank()), 1);
  bshape[1] = features;
  for (int64_t d = 2; d < x.rank(); ++d) axes.push_back(d);
  return {axes, bshape};
}

BatchNorm::BatchNorm(Graph& g, const std::string& name, int64_t features, double momentum, double eps, Loc loc)
    : gamma(g.param(name + ".gamma", {features}, Init::constant(1.0), loc)),
      beta(g.param(name + ".beta", {features}, Init::zeros(), loc)),
      runningMean(g.state(name + ".running_mean", {features}, Init::zeros(), DType::F32, loc)),
      runningVar(g.state(name + ".running_var", {features}, Init::constant(1.0), DType::F32, loc)),
      momentum_(momentum),
      eps_(eps) {
  if (!(momentum > 0 && momentum <= 1) || !(eps > 0))
    throw Error(fmt::format("{}: BatchNorm \"{}\": needs 0 < momentum <= 1 and eps > 0", g.locOf(loc).str(), name));
}

// y = (x - mean) / sqrt(var + eps) * gamma + beta
Tensor BatchNorm::operator()(Tensor x, bool training, Loc loc) {
  int64_t c = gamma.dim(0);
  auto [axes, bshape] = featureAxes(x, c, "BatchNorm", loc);
  Tensor mean, var;
  if (training) {
    mean = kiln::mean(x, axes, false, loc);
    var = variance(x, axes, false, false, loc);
    if (!updateRegistered_) {
      int64_t count = x.type().numElements() / c;
      Tensor unbiased = var * (static_cast<double>(count) / static_cast<double>(std::max<int64_t>(count - 1, 1)));
      Graph& g = x.graph();
      g.addStateUpdate(runningMean, (1.0 - momentum_) * runningMean + momentum_ * stopGradient(mean, loc), loc);
      g.addStateUpdate(runningVar, (1.0 - momentum_) * runningVar + momentum_ * stopGradient(unbiased, loc), loc);
      updateRegistered_ = true;
    }
  } else {
    mean = runningMean;
    var = runningVar;
  }
  Tensor scale = mul(rsqrt(var + eps_, loc), gamma, loc);  // per feature
  Tensor shift = sub(beta, mul(mean, scale, loc), loc);
  return add(mul(x, reshape(scale, bshape, loc), loc), reshape(shift, bshape, loc), loc);
}

LayerNorm::LayerNorm(Graph& g, const std::string& name, int64_t features, double eps, Loc loc)
    : gamma(g.param(name + ".gamma", {features}, Init::constant(1.0), loc)),
      beta(g.param(name + ".beta", {features}, Init::zeros(), loc)),
      eps_(eps) {}

Tensor LayerNorm::operator()(Tensor x, Loc loc) const {
  if (x.dim(-1) != gamma.dim(0))
    throw Error(fmt::format("{}: LayerNorm: last dim of {} is not {}", x.graph().locOf(loc).str(),
                            ir::typeStr(x.type()), gamma.dim(0)));
  Tensor d = sub(x, kiln::mean(x, {-1}, true, loc), loc);
  Tensor var = kiln::mean(mul(d, d, loc), {-1}, true, loc);
  return add(mul(mul(d, rsqrt(var + eps_, loc), loc), gamma, loc), beta, loc);
}

RNNCell::RNNCell(Graph& g, const std::string& name, int64_t in, int64_t hidden, RNNOptions o, Loc loc)
    : act_(o.activation), hidden_(hidden) {
  Init dflt = uniformBound(static_cast<double>(hidden));
  wx = g.param(name + ".wx", {in, hidden}, o.inputInit.value_or(dflt), loc);
  wh = g.param(name + ".wh", {hidden, hidden}, o.recurrentInit.value_or(dflt), loc);
  b = g.param(name + ".b", {hidden}, o.biasInit.value_or(dflt), loc);
}

Tensor RNNCell::operator()(Tensor x, Tensor h, Loc loc) const {
  Tensor pre = add(add(matmul(x, wx, false, false, loc), matmul(h, wh, false, false, loc), loc), b, loc);
  return act_ == Activation::Tanh ? tanh(pre, loc) : relu(pre, loc);
}

LSTMCell::LSTMCell(Graph& g, const std::string& name, int64_t in, int64_t hidden, double forgetBias, Loc loc)
    : hidden_(hidden) {
  Init dflt = uniformBound(static_cast<double>(hidden));
  wx = g.param(name + ".wx", {in, 4 * hidden}, dflt, loc);
  wh = g.param(name + ".wh", {hidden, 4 * hidden}, dflt, loc);
  b = g.param(name + ".b", {4 * hidden}, dflt, loc);
  if (forgetBias != 0.0) b = add(b, concat({g.constant(0.0, {hidden}, DType::F32, loc),
                                            g.constant(forgetBias, {hidden}, DType::F32, loc),
                                            g.constant(0.0, {2 * hidden}, DType::F32, loc)}, 0, loc), loc);
}

LSTMCell::State LSTMCell::operator()(Tensor x, State s, Loc loc) const {
  Tensor z = add(add(matmul(x, wx, false, false, loc), matmul(s.h, wh, false, false, loc), loc), b, loc);
  auto gates = split(z, {hidden_, hidden_, hidden_, hidden_}, 1, loc);
  Tensor i = sigmoid(gates[0], loc), f = sigmoid(gates[1], loc), gg = tanh(gates[2], loc), o = sigmoid(gates[3], loc);
  Tensor c = add(mul(f, s.c, loc), mul(i, gg, loc), loc);
  return {mul(o, tanh(c, loc), loc), c};
}

GRUCell::GRUCell(Graph& g, const std::string& name, int64_t in, int64_t hidden, Loc loc) : hidden_(hidden) {
  Init dflt = uniformBound(static_cast<double>(hidden));
  wx = g.param(name + ".wx", {in, 3 * hidden}, dflt, loc);
  wh = g.param(name + ".wh", {hidden, 3 * hidden}, dflt, loc);
  bx = g.param(name + ".bx", {3 * hidden}, dflt, loc);
  bh = g.param(name + ".bh", {3 * hidden}, dflt, loc);
}

Tensor GRUCell::operator()(Tensor x, Tensor h, Loc loc) const {
  auto xs = split(add(matmul(x, wx, false, false, loc), bx, loc), {hidden_, hidden_, hidden_}, 1, loc);
  auto hs = split(add(matmul(h, wh, false, false, loc), bh, loc), {hidden_, hidden_, hidden_}, 1, loc);
  Tensor r = sigmoid(add(xs[0], hs[0], loc), loc), z = sigmoid(add(xs[1], hs[1], loc), loc);
  Tensor n = tanh(add(xs[2], mul(r, hs[2], loc), loc), loc);
  return add(mul(1.0 - z, n, loc), mul(z, h, loc), loc);
}

std::vector<Tensor> timeSteps(Tensor x, Loc loc) {
  if (x.rank() < 2)
    throw Error(fmt::format("{}: timeSteps: needs [B, T, ...], got {}", x.graph().locOf(loc).str(), ir::typeStr(x.type())));
  std::vector<Tensor> out;
  Shape s = x.shape();
  s.erase(s.begin() + 1);
  for (int64_t t = 0; t < x.dim(1); ++t) out.push_back(reshape(sliceAxis(x, 1, t, 1, loc), s, loc));
  return out;
}

}  // namespace kiln
