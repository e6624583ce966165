// Training steps: optimizer updates against their formulas, compiled steps
// against the interpreter over several steps, and determinism by seed.
#include "TestUtil.h"
#include "driver/Aot.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

// loss = sum(w * c): its gradient is c, whatever w is.
struct LinearLoss {
  Graph g;
  Tensor w, c;
  Module m{g};
  explicit LinearLoss(const Optimizer& opt) {
    w = g.param("w", {3}, Init::constant(1.0));
    c = g.input("c", {3});
    m.addTrainStep("step", sum(w * c), opt);
  }
};

void buildMlp(Graph& g, Module& m, const Optimizer& opt) {
  Tensor x = g.input("x", {16, 20});
  Tensor y = g.input("y", {16}, DType::I32);
  Linear l1(g, "l1", 20, 12), l2(g, "l2", 12, 5);
  Tensor logits = l2(relu(l1(x)));
  m.addFunction("predict", {x}, {{"logits", logits}});
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(logits, y)), opt);
}

}  // namespace

TEST_CASE("train: SGD with momentum follows buf = mu*buf + g; p -= lr*buf") {
  LinearLoss t(SGD{.lr = 0.5, .momentum = 0.9});
  auto jit = jit::compile(t.m);
  jit->init(1);
  std::vector<float> c = {1.0f, -2.0f, 0.25f};
  std::copy(c.begin(), c.end(), jit->f32("c"));
  jit->run("step");
  jit->run("step");
  for (int i = 0; i < 3; ++i) {
    // step 1: buf = c, w = 1 - 0.5c; step 2: buf = 1.9c, w -= 0.95c
    CHECK(jit->f32("w")[i] == doctest::Approx(1.0f - 0.5f * c[i] - 0.95f * c[i]).epsilon(1e-6));
    CHECK(jit->f32("step.w.momentum")[i] == doctest::Approx(1.9f * c[i]).epsilon(1e-6));
  }
}

TEST_CASE("train: Adam's first steps move each weight by about lr against its gradient sign") {
  LinearLoss t(Adam{.lr = 0.01});
  auto jit = jit::compile(t.m);
  jit->init(1);
  std::vector<float> c = {3.0f, -0.5f, 0.001f};
  std::copy(c.begin(), c.end(), jit->f32("c"));
  jit->run("step");
  // m_hat = g, v_hat = g^2 after bias correction: update = lr * g / (|g| + eps)
  for (int i = 0; i < 3; ++i) {
    float expected = 1.0f - 0.01f * c[i] / (std::fabs(c[i]) + 1e-8f);
    CHECK(jit->f32("w")[i] == doctest::Approx(expected).epsilon(1e-5));
  }
  CHECK(jit->f32("step.t")[0] == 1.0f);
  jit->run("step");
  CHECK(jit->f32("step.t")[0] == 2.0f);
  for (int i = 0; i < 3; ++i) CHECK(jit->f32("w")[i] == doctest::Approx(1.0f - 0.02f * (c[i] > 0 ? 1 : -1)).epsilon(1e-4));
}

TEST_CASE("train: compiled train steps match the interpreter step for step") {
  for (int which = 0; which < 2; ++which) {
    Optimizer opt = which == 0 ? Optimizer(SGD{.lr = 0.1, .momentum = 0.9}) : Optimizer(Adam{.lr = 0.01});
    CAPTURE(which);
    Graph g;
    Module m(g);
    buildMlp(g, m, opt);
    auto jit = jit::compile(m);
    interp::Session s(g.ir());
    jit->init(3);
    s.init(3);
    for (int stepNo = 0; stepNo < 5; ++stepNo) {
      test::fillBoth(s, *jit, "x", 10 + stepNo);
      test::fillBoth(s, *jit, "y", 20 + stepNo, 0, 0, 5);
      s.run("trainStep");
      jit->run("trainStep");
      CHECK(jit->f32("trainStep.loss")[0] == doctest::Approx(s.output("trainStep", "loss").f[0]).epsilon(1e-6));
    }
    // The kernels sum in the interpreter's order, so the params agree to
    // the last bit today. (Blocked GEMMs may reorder sums: then relax this
    // to a tolerance and say so.)
    for (const char* p : {"l1.w", "l1.b", "l2.w", "l2.b"}) {
      CAPTURE(p);
      const HostTensor& want = s.source(p);
      std::vector<float> got(jit->f32(p), jit->f32(p) + want.size());
      CHECK(test::maxAbsDiff(got, want.f) == 0.0f);
    }
  }
}

TEST_CASE("train: the same seed gives bit-identical training, another seed does not") {
  auto trainOnce = [](uint64_t seed) {
    Graph g;
    Module m(g);
    buildMlp(g, m, Adam{.lr = 0.01});
    auto jit = jit::compile(m);
    jit->init(seed);
    for (int stepNo = 0; stepNo < 4; ++stepNo) {
      std::vector<float> x = test::randomVec(16 * 20, 50 + stepNo);
      std::copy(x.begin(), x.end(), jit->f32("x"));
      for (int i = 0; i < 16; ++i) jit->i32("y")[i] = (i * 7 + stepNo) % 5;
      jit->run("trainStep");
    }
    return std::vector<float>(jit->f32("l2.w"), jit->f32("l2.w") + 12 * 5);
  };
  std::vector<float> a = trainOnce(42), b = trainOnce(42), c = trainOnce(43);
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("train: a trained MLP learns a separable problem") {
  Graph g;
  Module m(g);
  buildMlp(g, m, Adam{.lr = 0.02});
  auto jit = jit::compile(m);
  jit->init(5);
  // class = index of the largest of the first five features
  float first = 0, last = 0;
  for (int stepNo = 0; stepNo < 300; ++stepNo) {
    std::vector<float> x = test::randomVec(16 * 20, 1000 + stepNo);
    std::copy(x.begin(), x.end(), jit->f32("x"));
    for (int i = 0; i < 16; ++i) {
      int best = 0;
      for (int k = 1; k < 5; ++k)
        if (x[i * 20 + k] > x[i * 20 + best]) best = k;
      jit->i32("y")[i] = best;
    }
    jit->run("trainStep");
    float loss = jit->f32("trainStep.loss")[0];
    if (stepNo == 0) first = loss;
    last = loss;
  }
  CHECK(first > 1.4f);  // about log(5) at the start
  CHECK(last < 0.5f * first);
}

TEST_CASE("train: addTrainStep errors") {
  Graph g;
  Tensor x = g.input("x", {3});
  Module m(g);
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", sum(x * x), SGD{}), doctest::Contains("the loss depends on no param"), Error);
  Tensor w = g.param("w", {3}, Init::zeros());
  m.addTrainStep("s", sum(w * x), SGD{});
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", sum(w * x), SGD{}), doctest::Contains("function @s already exists"), Error);
}

TEST_CASE("train: updates read old values and source outputs are taken before updates") {
  // @f returns w as it was, then swaps w and v and adds x to w's new value
  const char* text =
      "%0 = input \"x\" : f32[2]\n"
      "%1 = param \"w\" : f32[2]\n"
      "%2 = param \"v\" : f32[2]\n"
      "%3 = add %0, %2 : f32[2]\n"
      "func @f(%0) -> (old = %1) updates (%1 = %3, %2 = %1)\n"
      "func @swap() -> () updates (%1 = %2, %2 = %1)\n";
  ir::Graph g = ir::parseGraph(text, "swap.kir");
  auto jit = jit::compile(g);
  interp::Session s(g);
  auto set = [&](const char* name, std::vector<float> v) {
    s.source(name).f = v;
    std::copy(v.begin(), v.end(), jit->f32(name));
  };
  set("x", {10, 20});
  set("w", {1, 2});
  set("v", {5, 6});
  for (const char* fn : {"f", "swap", "f"}) {
    CAPTURE(fn);
    s.run(fn);
    jit->run(fn);
    for (const char* p : {"w", "v"}) {
      CAPTURE(p);
      CHECK(std::vector<float>(jit->f32(p), jit->f32(p) + 2) == s.source(p).f);
    }
    CHECK(std::vector<float>(jit->f32("f.old"), jit->f32("f.old") + 2) == s.output("f", "old").f);
  }
  // f: old = {1,2}, w = {15,26}, v = {1,2}; swap: w = {1,2}, v = {15,26};
  // f: old = {1,2}, w = {25,46}, v = {1,2}
  CHECK(std::vector<float>(jit->f32("w"), jit->f32("w") + 2) == std::vector<float>{25, 46});
  CHECK(std::vector<float>(jit->f32("f.old"), jit->f32("f.old") + 2) == std::vector<float>{1, 2});
}

TEST_CASE("train: optimizer nodes carry the line of addTrainStep") {
  Graph g;
  Tensor w = g.param("w", {3}, Init::zeros());
  Tensor x = g.input("x", {3});
  Module m(g);
  int line = __LINE__ + 1;
  m.addTrainStep("step", sum(w * x), Adam{});
  const ir::Function* f = g.ir().findFunction("step");
  REQUIRE(f != nullptr);
  for (const ir::Update& u : f->updates) CHECK(g.ir().node(u.value).loc.str() == fmt::format("train_test.cpp:{}", line));
}

TEST_CASE("aot: entry points whose names clash with accessors are refused") {
  Graph g;
  Tensor x = g.input("x", {2});
  Module m(g);
  m.addFunction("x", {x}, {{"y", exp(x)}});
  driver::Compiled c = driver::compile(g.ir(), "clash", {});
  CHECK_THROWS_WITH_AS(aot::headerText(c, "clash"),
                       doctest::Contains("buffer \"x\" maps to the C++ name x, which another member already has"), Error);
}
