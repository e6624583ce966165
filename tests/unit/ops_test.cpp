// Every op: interpreter vs JIT-compiled code on random inputs, and the
// autodiff gradient vs central finite differences for every differentiable
// op. A final case fails if some op in Ops.def is exercised by no case.
#include <set>

#include "OpCases.h"
#include "ir/InitSpec.h"

using namespace kiln;
using kiln::test::HostTensor;
using kiln::test::Leaf;
using kiln::test::OpCase;
using kiln::test::cases;

namespace {

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

// Second order: L2 = sum_p sum(dL/dp * w2_p) differentiated again, against
// finite differences of L2. Cases through an op whose gradient has no rule
// (max pooling) must fail with the missing-rule diagnostic instead.
TEST_CASE("ops: second-order gradients match central finite differences") {
  int checked = 0, refused = 0;
  for (const OpCase& c : cases()) {
    if (!c.grad) continue;
    CAPTURE(c.name);
    Graph g;
    Leaf leaf{g, true, {}};
    Tensor y = c.build(g, leaf);
    Tensor w = g.input("w", y.shape());
    std::vector<Tensor> params;
    for (const auto& [v, r] : leaf.leaves)
      if (g.ir().node(v).op == ir::OpKind::Param) params.push_back(g.tensor(v));
    std::vector<Tensor> grads = grad(sum(y * w), params);
    Tensor loss2 = g.constant(0.0);
    for (size_t p = 0; p < params.size(); ++p) loss2 = loss2 + sum(grads[p] * g.input(fmt::format("w2_{}", p), params[p].shape()));
    std::vector<Tensor> grads2;
    try {
      grads2 = grad(loss2, params);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("no gradient rule yet") != std::string::npos);
      ++refused;
      continue;
    }
    auto src = randomSources(g, leaf);
    uint64_t stream = 500;
    for (ir::ValueId v = 0; v < g.ir().size(); ++v)
      if (ir::isSource(g.ir().node(v).op) && !src.count(v)) {
        src[v] = HostTensor::zeros(g.ir().type(v));
        if (g.ir().node(v).op == ir::OpKind::Input) test::fillRandom(src[v], stream++);
        else ir::initSource(g.ir().node(v), src[v].data(), 7);
      }
    std::vector<ir::ValueId> roots;
    for (const Tensor& t : grads2) roots.push_back(t.id());
    std::vector<HostTensor> analytic = interp::evaluate(g.ir(), roots, src);
    for (size_t p = 0; p < params.size(); ++p) {
      std::vector<float> numeric = test::numericGradient(g.ir(), loss2.id(), params[p].id(), src);
      test::checkClose(analytic[p].f, numeric, 5e-3f, 3e-2f, fmt::format("{} d2/d operand {}", c.name, p));
    }
    ++checked;
  }
  CHECK(checked > 60);
  CHECK(refused >= 1);
  MESSAGE(fmt::format("second order: {} cases checked, {} refused", checked, refused));
}
