// Zero-copy views and concats assembled in place in the memory plan
// (lower/Plan.h, View and FunctionPlan::assembled): a small recurrent model
// full of row slices and reshapes (of temporaries, of an input, of a param
// the optimizer then updates in place) and a concat of its hidden states
// trains bit for bit as the interpreter does, and its plan really has views
// of each kind and an assembled concat.
#include <cstring>

#include "TestUtil.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

constexpr int64_t kT = 4, kB = 16, kH = 16, kClasses = 4;

// h_t = tanh(x W rows of step t + h_{t-1} U + row 1 of P), logits of every
// step from the stacked h; P's row 1 starts 64 bytes in (a view), its row 2
// of the [4,4] Q 16 bytes in (not aligned: a copy).
struct Rnn {
  Graph g;
  Module m{g};
  Tensor x = g.input("x", {kT * kB, kH});
  Tensor y = g.input("y", {kT * kB}, DType::I32);
  Tensor w = g.param("w", {kH, kH}, Init::uniform(-0.3, 0.3));
  Tensor u = g.param("u", {kH, kH}, Init::uniform(-0.3, 0.3));
  Tensor p = g.param("p", {4, kH}, Init::uniform(-0.3, 0.3));
  Tensor q = g.param("q", {4, 4}, Init::uniform(-0.3, 0.3));
  Tensor o = g.param("o", {kH, kClasses}, Init::uniform(-0.3, 0.3));
  Rnn() {
    Tensor xs = matmul(x, w);  // all steps' input projections at once
    Tensor bias = reshape(sliceAxis(p, 0, 1, 1), {kH});
    Tensor scale = reshape(sliceAxis(q, 0, 2, 1), {4});
    Tensor h = tanh(sliceAxis(xs, 0, 0, kB) + bias);
    std::vector<Tensor> hs{h};
    for (int64_t t = 1; t < kT; ++t) {
      h = tanh(sliceAxis(xs, 0, t * kB, kB) + matmul(h, u) + bias);
      hs.push_back(h);
    }
    Tensor stacked = concat(hs, 0);  // each h_t's kernel writes its rows
    Tensor logits = matmul(stacked, o) * scale;
    Tensor flat = reshape(logits, {kT, kB * kClasses});
    Tensor loss = mean(softmaxCrossEntropy(logits, y)) + 0.01 * mean(sliceAxis(flat, 0, 1, 2) * sliceAxis(flat, 0, 1, 2));
    m.addTrainStep("trainStep", loss, Adam{.lr = 0.01});
    // predict computes every h_t too, so it needs the concat as well
    m.addFunction("predict", {x}, {{"h", reshape(h, {kB * kH})}, {"s", sum(stacked, {0})}});
  }
};

}  // namespace

TEST_CASE("views: row slices and reshapes are views and training matches the interpreter bit for bit") {
  Rnn r;
  auto jm = jit::compile(r.m);
  const ir::Graph& g = jm->compiled().graph;
  const lower::ModulePlan& plan = jm->compiled().plan;
  int slices = 0, reshapes = 0, ofParams = 0;
  for (const lower::FunctionPlan& f : plan.functions)
    for (const lower::View& v : f.views) {
      const ir::Node& n = g.node(v.value);
      slices += n.op == ir::OpKind::Slice;
      reshapes += n.op == ir::OpKind::Reshape;
      CHECK(plan.offsetOf[v.value] == plan.offsetOf[v.base] + v.offset);
      CHECK(plan.offsetOf[v.value] % lower::kBufferAlign == 0);
      ir::ValueId root = v.base;
      while (!ir::isSource(g.node(root).op) && g.node(root).operands.size() == 1 &&
             std::any_of(f.views.begin(), f.views.end(), [&](const lower::View& w) { return w.value == root; }))
        root = g.node(root).operands[0];
      ofParams += g.node(root).op == ir::OpKind::Param;
    }
  CHECK(slices >= kT);    // the rows of xs, at least
  CHECK(reshapes >= 2);   // the bias, predict's output is a copy but flat is a view
  CHECK(ofParams >= 1);   // row 1 of p
  for (const lower::FunctionPlan& f : plan.functions) {
    CAPTURE(f.name);
    bool stacked = false;  // the forward concat of the h_t
    for (ir::ValueId c : f.assembled) stacked = stacked || g.node(c).operands.size() == static_cast<size_t>(kT);
    CHECK(stacked);
    for (ir::ValueId c : f.assembled) {
      int64_t at = plan.offsetOf[c];
      for (ir::ValueId x : g.node(c).operands) {
        CHECK(plan.offsetOf[x] == at);
        at += g.type(x).byteSize();
      }
    }
  }
  for (const lower::FunctionPlan& f : plan.functions)
    for (const lower::Kernel& k : f.kernels) CHECK(std::find_if(f.views.begin(), f.views.end(), [&](const lower::View& v) {
                                                     return v.value == k.value;
                                                   }) == f.views.end());

  interp::Session s(g);
  jm->init(7);
  s.init(7);
  for (int step = 0; step < 3; ++step) {
    test::fillBoth(s, *jm, "x", 10 + step);
    test::fillBoth(s, *jm, "y", 20 + step, 0, 0, kClasses);
    s.run("trainStep");
    jm->run("trainStep");
    s.run("predict");
    jm->run("predict");
    CHECK(std::memcmp(jm->f32("trainStep.loss"), s.output("trainStep", "loss").f.data(), sizeof(float)) == 0);
    for (const char* out : {"h", "s"}) {
      const HostTensor& h = s.output("predict", out);
      CHECK(std::memcmp(jm->f32(std::string("predict.") + out), h.f.data(), h.f.size() * sizeof(float)) == 0);
    }
  }
  for (const std::string& name : jm->bufferNames()) {
    if (name == "x" || name == "y" || name.starts_with("trainStep.") || name.starts_with("predict.")) continue;
    CAPTURE(name);
    const std::vector<float>& want = s.source(name).f;
    REQUIRE(static_cast<int64_t>(want.size()) == jm->type(name).numElements());
    CHECK(std::memcmp(jm->f32(name), want.data(), want.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("views: checked mode plans no views or assembled concats and every slice keeps its kernel") {
  Rnn r;
  CompileOptions opts;
  opts.checked = true;
  auto jm = jit::compile(r.m, opts);
  for (const lower::FunctionPlan& f : jm->compiled().plan.functions) {
    CHECK(f.views.empty());
    CHECK(f.assembled.empty());
  }
  auto plain = jit::compile(r.m);
  CHECK(jm->compiled().stats.kernels > plain->compiled().stats.kernels);
}
