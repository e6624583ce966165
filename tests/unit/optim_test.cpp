// Optimizers and training-step options: compiled steps against the
// interpreter, updates against their formulas, frozen params pruning the
// backward pass, gradient accumulation against one large batch, clipping,
// schedule values, parameter groups, state names and diagnostics.
// (Parity with torch.optim is in tests/optim/.)
#include <numbers>

#include "TestUtil.h"
#include "driver/Aot.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

// loss = sum(w * c) + sum(v * c): the gradient of w and v is c.
struct LinearLoss {
  Graph g;
  Tensor w, v, c;
  Module m{g};
  LinearLoss(const Optimizer& opt, const std::function<TrainOptions(LinearLoss&)>& options = {}) {
    w = g.param("w", {3}, Init::constant(1.0));
    v = g.param("v", {3}, Init::constant(1.0));
    c = g.input("c", {3});
    m.addTrainStep("step", sum(w * c) + sum(v * c), opt, options ? options(*this) : TrainOptions{});
  }
};

std::vector<float> read(jit::CompiledModule& jm, const char* name) {
  return std::vector<float>(jm.f32(name), jm.f32(name) + jm.type(name).numElements());
}
void write(jit::CompiledModule& jm, const char* name, const std::vector<float>& v) {
  std::copy(v.begin(), v.end(), jm.f32(name));
}

// A 3-layer MLP on a batch of `batch`, with a train step.
struct Mlp {
  Graph g;
  Module m{g};
  Tensor x, y;
  Linear l1{g, "l1", 10, 8}, l2{g, "l2", 8, 6}, l3{g, "l3", 6, 4};
  Mlp(int64_t batch, const Optimizer& opt, const std::function<TrainOptions(Mlp&)>& options = {}) {
    x = g.input("x", {batch, 10});
    y = g.input("y", {batch}, DType::I32);
    Tensor loss = mean(softmaxCrossEntropy(l3(tanh(l2(tanh(l1(x))))), y));
    m.addTrainStep("trainStep", loss, opt, options ? options(*this) : TrainOptions{});
  }
};

// One trainStep of both the compiled module and the interpreter on the same
// random batch: x from stream xStream, labels in [0, 4) from yStream.
void stepBoth(jit::CompiledModule& jm, interp::Session& s, uint64_t xStream, uint64_t yStream) {
  HostTensor& x = s.source("x");
  HostTensor& y = s.source("y");
  test::fillRandom(x, xStream);
  test::fillRandom(y, yStream, 0, 0, 4);
  std::copy(x.f.begin(), x.f.end(), jm.f32("x"));
  std::copy(y.i.begin(), y.i.end(), jm.i32("y"));
  s.run("trainStep");
  jm.run("trainStep");
}

const char* const kMlpParams[] = {"l1.w", "l1.b", "l2.w", "l2.b", "l3.w", "l3.b"};

int64_t countOps(const ir::Graph& g, ir::OpKind op) {
  int64_t n = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) n += g.node(v).op == op;
  return n;
}

size_t kernelsOf(const jit::CompiledModule& jm, std::string_view fn) {
  for (const auto& f : jm.compiled().plan.functions)
    if (f.name == fn) return f.kernels.size();
  FAIL("no function " << fn);
  return 0;
}

}  // namespace

TEST_CASE("optim: compiled steps match the interpreter for every optimizer and option") {
  struct Config {
    const char* what;
    Optimizer opt;
    std::function<TrainOptions(Mlp&)> options;
  };
  std::vector<Config> configs = {
      {"sgd nesterov + clip value", SGD{.lr = 0.1, .momentum = 0.9, .nesterov = true},
       [](Mlp&) { return TrainOptions{.clipValue = 0.05}; }},
      {"sgd dampening + step lr", SGD{.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .weightDecay = 0.01},
       [](Mlp&) { return TrainOptions{.schedule = StepLR{.stepSize = 2, .gamma = 0.5}}; }},
      {"adagrad + groups", Adagrad{.lr = 0.1, .lrDecay = 0.1, .weightDecay = 0.01},
       [](Mlp& n) { return TrainOptions{.groups = {{.params = {n.l1.bias, n.l2.bias}, .lr = 0.3, .weightDecay = 0}}}; }},
      {"rmsprop centered momentum + clip norm", RMSprop{.lr = 0.01, .momentum = 0.9, .centered = true},
       [](Mlp&) { return TrainOptions{.clipNorm = 0.5}; }},
      {"adam amsgrad + warmup", Adam{.lr = 0.01, .weightDecay = 0.01, .amsgrad = true},
       [](Mlp&) { return TrainOptions{.schedule = ExponentialLR{0.9}, .warmup = LinearWarmup{.steps = 3}}; }},
      {"adamw + frozen + accumulate", AdamW{.lr = 0.01},
       [](Mlp& n) { return TrainOptions{.frozen = {n.l2.weight}, .accumulate = 2}; }},
  };
  for (const Config& c : configs) {
    CAPTURE(c.what);
    Mlp n(16, c.opt, c.options);
    auto jm = jit::compile(n.m);
    interp::Session s(n.g.ir());
    jm->init(3);
    s.init(3);
    for (int call = 0; call < 6; ++call) {
      stepBoth(*jm, s, 10 + call, 20 + call);
      CHECK(jm->f32("trainStep.loss")[0] == doctest::Approx(s.output("trainStep", "loss").f[0]).epsilon(1e-6));
    }
    for (const std::string& name : jm->bufferNames()) {
      // params and state (inputs x and y have no '.'; outputs are checked above)
      if (name.find('.') == std::string::npos || name == "trainStep.loss" || name == "trainStep.lr" ||
          name == "trainStep.grad_norm")
        continue;
      CAPTURE(name);
      test::checkClose(read(*jm, name.c_str()), s.source(name).f, 1e-7f, 1e-6f, name);
    }
  }
}

TEST_CASE("optim: frozen params are not updated and the backward pass they alone needed is not built") {
  Mlp all(16, Adam{.lr = 0.01});
  Mlp frozen(16, Adam{.lr = 0.01}, [](Mlp& n) { return TrainOptions{.frozen = {n.l1.weight, n.l1.bias}}; });
  auto jmAll = jit::compile(all.m);
  auto jmFrozen = jit::compile(frozen.m);
  // matmuls: 3 forward + backward dW3, dX3, dW2, dX2, dW1 = 8; with l1
  // frozen dX2 (the gradient into l1's output) and dW1 go too
  CHECK(countOps(jmAll->compiled().graph, ir::OpKind::MatMul) == 8);
  CHECK(countOps(jmFrozen->compiled().graph, ir::OpKind::MatMul) == 6);
  size_t kAll = kernelsOf(*jmAll, "trainStep"), kFrozen = kernelsOf(*jmFrozen, "trainStep");
  MESSAGE("trainStep kernels: " << kAll << " trained, " << kFrozen << " with l1 frozen");
  CHECK(kFrozen < kAll);
  // the frozen params' Adam updates (m, v and the param: 3 fused kernels
  // each, 2 params), the two matmuls into l1 and the tanh backward are gone
  CHECK(kAll - kFrozen >= 9);
  std::vector<std::string> names = jmFrozen->bufferNames();
  CHECK(std::find(names.begin(), names.end(), "trainStep.l1.w.adam_m") == names.end());
  CHECK(std::find(names.begin(), names.end(), "trainStep.l2.w.adam_m") != names.end());

  jmFrozen->init(1);
  std::vector<float> w0 = read(*jmFrozen, "l1.w"), b0 = read(*jmFrozen, "l1.b"), w2 = read(*jmFrozen, "l2.w");
  for (int call = 0; call < 3; ++call) {
    write(*jmFrozen, "x", test::randomVec(16 * 10, 30 + call));
    for (int i = 0; i < 16; ++i) jmFrozen->i32("y")[i] = (i + call) % 4;
    jmFrozen->run("trainStep");
  }
  CHECK(read(*jmFrozen, "l1.w") == w0);
  CHECK(read(*jmFrozen, "l1.b") == b0);
  CHECK(test::maxAbsDiff(read(*jmFrozen, "l2.w"), w2) > 1e-3f);
}

TEST_CASE("optim: k accumulated micro-batches of b equal one batch of k*b") {
  constexpr int64_t k = 3, b = 4;
  for (int which = 0; which < 2; ++which) {
    Optimizer opt = which == 0 ? Optimizer(SGD{.lr = 0.2, .momentum = 0.9}) : Optimizer(Adam{.lr = 0.01});
    CAPTURE(which);
    Mlp micro(b, opt, [](Mlp&) { return TrainOptions{.accumulate = k}; });
    Mlp big(k * b, opt);
    auto jmMicro = jit::compile(micro.m);
    auto jmBig = jit::compile(big.m);
    jmMicro->init(9);
    jmBig->init(9);
    for (const char* p : kMlpParams) REQUIRE(read(*jmMicro, p) == read(*jmBig, p));
    for (int update = 0; update < 3; ++update) {
      std::vector<float> x = test::randomVec(k * b * 10, 40 + update);
      std::vector<int32_t> y(k * b);
      for (int64_t i = 0; i < k * b; ++i) y[i] = static_cast<int32_t>((i * 5 + update) % 4);
      write(*jmBig, "x", x);
      std::copy(y.begin(), y.end(), jmBig->i32("y"));
      jmBig->run("trainStep");
      for (int64_t j = 0; j < k; ++j) {
        std::vector<float> before = read(*jmMicro, "l2.w"), mom;
        std::copy(x.begin() + j * b * 10, x.begin() + (j + 1) * b * 10, jmMicro->f32("x"));
        std::copy(y.begin() + j * b, y.begin() + (j + 1) * b, jmMicro->i32("y"));
        jmMicro->run("trainStep");
        // params and the step counter move only on the k-th call
        if (j < k - 1) CHECK(read(*jmMicro, "l2.w") == before);
        CHECK(jmMicro->f32("trainStep.t")[0] == static_cast<float>(j < k - 1 ? update : update + 1));
        CHECK(jmMicro->f32("trainStep.micro")[0] == static_cast<float>((j + 1) % k));
      }
      // the accumulators are reset after the update
      for (float a : read(*jmMicro, "trainStep.l1.w.grad_acc")) CHECK(a == 0.0f);
    }
    for (const char* p : kMlpParams) {
      CAPTURE(p);
      test::checkClose(read(*jmMicro, p), read(*jmBig, p), 1e-6f, 1e-5f, p);
    }
  }
}

TEST_CASE("optim: clipping by value clamps each gradient element") {
  LinearLoss t(SGD{.lr = 1.0}, [](LinearLoss&) { return TrainOptions{.clipValue = 0.5}; });
  auto jm = jit::compile(t.m);
  jm->init(1);
  write(*jm, "c", {2.0f, -0.25f, -3.0f});
  jm->run("step");
  CHECK(read(*jm, "w") == std::vector<float>{0.5f, 1.25f, 1.5f});  // 1 - clamp(c, -0.5, 0.5)
}

TEST_CASE("optim: clipping by norm scales all gradients by max/(norm+1e-6) only when the norm is larger") {
  for (double maxNorm : {1.0, 100.0}) {
    CAPTURE(maxNorm);
    LinearLoss t(SGD{.lr = 1.0}, [maxNorm](LinearLoss&) { return TrainOptions{.clipNorm = maxNorm}; });
    auto jm = jit::compile(t.m);
    jm->init(1);
    std::vector<float> c = {3.0f, 0.0f, -4.0f};  // w and v both get c: total norm sqrt(50)
    write(*jm, "c", c);
    jm->run("step");
    double norm = std::sqrt(50.0);
    CHECK(jm->f32("step.grad_norm")[0] == doctest::Approx(norm).epsilon(1e-6));
    double scale = std::min(1.0, maxNorm / (norm + 1e-6));
    for (int i = 0; i < 3; ++i) {
      CHECK(jm->f32("w")[i] == doctest::Approx(1.0 - scale * c[i]).epsilon(1e-6));
      CHECK(jm->f32("v")[i] == doctest::Approx(1.0 - scale * c[i]).epsilon(1e-6));
    }
    if (maxNorm == 100.0) CHECK(read(*jm, "w") == std::vector<float>{-2.0f, 1.0f, 5.0f});  // unscaled, exact
  }
}

TEST_CASE("optim: schedule values step by step") {
  struct Sched {
    const char* what;
    TrainOptions options;
    std::function<double(int)> factor;  // of update number i, 0-based
  };
  std::vector<Sched> scheds = {
      {"step", {.schedule = StepLR{.stepSize = 3, .gamma = 0.5}}, [](int i) { return std::pow(0.5, i / 3); }},
      {"exponential", {.schedule = ExponentialLR{.gamma = 0.8}}, [](int i) { return std::pow(0.8, i); }},
      {"warmup", {.warmup = LinearWarmup{.steps = 4, .startFactor = 0.2}},
       [](int i) { return 0.2 + 0.8 * std::min(i, 4) / 4.0; }},
      {"warmup x step", {.schedule = StepLR{.stepSize = 2, .gamma = 0.1}, .warmup = LinearWarmup{.steps = 3}},
       [](int i) { return (1.0 / 3 + (2.0 / 3) * std::min(i, 3) / 3.0) * std::pow(0.1, i / 2); }},
      // etaMin = 0.02 = 0.1 * 0.2 in factor terms; periodic past tMax
      {"cosine", {.schedule = CosineAnnealingLR{.tMax = 4, .etaMin = 0.02}},
       [](int i) { return 0.2 + 0.8 * (1 + std::cos(std::numbers::pi * i / 4)) / 2; }},
      {"warmup x cosine", {.schedule = CosineAnnealingLR{.tMax = 6}, .warmup = LinearWarmup{.steps = 2, .startFactor = 0.5}},
       [](int i) { return (0.5 + 0.5 * std::min(i, 2) / 2.0) * (1 + std::cos(std::numbers::pi * i / 6)) / 2; }},
  };
  for (const Sched& s : scheds) {
    CAPTURE(s.what);
    LinearLoss t(SGD{.lr = 0.1}, [&](LinearLoss&) { return s.options; });
    auto jm = jit::compile(t.m);
    jm->init(1);
    write(*jm, "c", {1.0f, 0.0f, 0.0f});
    double w = 1.0;
    for (int i = 0; i < 10; ++i) {
      CAPTURE(i);
      jm->run("step");
      double lr = 0.1 * s.factor(i);
      CHECK(jm->f32("step.lr")[0] == doctest::Approx(lr).epsilon(1e-6).scale(0.1));
      w -= lr;
      CHECK(jm->f32("w")[0] == doctest::Approx(w).epsilon(1e-6));
    }
  }
}

TEST_CASE("optim: parameter groups have their own lr and weight decay") {
  LinearLoss t(SGD{.lr = 0.1, .weightDecay = 0.5},
               [](LinearLoss& l) { return TrainOptions{.groups = {{.params = {l.v}, .lr = 0.3, .weightDecay = 0.0}}}; });
  auto jm = jit::compile(t.m);
  jm->init(1);
  write(*jm, "c", {1.0f, -2.0f, 0.0f});
  jm->run("step");
  for (int i = 0; i < 3; ++i) {
    float c = jm->f32("c")[i];
    CHECK(jm->f32("w")[i] == doctest::Approx(1.0 - 0.1 * (c + 0.5 * 1.0)).epsilon(1e-6));  // coupled decay
    CHECK(jm->f32("v")[i] == doctest::Approx(1.0 - 0.3 * c).epsilon(1e-6));                // no decay, lr 0.3
  }
}

TEST_CASE("optim: first updates against their formulas") {
  std::vector<float> c = {0.5f, -2.0f, 0.0f};
  auto firstW = [&](const Optimizer& opt, int updates) {
    LinearLoss t(opt);
    auto jm = jit::compile(t.m);
    jm->init(1);
    write(*jm, "c", c);
    for (int i = 0; i < updates; ++i) jm->run("step");
    return read(*jm, "w");
  };
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    double g = c[i];
    // SGD dampening: buf = g at step 1, then mu*buf + (1-d)*g = 0.9g + 0.7g
    CHECK(firstW(SGD{.lr = 0.1, .momentum = 0.9, .dampening = 0.3}, 2)[i] ==
          doctest::Approx(1.0 - 0.1 * g - 0.1 * 1.6 * g).epsilon(1e-6));
    // nesterov: buf = g; step g + 0.9*buf
    CHECK(firstW(SGD{.lr = 0.1, .momentum = 0.9, .nesterov = true}, 1)[i] ==
          doctest::Approx(1.0 - 0.1 * 1.9 * g).epsilon(1e-6));
    // Adagrad: sum = 0.1 + g^2; p -= lr*g/(sqrt(sum)+eps)
    CHECK(firstW(Adagrad{.lr = 0.1, .initialAccumulatorValue = 0.1}, 1)[i] ==
          doctest::Approx(1.0 - 0.1 * g / (std::sqrt(0.1 + g * g) + 1e-10)).epsilon(1e-6));
    // RMSprop: sq = 0.01 g^2; p -= lr*g/(sqrt(sq)+eps)
    CHECK(firstW(RMSprop{.lr = 0.01}, 1)[i] == doctest::Approx(1.0 - 0.01 * g / (std::sqrt(0.01 * g * g) + 1e-8)).epsilon(1e-6));
    // AdamW: p*(1 - lr*wd) - lr*g/(|g|+eps) at step 1
    CHECK(firstW(AdamW{.lr = 0.1, .weightDecay = 0.5}, 1)[i] ==
          doctest::Approx(1.0 * (1 - 0.05) - 0.1 * g / (std::fabs(g) + 1e-8)).epsilon(1e-6));
  }
}

// A state that decays once its gradient stops (momentum, Adam's m and v,
// RMSprop's averages) goes to exactly 0 instead of into subnormals, where
// 0.9 x the smallest one rounds back to it and every step would take the
// CPU's slow path (MNIST's MLP trained 2.5x slower from epoch 7 on). The old
// state is flushed where it is read, so an element may hold a subnormal for
// one step. One step with gradient c, then 1,500 with none: each element is
// subnormal on at most one step, and the decaying states end at 0.
TEST_CASE("optim: decaying optimizer state is flushed to 0 below the smallest normal float") {
  struct Case {
    Optimizer opt;
    std::vector<const char*> states;
  };
  const Case cases[] = {
      {SGD{.lr = 0.01, .momentum = 0.9}, {"step.w.momentum"}},
      {Adam{.lr = 0.01, .beta2 = 0.9}, {"step.w.adam_m", "step.w.adam_v"}},
      {RMSprop{.lr = 0.01, .alpha = 0.9, .momentum = 0.9, .centered = true},
       {"step.w.rms_sq", "step.w.rms_grad_avg", "step.w.momentum"}},
  };
  for (const Case& c : cases) {
    LinearLoss t(c.opt);
    auto jm = jit::compile(t.m);
    jm->init(1);
    write(*jm, "c", {0.5f, -2.0f, 1e-3f});
    jm->run("step");
    write(*jm, "c", {0.0f, 0.0f, 0.0f});
    int subnormal = 0;
    for (int i = 0; i < 1500; ++i) {
      jm->run("step");
      for (const char* s : c.states)
        for (float x : read(*jm, s)) subnormal += std::fpclassify(x) == FP_SUBNORMAL;
    }
    const int elements = 3 * static_cast<int>(c.states.size());
    for (const char* s : c.states) {
      CAPTURE(std::string(s));
      CHECK(read(*jm, s) == std::vector<float>{0.0f, 0.0f, 0.0f});
    }
    CHECK(subnormal <= elements);  // without the flush: every step from ~800 on
  }
}

TEST_CASE("optim: Adam's bias corrections match 1-beta^t in double") {
  LinearLoss t(Adam{});
  auto jm = jit::compile(t.m);
  jm->init(1);
  write(*jm, "c", {1.0f, 1.0f, 1.0f});
  for (int i = 1; i <= 200; ++i) {
    jm->run("step");
    if (i % 20 != 1) continue;
    CAPTURE(i);
    // relative (scale 0): a few ulps; 1 - exp(t*log(0.999)) in f32 is off by
    // up to 2e-5 here
    CHECK(jm->f32("step.adam_bc1")[0] == doctest::Approx(1.0 - std::pow(0.9, i)).epsilon(5e-7).scale(0));
    CHECK(jm->f32("step.adam_bc2")[0] == doctest::Approx(1.0 - std::pow(0.999, i)).epsilon(5e-7).scale(0));
  }
}

TEST_CASE("optim: optimizer state names are readable and deterministic") {
  auto names = [](const Optimizer& opt, TrainOptions o = {}) {
    LinearLoss t(opt, [&](LinearLoss&) { return o; });
    std::vector<std::string> out;
    for (const ir::Node& n : t.g.ir().nodes())
      if (n.op == ir::OpKind::State) out.push_back(n.name);
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(names(SGD{}) == V{"step.t"});
  CHECK(names(SGD{.momentum = 0.9}) == V{"step.t", "step.w.momentum", "step.v.momentum"});
  CHECK(names(Adagrad{}) == V{"step.t", "step.w.adagrad_sum", "step.v.adagrad_sum"});
  CHECK(names(RMSprop{.momentum = 0.5, .centered = true}) ==
        V{"step.t", "step.w.rms_sq", "step.w.rms_grad_avg", "step.w.momentum", "step.v.rms_sq", "step.v.rms_grad_avg",
          "step.v.momentum"});
  CHECK(names(AdamW{.amsgrad = true}) == V{"step.t", "step.adam_bc1", "step.adam_bc2", "step.w.adam_m",
                                            "step.w.adam_v", "step.w.adam_vmax", "step.v.adam_m", "step.v.adam_v",
                                            "step.v.adam_vmax"});
  CHECK(names(SGD{}, {.schedule = StepLR{}, .accumulate = 2}) ==
        V{"step.t", "step.micro", "step.w.grad_acc", "step.v.grad_acc", "step.lr_phase", "step.lr_factor"});
}

TEST_CASE("optim: bad settings are reported at the user's line") {
  Graph g;
  Tensor w = g.param("w", {3}, Init::zeros());
  Tensor b = g.param("b", {3}, Init::zeros());
  Tensor x = g.input("x", {3});
  Tensor loss = sum(w * x + b);
  Module m(g);
  auto at = [](int line, const char* msg) { return doctest::Contains(fmt::format("optim_test.cpp:{}: addTrainStep @s: {}", line, msg).c_str()); };
  int line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{.lr = -0.1}), at(line, "SGD lr must be >= 0, got -0.1"), Error);
  line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{.nesterov = true}), at(line, "SGD nesterov needs momentum > 0"), Error);
  line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, Adam{.beta2 = 1.0}), at(line, "Adam beta2 must be in [0, 1), got 1"),
                       Error);

  int groupLine = __LINE__ + 1;
  ParamGroup g1{.params = {w}, .lr = 0.1}, g2{.params = {b, w}, .weightDecay = 0.0};
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, {.groups = {g1, g2}}),
                       at(groupLine, "param 'w' is in group 0 and group 1"), Error);
  groupLine = __LINE__ + 1;
  ParamGroup twice{.params = {b, b}};
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, {.groups = {twice}}),
                       at(groupLine, "param 'b' is listed twice in group 0"), Error);
  groupLine = __LINE__ + 1;
  ParamGroup neg{.params = {b}, .lr = -1.0};
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, {.groups = {neg}}), at(groupLine, "group lr must be >= 0, got -1"),
                       Error);
  groupLine = __LINE__ + 1;
  ParamGroup both{.params = {b}};
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, {.groups = {both}, .frozen = {b}}),
                       at(groupLine, "param 'b' is frozen and also in group 0"), Error);
  groupLine = __LINE__ + 1;
  ParamGroup notParam{.params = {x}};
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, {.groups = {notParam}}),
                       at(groupLine, "a tensor of group 0 is %2 (input \"x\" at optim_test.cpp:"), Error);

  line = __LINE__ + 1;
  TrainOptions badAcc{.accumulate = 0};
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, badAcc), at(line, "accumulate must be >= 1, got 0"), Error);
  line = __LINE__ + 1;
  TrainOptions badClip{.clipNorm = 0.0};
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, badClip), at(line, "clipNorm must be > 0, got 0"), Error);
  line = __LINE__ + 1;
  TrainOptions cosine{.schedule = CosineAnnealingLR{.tMax = 0}};
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, cosine), at(line, "CosineAnnealingLR tMax must be >= 1, got 0"),
                       Error);
  line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(m.addTrainStep("s", loss, SGD{}, {.frozen = {w, b}}),
                       at(line, "every param the loss depends on is frozen"), Error);
  CHECK(g.ir().functions().empty());
}

TEST_CASE("optim: batch-norm running statistics update on every accumulated call, params on every k-th") {
  Graph g;
  Module m(g);
  Tensor x = g.input("x", {8, 5});
  Tensor y = g.input("y", {8}, DType::I32);
  Linear l1(g, "l1", 5, 6), l2(g, "l2", 6, 3);
  BatchNorm bn(g, "bn", 6);
  Tensor loss = mean(softmaxCrossEntropy(l2(relu(bn(l1(x), true))), y));
  m.addTrainStep("trainStep", loss, SGD{.lr = 0.1}, {.accumulate = 2});
  auto jm = jit::compile(m);
  jm->init(2);
  const std::string rmName = g.ir().node(bn.runningMean.id()).name;
  for (int call = 0; call < 4; ++call) {
    CAPTURE(call);
    std::vector<float> w = read(*jm, "l1.w"), rm = read(*jm, rmName.c_str());
    write(*jm, "x", test::randomVec(8 * 5, 60 + call));
    for (int i = 0; i < 8; ++i) jm->i32("y")[i] = (i + call) % 3;
    jm->run("trainStep");
    CHECK(test::maxAbsDiff(read(*jm, rmName.c_str()), rm) > 1e-4f);  // every call
    if (call % 2 == 0) CHECK(read(*jm, "l1.w") == w);               // not yet
    else CHECK(test::maxAbsDiff(read(*jm, "l1.w"), w) > 1e-5f);     // the k-th call
  }
}

TEST_CASE("optim: a step with every option gets AOT accessors for its outputs and state") {
  Mlp n(8, AdamW{.amsgrad = true}, [](Mlp& m) {
    return TrainOptions{.clipValue = 1.0, .clipNorm = 1.0, .schedule = CosineAnnealingLR{.tMax = 10},
                        .warmup = LinearWarmup{}, .groups = {{.params = {m.l3.bias}, .lr = 0.1}},
                        .frozen = {m.l1.weight}, .accumulate = 2};
  });
  driver::Compiled c = driver::compile(n.g.ir(), "opt", {});
  std::string header = aot::headerText(c, "opt");
  for (const char* name : {"trainStep_loss()", "trainStep_grad_norm()", "trainStep_lr()", "trainStep_t()",
                           "trainStep_micro()", "trainStep_adam_bc2()", "trainStep_l2_w_adam_vmax()",
                           "trainStep_l3_b_grad_acc()"}) {
    CAPTURE(name);
    CHECK(header.find(name) != std::string::npos);
  }
  CHECK(header.find("trainStep_l1_w_adam_m()") == std::string::npos);  // frozen: no state
}

// Optimizer steps over big params: every update is written in place (no
// end-of-call copies), each param's Adam updates run as one fused loop, and
// loops of 32,768+ elements run on the runtime's threads. None of it may
// change a bit: params and state after four steps equal the interpreter's
// exactly. Checked mode keeps the copies.
TEST_CASE("optim: in-place updates and fused, threaded update loops are bit-exact with the interpreter") {
  Graph g;
  Module m(g);
  Tensor x = g.input("x", {8, 256});
  Tensor y = g.input("y", {8}, DType::I32);
  Linear l1{g, "l1", 256, 160}, l2{g, "l2", 160, 4};  // l1.w: 40,960 elements
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(l2(tanh(l1(x))), y)), Adam{.lr = 0.01, .weightDecay = 0.01});
  auto jm = jit::compile(m);
  const lower::FunctionPlan* fp = nullptr;
  for (const auto& f : jm->compiled().plan.functions)
    if (f.name == "trainStep") fp = &f;
  REQUIRE(fp);
  CHECK(fp->copies.empty());
  int inPlace = 0, biggestLoop = 0, registers = 0;
  for (const lower::Kernel& k : fp->kernels) {
    inPlace += k.inPlaceInput >= 0;
    biggestLoop = std::max(biggestLoop, k.loopMembers);
    registers += !k.store;
  }
  CHECK(inPlace >= 4);       // at least m, v and the param of both weights read their old values in place
  CHECK(biggestLoop >= 4);   // g + wd*p, m, v, p
  CHECK(registers >= 2);     // g + wd*p is never stored
  const std::string listing = lower::printPlan(jm->compiled().graph, jm->compiled().plan);
  CHECK(listing.find("run as one loop") != std::string::npos);

  interp::Session s(g.ir());
  jm->init(5);
  s.init(5);
  for (int call = 0; call < 4; ++call) stepBoth(*jm, s, 40 + call, 50 + call);
  for (const std::string& name : jm->bufferNames()) {
    if (name == "x" || name == "y" || name == "trainStep.loss") continue;
    CAPTURE(name);
    std::vector<float> got = read(*jm, name.c_str());
    const std::vector<float>& want = s.source(name).f;
    REQUIRE(got.size() == want.size());
    size_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], sizeof(float)) != 0;
    CHECK(differ == 0);
  }

  CompileOptions checkedOpts;
  checkedOpts.checked = true;
  auto checked = jit::compile(m, checkedOpts);
  for (const auto& f : checked->compiled().plan.functions)
    if (f.name == "trainStep") {
      CHECK(f.copies.size() >= 6);  // every param and moment update is a copy again
      for (const lower::Kernel& k : f.kernels) CHECK(k.inPlaceInput < 0);
    }
}
