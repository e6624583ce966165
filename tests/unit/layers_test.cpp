// Layers, stochastic ops, numerically stable losses, higher-order gradients
// and initializers: behaviour a user relies on beyond single-op agreement.
#include <cmath>
#include <numeric>

#include "TestUtil.h"
#include "autodiff/Grad.h"
#include "ir/InitSpec.h"
#include "passes/Passes.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

std::vector<float> vecOf(float* p, int64_t n) { return std::vector<float>(p, p + n); }

// Every source of g bound to deterministic values (params/state from init).
std::map<ir::ValueId, HostTensor> boundSources(const Graph& g, uint64_t seed) {
  std::map<ir::ValueId, HostTensor> src;
  uint64_t stream = 1;
  for (ir::ValueId v = 0; v < g.ir().size(); ++v) {
    const ir::Node& n = g.ir().node(v);
    if (!ir::isSource(n.op)) continue;
    HostTensor t = HostTensor::zeros(n.type);
    if (n.op == ir::OpKind::Input) test::fillRandom(t, stream++, -1.0f, 1.0f, 3);
    else ir::initSource(n, t.data(), seed);
    src[v] = t;
  }
  return src;
}

}  // namespace

TEST_CASE("layers: batch norm updates its running statistics inside the train step") {
  Graph g;
  Tensor x = g.input("x", {8, 3});
  Tensor y = g.input("y", {8}, DType::I32);
  Linear l1(g, "l1", 3, 4);
  BatchNorm bn(g, "bn", 4, 0.1);
  Tensor h = l1(x);
  Tensor logits = bn(h, true);
  Module m(g);
  m.addFunction("features", {x}, {{"h", h}});
  m.addFunction("predict", {x}, {{"out", bn(h, false)}});
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(logits, y)), SGD{0.1});
  auto jit = jit::compile(m);
  jit->init(3);
  auto xs = test::randomVec(24, 5);
  std::copy(xs.begin(), xs.end(), jit->f32("x"));
  for (int i = 0; i < 8; ++i) jit->i32("y")[i] = i % 4;
  jit->run("features");  // h before the step (the step changes l1)
  std::vector<float> hv = vecOf(jit->f32("features.h"), 32);
  jit->run("trainStep");
  for (int c = 0; c < 4; ++c) {
    double mu = 0, ss = 0;
    for (int r = 0; r < 8; ++r) mu += hv[r * 4 + c];
    mu /= 8;
    for (int r = 0; r < 8; ++r) ss += (hv[r * 4 + c] - mu) * (hv[r * 4 + c] - mu);
    CHECK(jit->f32("bn.running_mean")[c] == doctest::Approx(0.1 * mu).epsilon(1e-4));
    CHECK(jit->f32("bn.running_var")[c] == doctest::Approx(0.9 + 0.1 * ss / 7).epsilon(1e-4));
  }
  // inference mode normalizes with the running statistics
  jit->run("features");
  jit->run("predict");
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 4; ++c) {
      float hval = jit->f32("features.h")[r * 4 + c];
      float want = (hval - jit->f32("bn.running_mean")[c]) / std::sqrt(jit->f32("bn.running_var")[c] + 1e-5f) *
                       jit->f32("bn.gamma")[c] + jit->f32("bn.beta")[c];
      CHECK(jit->f32("predict.out")[r * 4 + c] == doctest::Approx(want).epsilon(1e-4));
    }
}

TEST_CASE("layers: dropout masks agree between forward and backward and change every step") {
  Graph g;
  Tensor w = g.param("w", {1000}, Init::constant(1.0));
  Tensor x = g.input("x", {1000});
  Tensor y = dropout(w * x, 0.3, true);
  Tensor gw = grad(sum(y), {w})[0];
  Module m(g);
  m.addFunction("f", {x}, {{"y", y}, {"gw", gw}});
  auto a = jit::compile(m), b = jit::compile(m);
  a->init(11);
  b->init(11);
  std::fill(a->f32("x"), a->f32("x") + 1000, 2.0f);
  std::fill(b->f32("x"), b->f32("x") + 1000, 2.0f);
  a->run("f");
  b->run("f");
  std::vector<float> ya = vecOf(a->f32("f.y"), 1000), ga = vecOf(a->f32("f.gw"), 1000);
  CHECK(ya == vecOf(b->f32("f.y"), 1000));  // same seed, same bits
  int dropped = 0;
  for (int i = 0; i < 1000; ++i) {
    // y = w*x*mask/(1-p) and dy/dw = x*mask/(1-p): the same mask in both
    CHECK(ga[i] == ya[i]);
    if (ya[i] == 0.0f) ++dropped;
    else CHECK(ya[i] == doctest::Approx(2.0 / 0.7));
  }
  CHECK(dropped > 240);
  CHECK(dropped < 360);
  CHECK(a->i32("rng.key")[1] == 0);  // only a training step advances the key
}

TEST_CASE("layers: the train step advances the RNG key and resumes reproducibly") {
  Graph g;
  Tensor x = g.input("x", {16, 4});
  Tensor y = g.input("y", {16}, DType::I32);
  Linear l1(g, "l1", 4, 8), l2(g, "l2", 8, 3);
  Tensor logits = l2(dropout(relu(l1(x)), 0.5, true));
  Module m(g);
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(logits, y)), Adam{1e-2});
  auto a = jit::compile(m);
  a->init(5);
  auto xs = test::randomVec(64, 9);
  std::copy(xs.begin(), xs.end(), a->f32("x"));
  for (int i = 0; i < 16; ++i) a->i32("y")[i] = i % 3;
  std::vector<float> losses;
  for (int s = 0; s < 4; ++s) {
    a->run("trainStep");
    losses.push_back(a->f32("trainStep.loss")[0]);
  }
  CHECK(a->i32("rng.key")[1] == 4);
  // the interpreter, stepping the same way, gives the same losses
  interp::Session s(g.ir());
  s.init(5);
  s.source("x").f = xs;
  for (int i = 0; i < 16; ++i) s.source("y").i[i] = i % 3;
  for (int k = 0; k < 4; ++k) {
    s.run("trainStep");
    CHECK(s.output("trainStep", "loss").f[0] == doctest::Approx(losses[k]).epsilon(1e-5));
  }
  CHECK(losses[0] != losses[1]);
}

TEST_CASE("layers: recurrent cells match the interpreter and finite differences") {
  Graph g;
  Tensor x = g.input("x", {2, 3, 4});  // [B, T, in]
  LSTMCell lstm(g, "lstm", 4, 5, 1.0);
  GRUCell gru(g, "gru", 5, 3);
  RNNCell rnn(g, "rnn", 3, 3, {Activation::Relu, std::nullopt, Init::identity(), Init::zeros()});
  auto xs = timeSteps(x);
  auto states = unroll(lstm, xs, LSTMCell::State{g.constant(0, {2, 5}), g.constant(0, {2, 5})});
  std::vector<Tensor> hs;
  for (auto& s : states) hs.push_back(s.h);
  auto gs = unroll(gru, hs, g.constant(0, {2, 3}));
  auto rs = unroll(rnn, gs, g.constant(0, {2, 3}));
  Tensor loss = sum(rs.back() * rs.back()) + sum(states.back().c);
  Module m(g);
  m.addFunction("f", {x}, {{"loss", loss}});
  auto jit = jit::compile(m);
  jit->init(2);
  interp::Session s(g.ir());
  s.init(2);
  auto xv = test::randomVec(24, 4);
  s.source("x").f = xv;
  std::copy(xv.begin(), xv.end(), jit->f32("x"));
  s.run("f");
  jit->run("f");
  CHECK(jit->f32("f.loss")[0] == doctest::Approx(s.output("f", "loss").f[0]).epsilon(1e-5));

  std::vector<Tensor> params{lstm.wx, lstm.wh, gru.wh, rnn.wh};
  auto grads = grad(loss, params);
  auto src = boundSources(g, 2);
  src[x.id()].f = xv;
  std::vector<ir::ValueId> roots;
  for (auto& t : grads) roots.push_back(t.id());
  auto analytic = interp::evaluate(g.ir(), roots, src);
  for (size_t p = 0; p < params.size(); ++p) {
    auto numeric = test::numericGradient(g.ir(), loss.id(), params[p].id(), src, 1e-2f);
    test::checkClose(analytic[p].f, numeric, 2e-3f, 2e-2f, fmt::format("param {}", p));
  }
}

TEST_CASE("layers: conv, pooling and layer norm build a small CNN that trains") {
  Graph g;
  Tensor x = g.input("x", {4, 1, 8, 8});
  Tensor y = g.input("y", {4}, DType::I32);
  Conv2d c1(g, "c1", 1, 3, 3, {{1, 1}, {1, 1}});
  LayerNorm ln(g, "ln", 12);
  Linear fc(g, "fc", 12, 2);
  Tensor h = MaxPool2d{{4, 4}}(relu(c1(x)));       // [4,3,2,2]
  Tensor logits = fc(ln(reshape(h, {4, 12})));
  Tensor loss = mean(softmaxCrossEntropy(logits, y));
  Module m(g);
  m.addTrainStep("trainStep", loss, Adam{0.05});
  auto jit = jit::compile(m);
  jit->init(1);
  auto xs = test::randomVec(256, 3);
  for (int i = 0; i < 4; ++i) {
    jit->i32("y")[i] = i % 2;
    for (int k = 0; k < 64; ++k) xs[i * 64 + k] += (i % 2) ? 0.5f : -0.5f;  // separable
  }
  std::copy(xs.begin(), xs.end(), jit->f32("x"));
  jit->run("trainStep");
  float first = jit->f32("trainStep.loss")[0];
  for (int s = 0; s < 30; ++s) jit->run("trainStep");
  CHECK(jit->f32("trainStep.loss")[0] < 0.2f * first);
}

TEST_CASE("layers: embedding gradients accumulate over duplicate indices") {
  Graph g;
  Embedding emb(g, "emb", 4, 2);
  Tensor idx = g.input("idx", {5}, DType::I32);
  Tensor dy = g.input("dy", {5, 2});
  Tensor gw = grad(sum(emb(idx) * dy), {emb.weight})[0];
  Module m(g);
  m.addFunction("f", {idx, dy}, {{"gw", gw}});
  auto jit = jit::compile(m);
  jit->init(0);
  int32_t ids[5] = {1, 3, 1, 1, 0};
  std::copy(ids, ids + 5, jit->i32("idx"));
  for (int i = 0; i < 10; ++i) jit->f32("dy")[i] = static_cast<float>(i + 1);
  jit->run("f");
  std::vector<float> want{9, 10, /*row1: rows 0,2,3*/ 1 + 5 + 7, 2 + 6 + 8, 0, 0, 3, 4};
  CHECK(vecOf(jit->f32("f.gw"), 8) == want);
}

TEST_CASE("losses: stable forms stay finite for logits of 1e4") {
  Graph g;
  Tensor logits = g.param("logits", {2, 3}, Init::zeros());
  Tensor y = g.input("y", {2}, DType::I32);
  Tensor z = g.input("z", {2, 3});
  Tensor ce = mean(softmaxCrossEntropy(logits, y));
  Tensor bce = mean(bceWithLogits(logits, z));
  Tensor lse = sum(logSumExp(logits, {1}));
  auto gr = grad(ce + bce + lse, {logits});
  auto src = boundSources(g, 0);
  src[logits.id()].f = {1e4f, -1e4f, 0.0f, -1e4f, 1e4f, 1e4f};
  src[y.id()].i = {1, 0};
  src[z.id()].f = {1, 0, 1, 0, 1, 0};
  auto out = interp::evaluate(g.ir(), {ce.id(), bce.id(), lse.id(), gr[0].id()}, src);
  CHECK(out[0].f[0] == doctest::Approx(2e4 + 0.5 * std::log(2.0)).epsilon(1e-5));
  CHECK(std::isfinite(out[1].f[0]));
  CHECK(out[2].f[0] == doctest::Approx(2e4 + std::log(2.0)).epsilon(1e-5));
  for (float v : out[3].f) CHECK(std::isfinite(v));
  // compiled code agrees
  Module m(g);
  m.addFunction("f", {y, z}, {{"ce", ce}, {"bce", bce}, {"g", gr[0]}});
  auto jit = jit::compile(m);
  std::copy(src[logits.id()].f.begin(), src[logits.id()].f.end(), jit->f32("logits"));
  std::copy(src[y.id()].i.begin(), src[y.id()].i.end(), jit->i32("y"));
  std::copy(src[z.id()].f.begin(), src[z.id()].f.end(), jit->f32("z"));
  jit->run("f");
  CHECK(jit->f32("f.ce")[0] == out[0].f[0]);
  for (int i = 0; i < 6; ++i) CHECK(jit->f32("f.g")[i] == out[3].f[i]);
}

// Hessian-vector product Hv = d/dp (grad(L, p) . v) against finite
// differences of the gradient: (grad(p + hv) - grad(p - hv)) / 2h.
TEST_CASE("higher order: Hessian-vector product of a small MLP matches finite differences") {
  Graph g;
  Tensor x = g.input("x", {5, 3});
  Tensor y = g.input("y", {5}, DType::I32);
  Linear l1(g, "l1", 3, 4), l2(g, "l2", 4, 3);
  Tensor loss = mean(softmaxCrossEntropy(l2(tanh(l1(x))), y));
  Tensor v = g.input("v", {3, 4});
  Tensor gp = grad(loss, {l1.weight})[0];
  Tensor hv = grad(sum(gp * v), {l1.weight})[0];
  auto src = boundSources(g, 4);
  auto analytic = interp::evaluate(g.ir(), {hv.id()}, src)[0].f;
  const float h = 1e-2f;
  auto plus = src, minus = src;
  for (size_t i = 0; i < 12; ++i) {
    plus[l1.weight.id()].f[i] += h * src[v.id()].f[i];
    minus[l1.weight.id()].f[i] -= h * src[v.id()].f[i];
  }
  auto gpP = interp::evaluate(g.ir(), {gp.id()}, plus)[0].f, gpM = interp::evaluate(g.ir(), {gp.id()}, minus)[0].f;
  std::vector<float> numeric(12);
  for (size_t i = 0; i < 12; ++i) numeric[i] = (gpP[i] - gpM[i]) / (2 * h);
  test::checkClose(analytic, numeric, 1e-3f, 2e-2f, "Hv");
}

// WGAN-GP style penalty ||d D(x) / dx||^2 of a tiny discriminator, trained
// through: its gradient wrt D's weights is a second-order quantity.
TEST_CASE("higher order: gradient penalty of a tiny discriminator matches finite differences") {
  Graph g;
  Tensor x = g.param("x", {4, 3}, Init::uniform(-1, 1));
  Linear d1(g, "d1", 3, 5), d2(g, "d2", 5, 1);
  Tensor score = sum(d2(softplus(d1(x))));
  Tensor gx = grad(score, {x})[0];
  Tensor penalty = sum(gx * gx);
  auto gw = grad(penalty, {d1.weight, d2.weight});
  auto src = boundSources(g, 8);
  auto analytic = interp::evaluate(g.ir(), {gw[0].id(), gw[1].id()}, src);
  test::checkClose(analytic[0].f, test::numericGradient(g.ir(), penalty.id(), d1.weight.id(), src), 1e-3f, 2e-2f, "d1");
  test::checkClose(analytic[1].f, test::numericGradient(g.ir(), penalty.id(), d2.weight.id(), src), 1e-3f, 2e-2f, "d2");
}

TEST_CASE("init: truncated normal, identity, orthogonal and Xavier normal") {
  Graph g;
  Tensor t = g.param("t", {4000}, Init::truncatedNormal(1.0, 0.5));
  Tensor id = g.param("id", {3, 4}, Init::identity(2.0));
  Tensor q = g.param("q", {6, 4}, Init::orthogonal());
  Tensor xn = g.param("xn", {200, 300}, Init::xavierNormal());
  auto src = boundSources(g, 3);
  const auto& tv = src[t.id()].f;
  for (float v : tv) CHECK((v >= 0.0f && v <= 2.0f));
  double mean = std::accumulate(tv.begin(), tv.end(), 0.0) / tv.size();
  CHECK(mean == doctest::Approx(1.0).epsilon(0.03));
  CHECK(src[id.id()].f == std::vector<float>{2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0});
  const auto& qv = src[q.id()].f;  // columns orthonormal: Q^T Q = I
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b) {
      double dot = 0;
      for (int r = 0; r < 6; ++r) dot += qv[r * 4 + a] * qv[r * 4 + b];
      CHECK(dot == doctest::Approx(a == b ? 1.0 : 0.0).epsilon(1e-5));
    }
  const auto& xv = src[xn.id()].f;
  double ss = 0;
  for (float v : xv) ss += v * v;
  CHECK(std::sqrt(ss / xv.size()) == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.03));
  CHECK_THROWS_WITH_AS(g.param("bad", {3}, Init::identity()), doctest::Contains("needs a matrix"), Error);
}

// The stable test: a hand-written softmax cross-entropy on logits of
// +-1e4 gives NaN/inf as written and finite loss and gradients in its stable
// form, both from the DSL's build-time rewrite and from the `stable` pass.
TEST_CASE("stable: naive softmax cross-entropy is finite after the rewrite and NaN before") {
  for (bool stable : {false, true}) {
    CAPTURE(stable);
    Graph g;
    g.setStableRewrites(stable);
    Tensor logits = g.param("logits", {2, 3}, Init::zeros());
    Tensor onehot = g.input("onehot", {2, 3});
    Tensor e = exp(logits);
    Tensor p = e / sum(e, {1}, true);
    Tensor loss = -sum(onehot * log(p)) / 2.0;
    Tensor dl = grad(loss, {logits})[0];
    auto src = boundSources(g, 0);
    src[logits.id()].f = {1e4f, -1e4f, 0.0f, -1e4f, 1e4f, 1e4f};
    src[onehot.id()].f = {0, 1, 0, 1, 0, 0};
    auto out = interp::evaluate(g.ir(), {loss.id(), dl.id()}, src);
    bool finite = std::isfinite(out[0].f[0]);
    for (float v : out[1].f) finite = finite && std::isfinite(v);
    CHECK(finite == stable);
    if (stable) {
      CHECK(out[0].f[0] == doctest::Approx(2e4 + 0.5 * std::log(2.0)).epsilon(1e-5));
      CHECK(out[1].f[1] == doctest::Approx(-0.5));  // softmax - onehot, over the batch of 2
    }
    if (stable) continue;
    // the pass rewrites the naive forward graph the same way
    ir::Graph fwd = g.ir();
    CHECK(passes::runStable(fwd));
    ir::ValueId lossAfter = -1;
    for (ir::ValueId v = 0; v < fwd.size(); ++v)
      if (fwd.node(v).op == ir::OpKind::LogSoftmax) lossAfter = v;
    REQUIRE(lossAfter >= 0);
    auto ls = interp::evaluate(fwd, {lossAfter}, {{logits.id(), src[logits.id()]}});
    for (float v : ls[0].f) CHECK(std::isfinite(v));
  }
}
