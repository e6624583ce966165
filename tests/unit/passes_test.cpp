// Passes and the memory plan against the interpreter. For every graph built
// here (MLP train steps with Adam and SGD, a graph exercising every op,
// graphs shaped to make each rewrite fire, the fan-out and encoder-decoder
// gradient graphs of grad_test), each pass of the default pipeline is applied
// in turn and every function's outputs and updates are evaluated by the
// interpreter on the same random sources before and after it. Then the
// optimized graph is JIT-compiled with its memory plan and every entry point
// is compared with the interpreter on that graph, twice (a stale arena must
// not matter). The MNIST MLP's report numbers are checked last.
#include "TestUtil.h"
#include "driver/Jit.h"
#include "passes/Passes.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

struct NamedGraph {
  std::string name;
  ir::Graph g;
};

// Sources by name, so values follow a source across renumbering passes.
using NamedSources = std::map<std::string, HostTensor>;

NamedSources randomSources(const ir::Graph& g, uint64_t seed) {
  NamedSources out;
  uint64_t stream = seed * 1000;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (!ir::isSource(n.op)) continue;
    HostTensor t = HostTensor::zeros(n.type);
    // positive, so log and sqrt of a source are finite; labels in [0, 3)
    test::fillRandom(t, stream++, 0.25f, 2.0f, 3);
    out[n.name] = t;
  }
  return out;
}

std::map<ir::ValueId, HostTensor> bindSources(const ir::Graph& g, const NamedSources& s) {
  std::map<ir::ValueId, HostTensor> out;
  for (const auto& [name, t] : s) out[g.findSource(name)] = t;
  return out;
}

// Every function's outputs, then its update values, in declaration order.
std::vector<HostTensor> evaluateAll(const ir::Graph& g, const NamedSources& s) {
  std::vector<ir::ValueId> roots;
  for (const ir::Function& f : g.functions()) {
    for (const ir::Output& o : f.outputs) roots.push_back(o.value);
    for (const ir::Update& u : f.updates) roots.push_back(u.value);
  }
  return interp::evaluate(g, roots, bindSources(g, s));
}

bool sameBits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)); }

void checkTensors(const HostTensor& got, const HostTensor& want, bool exact, const std::string& what) {
  REQUIRE(got.type == want.type);
  CHECK(got.i == want.i);
  for (size_t k = 0; k < want.f.size(); ++k) {
    bool ok = exact ? sameBits(got.f[k], want.f[k])
                    : (sameBits(got.f[k], want.f[k]) || std::fabs(got.f[k] - want.f[k]) <= 1e-6f + 1e-5f * std::fabs(want.f[k]));
    if (!ok) {
      FAIL_CHECK(fmt::format("{}: element {} is {} instead of {}", what, k, got.f[k], want.f[k]));
      return;
    }
  }
}

// Applies the default pipeline to g one pass at a time; after each, every
// function's outputs and updates must equal the graph before it on `src`:
// bit for bit, or to a tolerance after simplify's sum(broadcast(x)) -> x * n
// (one rounding instead of n - 1) and batch (a sum's terms in another
// order). Returns whether any pass changed g.
bool checkPassByPass(ir::Graph& g, const NamedSources& src) {
  std::vector<HostTensor> want = evaluateAll(g, src);
  bool anyChange = false;
  for (const std::string& pass : passes::defaultPipeline()) {
    CAPTURE(pass);
    auto rec = passes::runPasses(g, {pass}, true);
    anyChange |= rec[0].changed;
    std::vector<HostTensor> got = evaluateAll(g, src);
    REQUIRE(got.size() == want.size());
    bool exact = pass != "simplify" && pass != "batch";
    for (size_t i = 0; i < want.size(); ++i) checkTensors(got[i], want[i], exact, fmt::format("root {}", i));
    want = std::move(got);
  }
  return anyChange;
}

// Runs every function of the compiled module on `src` (after init(7)) and
// compares its outputs and updates with the interpreter on the optimized
// graph, bit for bit.
void checkJitAgainstInterpreter(jit::CompiledModule& jit, const NamedSources& src) {
  const ir::Graph& opt = jit.compiled().graph;
  for (const ir::Function& f : opt.functions()) {
    CAPTURE(f.name);
    jit.init(7);
    for (const auto& [name, t] : src) {
      if (t.type.dtype == ir::DType::F32) std::copy(t.f.begin(), t.f.end(), jit.f32(name));
      else std::copy(t.i.begin(), t.i.end(), jit.i32(name));
    }
    std::vector<ir::ValueId> roots;
    for (const ir::Output& o : f.outputs) roots.push_back(o.value);
    for (const ir::Update& u : f.updates) roots.push_back(u.value);
    std::vector<HostTensor> want = interp::evaluate(opt, roots, bindSources(opt, src));
    jit.run(f.name);
    size_t i = 0;
    for (const ir::Output& o : f.outputs) {
      std::string name = fmt::format("{}.{}", f.name, o.name);
      HostTensor got = HostTensor::zeros(opt.type(o.value));
      if (got.type.dtype == ir::DType::F32) std::copy(jit.f32(name), jit.f32(name) + got.size(), got.f.begin());
      else std::copy(jit.i32(name), jit.i32(name) + got.size(), got.i.begin());
      checkTensors(got, want[i++], true, name);
    }
    for (const ir::Update& u : f.updates) {
      const std::string& name = opt.node(u.target).name;
      HostTensor got = HostTensor::zeros(opt.type(u.target));
      std::copy(jit.f32(name), jit.f32(name) + got.size(), got.f.begin());
      checkTensors(got, want[i++], true, "update of " + name);
    }
  }
}

// --- the graphs --------------------------------------------------------------

void mlp(Graph& g, Module& m, const Optimizer& opt, int64_t batch, int64_t in, int64_t hidden, int64_t classes) {
  Tensor x = g.input("x", {batch, in});
  Tensor y = g.input("y", {batch}, DType::I32);
  Linear l1(g, "l1", in, hidden), l2(g, "l2", hidden, classes);
  Tensor logits = l2(relu(l1(x)));
  m.addFunction("predict", {x}, {{"logits", logits}});
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(logits, y)), opt);
}

std::vector<NamedGraph> graphs() {
  std::vector<NamedGraph> out;
  auto add = [&](std::string name, const Graph& g) { out.push_back({std::move(name), g.ir()}); };
  for (int which = 0; which < 2; ++which) {
    Graph g;
    Module m(g);
    mlp(g, m, which ? Optimizer(Adam{.lr = 0.01}) : Optimizer(SGD{.lr = 0.1, .momentum = 0.9}), 8, 12, 6, 3);
    add(which ? "mlp-adam" : "mlp-sgd", g);
  }
  {  // every op, as outputs of one function
    Graph g;
    Module m(g);
    Tensor a = g.input("a", {3, 4}), b = g.input("b", {3, 4}), r = g.input("r", {4}), c = g.input("c", {3, 1});
    Tensor lab = g.input("lab", {3}, DType::I32);
    Tensor p = g.param("p", {4, 5}, Init::uniform(-1, 1));
    Tensor s = g.state("s", {3, 4}, Init::constant(0.5));
    Tensor all = a + b - a * b / b;
    all = maximum(all, -a) + exp(a) + log(b) + sqrt(a) + relu(a - b) + tanh(a) + sigmoid(b) + step(a - 1.0);
    all = all * g.constant(2.5, {3, 4}) + (r + a) * c + s;
    Tensor mm = matmul(all, p) + matmul(transpose(all), p, true, false) + matmul(transpose(all), transpose(p), true, true);
    Tensor red = sum(mm, {1}) + broadcastTo(sum(reshape(mean(mm, {0}, true), {5})), {3}) + reduceMax(mm, {1});
    Tensor sm = softmax(mm) + logSoftmax(mm, 0);
    Tensor t3 = transpose(broadcastTo(reshape(a, {2, 1, 6}), {2, 5, 6}), {2, 0, 1});
    m.addFunction("f", {a, b, r, c, lab},
                  {{"red", red}, {"sm", sm}, {"t3", t3}, {"am", argmax(mm, 1)}, {"oh", oneHot(lab, 4)},
                   {"ce", softmaxCrossEntropy(mm, lab)}});
    add("every-op", g);
  }
  {  // rewrites: duplicates, identities, constant subgraphs
    Graph g;
    Module m(g);
    Tensor x = g.input("x", {4, 6}), w = g.input("w", {4, 5});
    Tensor one = g.constant(2.0) * 0.5;           // folds to 1
    Tensor zero = g.constant(3.0) - 3.0;          // folds to 0
    Tensor y = x * broadcastTo(one, {4, 6}) + broadcastTo(zero, {4, 6});
    y = -(-y) + exp(x) + exp(x);                  // neg(neg), cse
    y = transpose(transpose(y)) / broadcastTo(one, {4, 6});
    Tensor z = matmul(transpose(y), w);           // absorbs the transpose
    Tensor q = sum(broadcastTo(sum(x, {1}), {7, 4}), {0});  // sum of a broadcast
    Tensor hot = sum(oneHot(g.constant(1.0, {5}, DType::I32), 3), {1});  // folds through onehot
    Tensor rr = reshape(reshape(x, {24}), {6, 4});
    m.addFunction("f", {x, w}, {{"z", z}, {"q", q + broadcastTo(sum(hot), {4})}, {"rr", rr}});
    add("rewrites", g);
  }
  {  // grad_test: a value read by three consumers, a shared weight
    Graph g;
    Module m(g);
    Tensor x = g.input("x", {2, 3});
    Tensor w = g.param("w", {3, 3}, Init::uniform(-1, 1));
    Tensor h = matmul(x, w);
    Tensor h2 = matmul(tanh(h), w);
    Tensor loss = sum(h * h) + sum(exp(h)) + mean(tanh(h) * h2);
    m.addTrainStep("step", loss, SGD{.lr = 0.1});
    add("fan-out", g);
  }
  {  // grad_test: an encoder state read by every decoder step
    Graph g;
    Module m(g);
    Tensor x = g.input("x", {2, 3});
    Tensor We = g.param("We", {3, 4}, Init::uniform(-1, 1));
    Tensor Wd = g.param("Wd", {4, 4}, Init::uniform(-1, 1));
    Tensor U = g.param("U", {4, 4}, Init::uniform(-1, 1));
    Tensor h = tanh(matmul(x, We));
    Tensor d = h;
    Tensor loss = g.constant(0.0);
    std::vector<Tensor> ins{x};
    for (int t = 0; t < 4; ++t) {
      d = tanh(matmul(h, Wd) + matmul(d, U));
      Tensor target = g.input(fmt::format("target{}", t), {2, 4});
      ins.push_back(target);
      loss = loss + mean((d - target) * (d - target));
    }
    m.addFunction("decode", ins, {{"d", d}});
    m.addTrainStep("trainStep", loss, Adam{.lr = 0.01});
    add("encoder-decoder", g);
  }
  {  // an unrolled char-RNN (embedding input, tanh, per-step cross-entropy,
     // Adam), long enough for batch to join its gradient sums and stack its
     // output projections
    Graph g;
    Module m(g);
    constexpr int64_t kV = 3, kH = 4, kT = 6, kB = 2;
    Tensor xs = g.input("xs", {kB, kT}, DType::I32), ys = g.input("ys", {kB, kT}, DType::I32);
    Tensor wxh = g.param("wxh", {kV, kH}, Init::uniform(-1, 1)), whh = g.param("whh", {kH, kH}, Init::uniform(-1, 1));
    Tensor bh = g.param("bh", {kH}, Init::uniform(-1, 1)), why = g.param("why", {kH, kV}, Init::uniform(-1, 1));
    std::vector<Tensor> x = timeSteps(xs), y = timeSteps(ys);
    Tensor h = g.constant(0.0, {kB, kH}), total;
    for (int64_t t = 0; t < kT; ++t) {
      h = tanh(gather(wxh, x[t]) + matmul(h, whh) + bh);
      Tensor l = mean(softmaxCrossEntropy(matmul(h, why), y[t]));
      total = t == 0 ? l : total + l;
    }
    m.addTrainStep("trainStep", total / static_cast<double>(kT), Adam{.lr = 0.01});
    add("unrolled-rnn", g);
  }
  return out;
}

}  // namespace

TEST_CASE("passes: every pass keeps the interpreter's outputs on every test graph") {
  for (const NamedGraph& ng : graphs()) {
    CAPTURE(ng.name);
    ir::Graph g = ng.g;
    CHECK(checkPassByPass(g, randomSources(g, 1)));
    // a second run of the pipeline finds nothing left to do
    for (const auto& r : passes::runPasses(g, passes::defaultPipeline(), true)) {
      CAPTURE(r.name);
      CHECK_FALSE(r.changed);
    }
  }
}

TEST_CASE("passes: the rewrites fire on the graph built to trigger them") {
  ir::Graph g = graphs()[3].g;
  REQUIRE(graphs()[3].name == "rewrites");
  passes::runPasses(g, passes::defaultPipeline(), true);
  int transposes = 0, negs = 0, exps = 0, sums = 0, onehots = 0;
  for (const ir::Node& n : g.nodes()) {
    transposes += n.op == ir::OpKind::Transpose;
    negs += n.op == ir::OpKind::Neg;
    exps += n.op == ir::OpKind::Exp;
    sums += n.op == ir::OpKind::Sum;
    onehots += n.op == ir::OpKind::OneHot;
  }
  CHECK(transposes == 0);  // cancelled, and absorbed by the matmul
  CHECK(negs == 0);
  CHECK(exps == 1);        // cse
  CHECK(sums == 1);        // only sum(x, {1}) is left: the broadcast one became a mul, the onehot one folded
  CHECK(onehots == 0);
}

TEST_CASE("passes: batch joins the unrolled RNN's gradient sums and stacks its shared-weight matmuls") {
  ir::Graph g = graphs().back().g;
  REQUIRE(graphs().back().name == "unrolled-rnn");
  auto count = [&](ir::OpKind op) {
    return std::count_if(g.nodes().begin(), g.nodes().end(), [&](const ir::Node& n) { return n.op == op; });
  };
  std::vector<std::string> upToBatch;
  for (const std::string& p : passes::defaultPipeline()) {
    upToBatch.push_back(p);
    if (p == "batch") break;
  }
  REQUIRE(upToBatch.back() == "batch");
  upToBatch.pop_back();
  passes::runPasses(g, upToBatch, true);
  // per step: h whh, h why forward; dlogits why^T, da whh^T, h^T dlogits,
  // h_prev^T da backward; but no da whh^T at step 0, whose h_prev is a const
  CHECK(count(ir::OpKind::MatMul) == 6 * 6 - 1);
  CHECK(count(ir::OpKind::ScatterAdd) == 6);
  CHECK(count(ir::OpKind::Concat) == 0);
  auto rec = passes::runPasses(g, {"batch"}, true);
  CHECK(rec[0].changed);
  // left: the recurrence h whh (6) and da whh^T (5: nothing flows back past
  // step 0); joined: dW_hy and dW_hh; stacked: h why and dlogits why^T
  CHECK(count(ir::OpKind::MatMul) == 6 + 5 + 2 + 2);
  CHECK(count(ir::OpKind::ScatterAdd) == 1);
  // one concat each of the h_t, the h_{t-1}, the da_t, the dlogits_t and the
  // indices, shared by every op that joins them
  CHECK(count(ir::OpKind::Concat) == 5);
  int64_t bigK = 0;
  for (const ir::Node& n : g.nodes())
    if (n.op == ir::OpKind::MatMul && n.attrs.getInt("ta", 0) == 1) bigK = std::max(bigK, g.type(n.operands[0]).shape[0]);
  CHECK(bigK == 6 * 2);  // the contraction runs over every step's batch rows
  CHECK_FALSE(passes::runPasses(g, {"batch"}, true)[0].changed);
}

TEST_CASE("passes: JIT results after memory planning equal the interpreter, call after call") {
  for (const NamedGraph& ng : graphs()) {
    CAPTURE(ng.name);
    auto jit = jit::compile(ng.g);
    const ir::Graph& opt = jit->compiled().graph;
    const lower::ModulePlan& plan = jit->compiled().plan;
    CHECK(plan.tempBytes <= plan.naiveTempBytes);
    for (int call = 0; call < 2; ++call) checkJitAgainstInterpreter(*jit, randomSources(opt, 2 + call));
  }
}

TEST_CASE("passes: the MNIST MLP train step, its kernels and its arena") {
  Graph g;
  Module m(g);
  mlp(g, m, Adam{.lr = 1e-3}, 64, 784, 128, 10);
  auto jit = jit::compile(m);
  const driver::CompileStats& st = jit->compiled().stats;
  const driver::FunctionStats* ts = nullptr;
  for (const auto& f : st.functions)
    if (f.name == "trainStep") ts = &f;
  REQUIRE(ts);
  MESSAGE(fmt::format("trainStep: ops_before {} ops_after {} kernels {} arena_bytes {} naive_bytes {} persistent_bytes {}",
                      ts->opsBefore, ts->opsAfter, ts->kernels, ts->arenaBytes, ts->naiveBytes, ts->persistentBytes));
  // the targets: arena <= naive / 2, and (with fusion) kernels <=
  // ops_before / 3
  CHECK(ts->arenaBytes * 2 <= ts->naiveBytes);
  CHECK(ts->kernels * 3 <= ts->opsBefore);
  CHECK(ts->opsAfter < ts->opsBefore);

  // determinism: a second compile gives the same graph text and plan
  auto again = jit::compile(m);
  CHECK(ir::printGraph(again->compiled().graph) == ir::printGraph(jit->compiled().graph));
  CHECK(lower::printPlan(again->compiled().graph, again->compiled().plan) ==
        lower::printPlan(jit->compiled().graph, jit->compiled().plan));
}

TEST_CASE("passes: stack turns the unrolled RNN's per-step loss ops into one op each, bit for bit") {
  ir::Graph g = graphs().back().g;
  REQUIRE(graphs().back().name == "unrolled-rnn");
  auto count = [](const ir::Graph& h, ir::OpKind op) {
    return std::count_if(h.nodes().begin(), h.nodes().end(), [&](const ir::Node& n) { return n.op == op; });
  };
  std::vector<std::string> upToBatch;
  for (const std::string& p : passes::defaultPipeline()) {
    upToBatch.push_back(p);
    if (p == "batch") break;
  }
  REQUIRE(upToBatch.back() == "batch");
  passes::runPasses(g, upToBatch, true);
  const ir::Graph before = g;
  // six steps: one logsoftmax, take_along and scatter_along each
  CHECK(count(g, ir::OpKind::LogSoftmax) == 6);
  CHECK(count(g, ir::OpKind::TakeAlong) == 6);
  CHECK(count(g, ir::OpKind::ScatterAlong) == 6);
  auto rec = passes::runPasses(g, {"stack"}, true);
  CHECK(rec[0].changed);
  CHECK(count(g, ir::OpKind::LogSoftmax) == 1);
  CHECK(count(g, ir::OpKind::TakeAlong) == 1);
  CHECK(count(g, ir::OpKind::ScatterAlong) == 1);
  for (const ir::Node& n : g.nodes())
    if (n.op == ir::OpKind::LogSoftmax) CHECK(n.type.shape == ir::Shape{6 * 2, 3});
  // the loss is still a sum of one f32[] per step: full reductions are not stacked
  int64_t scalarSums = 0;
  for (const ir::Node& n : g.nodes()) scalarSums += n.op == ir::OpKind::Sum && n.type.rank() == 0;
  CHECK(scalarSums >= 6);
  CHECK_FALSE(passes::runPasses(g, {"stack"}, true)[0].changed);
  // the same values, bit for bit, on several random inputs (with labels that
  // differ per step), for the loss and every updated param
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    NamedSources src = randomSources(before, seed);
    std::vector<HostTensor> want = evaluateAll(before, src), got = evaluateAll(g, src);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) checkTensors(got[i], want[i], true, fmt::format("seed {} root {}", seed, i));
  }
}

// simplify's maxpool2d_grad(x, dy) * step(x) -> maxpool2d_grad(x, dy *
// step(maxpool2d(x))) (non-overlapping windows): the relu-then-pool backward
// gives the same gradient up to the sign of zero, on inputs with ties,
// zeros, negatives, a NaN and infinite upstream gradients; overlapping
// windows keep the full-size multiply.
TEST_CASE("passes: the pool-gradient rewrite keeps relu-then-pool gradients, up to the sign of zero") {
  for (int64_t stride : {2, 1}) {  // disjoint 2 x 2 windows, then overlapping ones
    CAPTURE(stride);
    Graph g;
    Module m(g);
    Tensor x = g.input("x", {2, 3, 8, 8});
    Tensor y = maxPool2d(relu(x), {2, 2}, {stride, stride});
    Tensor w = g.input("w", g.ir().type(y.id()).shape);
    Tensor dx = grad(sum(y * w), {x})[0];
    m.addFunction("f", {x, w}, {{"dx", dx}});
    ir::Graph before = g.ir(), after = g.ir();
    passes::runPasses(after, {"simplify", "cse", "dce"}, true);
    int fullMuls = 0;  // multiplies of x's size
    for (const ir::Node& n : after.nodes()) fullMuls += n.op == ir::OpKind::Mul && n.type.shape == Shape{2, 3, 8, 8};
    CHECK(fullMuls == (stride == 2 ? 0 : 1));
    HostTensor xs = HostTensor::zeros(before.type(before.findSource("x")));
    HostTensor ws = HostTensor::zeros(before.type(before.findSource("w")));
    const float xv[] = {-1.0f, 0.0f, 0.5f, 0.5f, 1.0f, 2.0f, -0.0f};  // ties, zeros of both signs, negatives
    for (int64_t i = 0; i < xs.size(); ++i) xs.f[static_cast<size_t>(i)] = xv[(i * 7 + i / 5) % 7];
    xs.f[10] = NAN;
    const float wv[] = {1.5f, -2.0f, 0.0f, -0.0f, -3.0f, INFINITY, 0.25f};
    for (int64_t i = 0; i < ws.size(); ++i) ws.f[static_cast<size_t>(i)] = wv[(i * 3 + i / 4) % 7];
    std::map<std::string, HostTensor> src{{"x", xs}, {"w", ws}};
    auto run = [&](const ir::Graph& gr) {
      std::map<ir::ValueId, HostTensor> bound;
      for (const auto& [name, t] : src) bound[gr.findSource(name)] = t;
      return interp::evaluate(gr, {gr.functions()[0].outputs[0].value}, bound)[0];
    };
    HostTensor want = run(before), got = run(after);
    REQUIRE(got.f.size() == want.f.size());
    int64_t differ = 0, signedZeros = 0;
    for (size_t k = 0; k < want.f.size(); ++k) {
      float a = got.f[k], b = want.f[k];
      if (sameBits(a, b)) continue;
      if (a == 0.0f && b == 0.0f) ++signedZeros;
      else ++differ;
    }
    CHECK(differ == 0);
    if (stride == 1) CHECK(signedZeros == 0);  // not rewritten: bit for bit
  }
}

// Unrolled RNNs of random sizes (vocabulary 2..70, hidden 3..70, 4..12
// steps, batch 1..9; h·W_h + x·W_x or concat(x, h)·W; tanh or relu): the
// batch and stack passes' rewrites depend on shapes (column layouts, tail
// panels, shifted windows), so shapes nobody picked. Pass by pass against the
// interpreter for tanh (relu's unbounded states make batch's reordered sums
// differ by more than the tolerance, by cancellation, not by error), and the
// JIT against the interpreter on the optimized graph, bit for bit, for both.
// 24 configurations passed once.
TEST_CASE("passes: unrolled RNNs of random sizes keep the interpreter's results") {
  test::SeededInts next{99};
  for (int i = 0; i < 12; ++i) {
    int64_t V = next(2, 70), H = next(3, 70), T = next(4, 12), B = next(1, 9);
    bool concatForm = next(0, 1) == 1, relu_ = next(0, 2) == 0;
    CAPTURE(fmt::format("V {} H {} T {} B {} concat {} relu {}", V, H, T, B, concatForm, relu_));
    Graph g;
    Module m(g);
    Tensor xs = g.input("xs", {B, T}, DType::I32), ys = g.input("ys", {B, T}, DType::I32);
    Tensor emb = g.param("emb", {V, H}, Init::uniform(-1, 1));
    Tensor wxh = g.param("wxh", {H, H}, Init::uniform(-1, 1)), whh = g.param("whh", {H, H}, Init::uniform(-1, 1));
    Tensor wcat = g.param("wcat", {2 * H, H}, Init::uniform(-1, 1));
    Tensor bh = g.param("bh", {H}, Init::uniform(-1, 1)), why = g.param("why", {H, V}, Init::uniform(-1, 1));
    std::vector<Tensor> x = timeSteps(xs), y = timeSteps(ys);
    Tensor h = g.constant(0.0, {B, H}), total;
    for (int64_t t = 0; t < T; ++t) {
      Tensor e = gather(emb, x[t]);
      Tensor pre = concatForm ? matmul(concat({e, h}, 1), wcat) + bh : matmul(e, wxh) + matmul(h, whh) + bh;
      h = relu_ ? relu(pre) : tanh(pre);
      Tensor l = mean(softmaxCrossEntropy(matmul(h, why), y[t]));
      total = t == 0 ? l : total + l;
    }
    m.addTrainStep("trainStep", total / static_cast<double>(T), Adam{.lr = 0.01});
    // labels and indices in [0, V): randomSources draws them in [0, 3)
    auto sources = [&](const ir::Graph& gr, uint64_t seed) {
      NamedSources src = randomSources(gr, seed);
      for (auto& [name, t] : src)
        if (t.type.dtype == ir::DType::I32)
          for (auto& v : t.i) v = v % static_cast<int32_t>(V);
      return src;
    };
    if (!relu_) {
      ir::Graph pg = g.ir();
      checkPassByPass(pg, sources(pg, 1));
    }
    auto jit = jit::compile(g.ir());
    checkJitAgainstInterpreter(*jit, sources(jit->compiled().graph, 3));
  }
}
