// Every op: interpreter vs JIT-compiled code on random inputs, and the
// autodiff gradient vs central finite differences for every differentiable
// op. A final case fails if some op in Ops.def is exercised by no case.
#include <set>

#include "TestUtil.h"
#include "autodiff/Grad.h"
#include "ir/InitSpec.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

// Makes the leaves of a case: inputs for the compile test, params (so they
// can be differentiated) for the gradient test. Records each leaf's range.
struct Leaf {
  Graph& g;
  bool asParams;
  struct Range {
    float lo, hi;
  };
  std::vector<std::pair<ir::ValueId, Range>> leaves;

  Tensor operator()(Shape s, DType t = DType::F32, float lo = -1.0f, float hi = 1.0f) {
    std::string name = fmt::format("in{}", leaves.size());
    Tensor x = (asParams && t == DType::F32) ? g.param(name, s, Init::zeros()) : g.input(name, s, t);
    leaves.push_back({x.id(), {lo, hi}});
    return x;
  }
};

struct OpCase {
  std::string name;
  std::function<Tensor(Graph&, Leaf&)> build;
  bool grad = true;  // has a gradient to check
};

std::vector<OpCase> cases() {
  return {
      {"add", [](Graph&, Leaf& l) { return l({3, 4}) + l({3, 4}); }},
      {"sub", [](Graph&, Leaf& l) { return l({3, 4}) - l({3, 4}); }},
      {"mul", [](Graph&, Leaf& l) { return l({3, 4}) * l({3, 4}); }},
      {"div", [](Graph&, Leaf& l) { return l({3, 4}) / l({3, 4}, DType::F32, 0.5f, 2.0f); }},
      {"maximum", [](Graph&, Leaf& l) { return maximum(l({3, 4}), l({3, 4})); }},
      {"neg", [](Graph&, Leaf& l) { return -l({3, 4}); }},
      {"exp", [](Graph&, Leaf& l) { return exp(l({3, 4})); }},
      {"log", [](Graph&, Leaf& l) { return log(l({3, 4}, DType::F32, 0.2f, 3.0f)); }},
      {"sqrt", [](Graph&, Leaf& l) { return sqrt(l({3, 4}, DType::F32, 0.2f, 3.0f)); }},
      {"relu", [](Graph&, Leaf& l) { return relu(l({3, 4})); }},
      {"tanh", [](Graph&, Leaf& l) { return tanh(l({3, 4}, DType::F32, -2.0f, 2.0f)); }},
      {"sigmoid", [](Graph&, Leaf& l) { return sigmoid(l({3, 4}, DType::F32, -3.0f, 3.0f)); }},
      {"step", [](Graph&, Leaf& l) { return step(l({3, 4})); }, false},
      {"const", [](Graph& g, Leaf& l) { return l({3, 4}) * g.constant(2.5, {3, 4}); }},
      {"scalar-broadcast", [](Graph&, Leaf& l) { return 3.0 * l({3, 4}) - 1.5; }},
      {"broadcast-row", [](Graph&, Leaf& l) { return l({3, 4}) + l({4}); }},
      {"broadcast-col", [](Graph&, Leaf& l) { return l({3, 4}) * l({3, 1}); }},
      {"broadcast-3d", [](Graph&, Leaf& l) { return broadcastTo(l({2, 1, 3}), {4, 2, 5, 3}); }},
      {"sum-axis1", [](Graph&, Leaf& l) { return sum(l({3, 4}), {1}); }},
      {"sum-axis0-keep", [](Graph&, Leaf& l) { return sum(l({3, 4}), {0}, true); }},
      {"sum-all", [](Graph&, Leaf& l) { return sum(l({2, 3, 4})); }},
      {"sum-middle", [](Graph&, Leaf& l) { return sum(l({2, 3, 4}), {-2}); }},
      {"mean", [](Graph&, Leaf& l) { return mean(l({3, 4}), {1}, true); }},
      {"reduce_max", [](Graph&, Leaf& l) { return reduceMax(l({3, 4}), {1}); }, false},
      {"argmax", [](Graph&, Leaf& l) { return argmax(l({3, 5}), 1); }, false},
      {"argmax-axis0", [](Graph&, Leaf& l) { return argmax(l({3, 5}), 0); }, false},
      {"reshape", [](Graph&, Leaf& l) { return reshape(l({3, 4}), {2, -1}) * l({2, 6}); }},
      {"transpose-2d", [](Graph&, Leaf& l) { return transpose(l({3, 4})) * l({4, 3}); }},
      {"transpose-3d", [](Graph&, Leaf& l) { return transpose(l({2, 3, 4}), {2, 0, 1}); }},
      {"matmul", [](Graph&, Leaf& l) { return matmul(l({3, 5}), l({5, 4})); }},
      {"matmul-ta", [](Graph&, Leaf& l) { return matmul(l({5, 3}), l({5, 4}), true, false); }},
      {"matmul-tb", [](Graph&, Leaf& l) { return matmul(l({3, 5}), l({4, 5}), false, true); }},
      {"matmul-ta-tb", [](Graph&, Leaf& l) { return matmul(l({5, 3}), l({4, 5}), true, true); }},
      {"logsoftmax", [](Graph&, Leaf& l) { return logSoftmax(l({3, 5}, DType::F32, -3.0f, 3.0f), 1); }},
      {"logsoftmax-axis0", [](Graph&, Leaf& l) { return logSoftmax(l({3, 5}, DType::F32, -3.0f, 3.0f), 0); }},
      {"softmax", [](Graph&, Leaf& l) { return softmax(l({2, 6})); }},
      {"onehot", [](Graph&, Leaf& l) { return oneHot(l({6}, DType::I32), 4); }, false},
      {"softmax-cross-entropy", [](Graph&, Leaf& l) { return softmaxCrossEntropy(l({6, 4}), l({6}, DType::I32)); }},
      {"param", [](Graph& g, Leaf& l) { return l({3, 4}) * g.param("p", {3, 4}, Init::uniform(-1, 1)); }},
      {"state", [](Graph& g, Leaf& l) { return l({3, 4}) + g.state("s", {3, 4}, Init::constant(0.5)); }},
  };
}

std::map<ir::ValueId, HostTensor> randomSources(const Graph& g, const Leaf& leaf) {
  std::map<ir::ValueId, HostTensor> src;
  uint64_t stream = 1;
  for (const auto& [v, r] : leaf.leaves) {
    HostTensor t = HostTensor::zeros(g.ir().type(v));
    test::fillRandom(t, stream++, r.lo, r.hi, 4);
    src[v] = t;
  }
  return src;
}

}  // namespace

TEST_CASE("ops: interpreter and JIT agree on every op") {
  std::set<ir::OpKind> covered;
  for (const OpCase& c : cases()) {
    CAPTURE(c.name);
    Graph g;
    Leaf leaf{g, false, {}};
    Tensor y = c.build(g, leaf);
    Module m(g);
    std::vector<Tensor> ins;
    for (const auto& [v, r] : leaf.leaves) ins.push_back(g.tensor(v));
    m.addFunction("f", ins, {{"y", y}});
    for (const ir::Node& n : g.ir().nodes()) covered.insert(n.op);

    auto src = randomSources(g, leaf);
    interp::Session s(g.ir());
    s.init(7);
    auto jit = jit::compile(m);
    jit->init(7);
    for (const auto& [v, t] : src) {
      const std::string& name = g.ir().node(v).name;
      s.source(name) = t;
      if (t.type.dtype == DType::F32) std::copy(t.f.begin(), t.f.end(), jit->f32(name));
      else std::copy(t.i.begin(), t.i.end(), jit->i32(name));
    }
    s.run("f");
    jit->run("f");
    const HostTensor& want = s.output("f", "y");
    if (want.type.dtype == DType::F32) {
      std::vector<float> got(jit->f32("f.y"), jit->f32("f.y") + want.size());
      test::checkClose(got, want.f, 1e-6f, 1e-6f, c.name);
    } else {
      std::vector<int32_t> got(jit->i32("f.y"), jit->i32("f.y") + want.size());
      CHECK(got == want.i);
    }
  }
  std::vector<std::string> missing;
  for (int k = 0; k < ir::kOpCount; ++k)
    if (!covered.count(static_cast<ir::OpKind>(k))) missing.push_back(std::string(ir::opName(static_cast<ir::OpKind>(k))));
  CHECK_MESSAGE(missing.empty(), "ops exercised by no case: ", fmt::format("{}", fmt::join(missing, ", ")));
}

// loss = sum(y * w) for a random w; its gradient wrt each f32 leaf is
// compared with (loss(x+h) - loss(x-h)) / 2h, everything evaluated by the
// interpreter.
TEST_CASE("ops: gradients match central finite differences") {
  for (const OpCase& c : cases()) {
    if (!c.grad) continue;
    CAPTURE(c.name);
    Graph g;
    Leaf leaf{g, true, {}};
    Tensor y = c.build(g, leaf);
    Tensor w = g.input("w", y.shape());
    Tensor loss = sum(y * w);
    std::vector<Tensor> params;
    for (const auto& [v, r] : leaf.leaves)
      if (g.ir().node(v).op == ir::OpKind::Param) params.push_back(g.tensor(v));
    REQUIRE(!params.empty());
    std::vector<Tensor> grads = grad(loss, params);

    auto src = randomSources(g, leaf);
    HostTensor wt = HostTensor::zeros(w.type());
    test::fillRandom(wt, 99);
    src[w.id()] = wt;
    for (ir::ValueId v = 0; v < g.ir().size(); ++v)  // state and other sources
      if (ir::isSource(g.ir().node(v).op) && !src.count(v)) {
        src[v] = HostTensor::zeros(g.ir().type(v));
        ir::initSource(g.ir().node(v), src[v].data(), 7);
      }

    std::vector<ir::ValueId> roots;
    for (const Tensor& gt : grads) roots.push_back(gt.id());
    std::vector<HostTensor> analytic = interp::evaluate(g.ir(), roots, src);
    for (size_t p = 0; p < params.size(); ++p) {
      std::vector<float> numeric = test::numericGradient(g.ir(), loss.id(), params[p].id(), src);
      test::checkClose(analytic[p].f, numeric, 2e-3f, 1e-2f, fmt::format("{} d/d operand {}", c.name, p));
    }
  }
}
