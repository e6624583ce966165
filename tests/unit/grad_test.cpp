// Autodiff beyond single ops: fan-out sums, an encoder state read by every
// decoder step, diagnostics for missing rules and bad losses.
#include "TestUtil.h"
#include "autodiff/Grad.h"
#include "ir/InitSpec.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

// Checks d(loss)/d(params) from autodiff against central differences, all
// through the interpreter; params and inputs get deterministic random values.
void checkGradients(Graph& g, Tensor loss, const std::vector<Tensor>& params, float h = 1e-2f) {
  std::vector<Tensor> grads = grad(loss, params);
  std::map<ir::ValueId, HostTensor> src;
  uint64_t stream = 1;
  for (ir::ValueId v = 0; v < g.ir().size(); ++v)
    if (ir::isSource(g.ir().node(v).op)) {
      src[v] = HostTensor::zeros(g.ir().type(v));
      test::fillRandom(src[v], stream++, -1.0f, 1.0f, 3);
    }
  std::vector<ir::ValueId> roots;
  for (const Tensor& t : grads) roots.push_back(t.id());
  auto analytic = interp::evaluate(g.ir(), roots, src);
  for (size_t p = 0; p < params.size(); ++p) {
    std::vector<float> numeric = test::numericGradient(g.ir(), loss.id(), params[p].id(), src, h);
    test::checkClose(analytic[p].f, numeric, 2e-3f, 1e-2f, fmt::format("param {}", p));
  }
}

}  // namespace

TEST_CASE("grad: a value read by three consumers gets the summed gradient") {
  Graph g;
  Tensor x = g.param("x", {5}, Init::zeros());
  Tensor w = g.input("w", {5});
  Tensor loss = sum(x * x) + sum(exp(x) * w) + sum(tanh(x));
  checkGradients(g, loss, {x});
  // the three contributions are summed with adds in the gradient graph
  std::vector<Tensor> dx = grad(loss, {x});
  CHECK(g.ir().node(dx[0].id()).op == ir::OpKind::Add);
}

TEST_CASE("grad: a weight shared by two layers") {
  Graph g;
  Tensor x = g.input("x", {4, 3});
  Tensor W = g.param("W", {3, 3}, Init::zeros());
  Tensor loss = sum(tanh(matmul(tanh(matmul(x, W)), W)));
  checkGradients(g, loss, {W});
}

TEST_CASE("grad: an encoder state read by every decoder step") {
  // h = tanh(x We); d_t = tanh(h Wd + d_{t-1} U) for 4 steps; every step reads h.
  Graph g;
  Tensor x = g.input("x", {2, 3});
  Tensor We = g.param("We", {3, 4}, Init::zeros());
  Tensor Wd = g.param("Wd", {4, 4}, Init::zeros());
  Tensor U = g.param("U", {4, 4}, Init::zeros());
  Tensor h = tanh(matmul(x, We));
  Tensor d = h;
  Tensor loss = g.constant(0.0);
  for (int t = 0; t < 4; ++t) {
    d = tanh(matmul(h, Wd) + matmul(d, U));
    Tensor target = g.input(fmt::format("target{}", t), {2, 4});
    loss = loss + mean((d - target) * (d - target));
  }
  checkGradients(g, loss, {We, Wd, U});
}

TEST_CASE("grad: an MLP with softmax cross-entropy") {
  Graph g;
  Tensor x = g.input("x", {4, 6});
  Tensor y = g.input("y", {4}, DType::I32);
  Linear l1(g, "l1", 6, 5), l2(g, "l2", 5, 3);
  Tensor loss = mean(softmaxCrossEntropy(l2(relu(l1(x))), y));
  checkGradients(g, loss, {l1.weight, l1.bias, l2.weight, l2.bias});
}

TEST_CASE("grad: a param the loss does not depend on gets a zero gradient") {
  Graph g;
  Tensor a = g.param("a", {3}, Init::constant(1.0));
  Tensor b = g.param("b", {2}, Init::constant(1.0));
  Tensor loss = sum(a * a);
  std::vector<Tensor> gr = grad(loss, {a, b});
  REQUIRE(gr[1].shape() == Shape{2});
  interp::Session s(g.ir());
  std::map<ir::ValueId, HostTensor> src;
  src[a.id()] = HostTensor::zeros(a.type());
  src[a.id()].f = {1, 2, 3};
  src[b.id()] = HostTensor::zeros(b.type());
  auto out = interp::evaluate(g.ir(), {gr[0].id(), gr[1].id()}, src);
  CHECK(out[0].f == std::vector<float>{2, 4, 6});
  CHECK(out[1].f == std::vector<float>{0, 0});
}

// maxpool2d's gradient op has no rule of its own (no second order through
// max pooling), so differentiating a first-order gradient hits it twice.
TEST_CASE("grad: ops without a rule are all listed at once") {
  Graph g;
  Tensor x = g.param("x", {1, 1, 4, 4}, Init::zeros());
  int line1 = __LINE__ + 1;
  Tensor a = maxPool2d(x, {2, 2});
  int line2 = __LINE__ + 1;
  Tensor b = maxPool2d(x * 2.0, {2, 2});
  Tensor dx = grad(sum(a * a) + sum(b * b), {x})[0];
  try {
    grad(sum(dx * dx), {x});
    FAIL("grad accepted ops without a gradient rule");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("no gradient rule yet for 2 op(s)") != std::string::npos);
    CHECK(msg.find(fmt::format("(maxpool2d_grad at grad_test.cpp:{})", line1)) != std::string::npos);
    CHECK(msg.find(fmt::format("(maxpool2d_grad at grad_test.cpp:{})", line2)) != std::string::npos);
  }
}

TEST_CASE("grad: the loss must be a scalar") {
  Graph g;
  Tensor x = g.param("x", {3}, Init::zeros());
  CHECK_THROWS_WITH_AS(grad(x * x, {x}), doctest::Contains("the loss must be a scalar f32, got f32[3]"), Error);
}

TEST_CASE("grad: backward nodes carry the source line of their forward op") {
  Graph g;
  Tensor x = g.param("x", {3}, Init::zeros());
  int line = __LINE__ + 1;
  Tensor y = exp(x);
  std::vector<Tensor> gr = grad(sum(y), {x});
  // d exp = dy * exp(x): a mul built by the exp rule, located at the exp
  const ir::Node& n = g.ir().node(gr[0].id());
  CHECK(n.op == ir::OpKind::Mul);
  CHECK(n.loc.str() == fmt::format("grad_test.cpp:{}", line));
}
