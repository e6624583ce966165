// Checked mode (CompileOptions::checked, KILN_CHECKED=1): a diverging model
// stops at the first non-finite value with the op, its IR name, its source
// line, the element and the call number, leaving params as they were; a
// healthy model trains to the same bits as unchecked; with the option off
// the LLVM IR is the unchecked IR. docs/errors.md shows the messages.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <limits>
#include <regex>

#include "CheckedModel.h"
#include "RobustInputs.h"
#include "RobustModel.h"

using namespace kiln;

namespace {

CompileOptions checkedOptions() {
  CompileOptions o;
  o.checked = true;
  return o;
}

std::string errorOf(auto&& f) {
  try {
    f();
  } catch (const rt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The value of the graph after passes computed by op `kind` (the only one).
ir::ValueId onlyNode(const ir::Graph& g, ir::OpKind kind) {
  ir::ValueId found = -1;
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (g.node(v).op == kind) {
      REQUIRE(found == -1);
      found = v;
    }
  REQUIRE(found >= 0);
  return found;
}

std::vector<float> copyOf(jit::CompiledModule& m, const char* name) {
  const float* p = m.f32(name);
  return std::vector<float>(p, p + m.type(name).numElements());
}

// Scoped KILN_CHECKED.
struct EnvChecked {
  explicit EnvChecked(const char* v) { setenv("KILN_CHECKED", v, 1); }
  ~EnvChecked() { unsetenv("KILN_CHECKED"); }
};

}  // namespace

TEST_CASE("checked mode: an overflowing exp is reported with its op, line, element and call") {
  Graph g;
  Module m(g);
  int line = checked_model::build(g, m);
  checked_model::Overflow want = checked_model::expectedOverflow();
  REQUIRE(want.call == 3);  // as CheckedModel.h says; the message below must name the same call
  auto jit = jit::compile(m, checkedOptions());
  jit->init(7);
  std::copy(checked_model::kX, checked_model::kX + 4, jit->f32("x"));
  for (int call = 1; call < want.call; ++call) REQUIRE_NOTHROW(jit->run("trainStep"));
  std::vector<float> before = copyOf(*jit, "w");
  ir::ValueId e = onlyNode(jit->compiled().graph, ir::OpKind::Exp);
  std::string msg = fmt::format(
      "trainStep call 3: %{} (exp at CheckedModel.h:{}) element [{}] of f32[4] is inf, the first non-finite value "
      "of this call; checked mode stopped the call there, before its updates, so params and state are unchanged",
      e, line, want.element);
  CHECK(errorOf([&] { jit->run("trainStep"); }) == msg);
  CHECK(copyOf(*jit, "w") == before);  // no update was written
  // the count goes on: the same inputs fail the same way on call 4
  CHECK(errorOf([&] { jit->run("trainStep"); }).starts_with(fmt::format("trainStep call 4: %{} (exp at", e)));
  // each entry point counts its own calls, and init starts again from 1
  CHECK(errorOf([&] { jit->run("predict"); }).starts_with("predict call 1: %"));
  jit->init(7);
  std::copy(checked_model::kX, checked_model::kX + 4, jit->f32("x"));
  CHECK_NOTHROW(jit->run("trainStep"));
  CHECK(jit->f32("w")[2] > 1.0f);
  CHECK_NOTHROW(jit->run("trainStep"));
  CHECK(errorOf([&] { jit->run("trainStep"); }).starts_with("trainStep call 3: %"));
}

TEST_CASE("checked mode: a non-finite input is named before anything runs") {
  Graph g;
  Module m(g);
  checked_model::build(g, m);
  auto jit = jit::compile(m, checkedOptions());
  jit->init(7);
  std::copy(checked_model::kX, checked_model::kX + 4, jit->f32("x"));
  CHECK_NOTHROW(jit->run("trainStep"));
  std::vector<float> before = copyOf(*jit, "w");
  jit->f32("x")[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK(errorOf([&] { jit->run("trainStep"); }) ==
        "trainStep call 2: input \"x\" element [1] of f32[4] is nan; checked mode stopped the call before any kernel "
        "ran, so params and state are unchanged");
  CHECK(copyOf(*jit, "w") == before);
  jit->f32("x")[1] = -std::numeric_limits<float>::infinity();
  CHECK(errorOf([&] { jit->run("predict"); }) ==
        "predict call 1: input \"x\" element [1] of f32[4] is -inf; checked mode stopped the call before any kernel "
        "ran, so params and state are unchanged");
}

// An MLP with SGD at lr 1e6 diverges; checked mode stops on the call where
// the first non-finite value appears — the call after which, unchecked, the
// loss or a param is non-finite for the first time — names an op the
// graph has, built on one of the model's lines, and leaves the params as
// they were before that call.
TEST_CASE("checked mode: an MLP with a huge learning rate stops on the call it diverges") {
  auto build = [](Graph& g, Module& m, int& first, int& last) {
    Tensor x = g.input("x", {8, 32});
    Tensor y = g.input("y", {8}, DType::I32);
    first = __LINE__ + 1;
    Linear l1(g, "l1", 32, 64), l2(g, "l2", 64, 10);
    Tensor loss = mean(softmaxCrossEntropy(l2(relu(l1(x))), y));
    m.addTrainStep("trainStep", loss, SGD{.lr = 1e6});
    last = __LINE__ - 1;
  };
  int first = 0, last = 0;
  Graph g1, g2;
  Module m1(g1), m2(g2);
  build(g1, m1, first, last);
  build(g2, m2, first, last);
  auto plain = jit::compile(m1);
  auto checked = jit::compile(m2, checkedOptions());
  plain->init(3);
  checked->init(3);
  const char* params[] = {"l1.w", "l1.b", "l2.w", "l2.b"};
  auto allFinite = [&](jit::CompiledModule& mod) {
    for (const char* p : params)
      for (float v : copyOf(mod, p))
        if (!std::isfinite(v)) return false;
    return std::isfinite(mod.f32("trainStep.loss")[0]);
  };
  int plainCall = 0;
  for (int call = 1; call <= 30 && plainCall == 0; ++call) {
    robust::fillBatch(call, plain->f32("x"), plain->i32("y"));
    plain->run("trainStep");
    if (!allFinite(*plain)) plainCall = call;
  }
  REQUIRE(plainCall > 1);
  std::string msg;
  std::vector<std::vector<float>> before;
  int call = 1;
  for (; call <= 30; ++call) {
    robust::fillBatch(call, checked->f32("x"), checked->i32("y"));
    before.clear();
    for (const char* p : params) before.push_back(copyOf(*checked, p));
    msg = errorOf([&] { checked->run("trainStep"); });
    if (msg != "(no error)") break;
  }
  MESSAGE(msg);
  CHECK(call == plainCall);
  for (size_t i = 0; i < 4; ++i) CHECK(copyOf(*checked, params[i]) == before[i]);
  std::smatch sm;
  REQUIRE(std::regex_search(msg, sm, std::regex(R"(^trainStep call (\d+): %(\d+) \((\w+) at checked_mode_test\.cpp:(\d+)\) element \[[0-9, ]+\] of f32\[[0-9,]*\] is (-?inf|nan), the first non-finite value of this call; checked mode stopped the call there, before its updates, so params and state are unchanged$)")));
  CHECK(std::stoi(sm[1]) == plainCall);
  const ir::Node& n = checked->compiled().graph.node(std::stoi(sm[2]));
  CHECK(ir::opName(n.op) == sm[3].str());
  CHECK(n.loc.line == std::stoi(sm[4]));
  CHECK(n.loc.line >= first);
  CHECK(n.loc.line <= last);
}

TEST_CASE("checked mode: a healthy model trains to the same bits checked and unchecked") {
  Graph g1, g2;
  Module m1(g1), m2(g2);
  buildRobustModel(g1, m1);
  buildRobustModel(g2, m2);
  auto plain = jit::compile(m1);
  auto checked = jit::compile(m2, checkedOptions());
  CHECK(checked->compiled().plan.checked);
  CHECK(checked->compiled().plan.functions[1].finiteChecks.size() > 20);
  plain->init(5);
  checked->init(5);
  for (int s = 0; s < 6; ++s) {
    robust::fillBatch(s, plain->f32("x"), plain->i32("y"));
    robust::fillBatch(s, checked->f32("x"), checked->i32("y"));
    plain->run("trainStep");
    REQUIRE_NOTHROW(checked->run("trainStep"));
    CHECK(std::memcmp(plain->f32("trainStep.loss"), checked->f32("trainStep.loss"), 4) == 0);
  }
  for (const std::string& name : plain->bufferNames())
    if (plain->type(name).dtype == ir::DType::F32 && name.find('.') != std::string::npos && name != "trainStep.loss")
      CHECK_MESSAGE(copyOf(*plain, name.c_str()) == copyOf(*checked, name.c_str()), name);
  CHECK(copyOf(*plain, "l1.w") == copyOf(*checked, "l1.w"));
  CHECK(copyOf(*plain, "trainStep.l3.b.adam_v") == copyOf(*checked, "trainStep.l3.b.adam_v"));
  plain->run("predict");
  REQUIRE_NOTHROW(checked->run("predict"));
  CHECK(copyOf(*plain, "predict.logits") == copyOf(*checked, "predict.logits"));
}

TEST_CASE("checked mode: off, the LLVM IR and the plan are the unchecked ones; KILN_CHECKED=1 turns it on") {
  auto compileRobust = [](const CompileOptions& o) {
    Graph g;
    Module m(g);
    buildRobustModel(g, m);
    return driver::compile(m.ir(), "robust", o, m.builtText());
  };
  unsetenv("KILN_CHECKED");
  driver::Compiled base = compileRobust({});
  CompileOptions off;
  off.checked = false;
  driver::Compiled explicitOff = compileRobust(off);
  driver::Compiled env0 = [&] {
    EnvChecked e("0");
    return compileRobust({});
  }();
  CHECK(explicitOff.code.llvmIR == base.code.llvmIR);
  CHECK(env0.code.llvmIR == base.code.llvmIR);
  CHECK(base.code.llvmIR.find("nonfinite") == std::string::npos);
  CHECK(!base.plan.checked);
  for (const lower::FunctionPlan& f : base.plan.functions) {
    CHECK(f.finiteChecks.empty());
    CHECK(f.callCountOffset == -1);
  }
  // unchecked code is fused; checked code is not, and scans every f32 kernel
  driver::Compiled on = compileRobust(checkedOptions());
  driver::Compiled env1 = [&] {
    EnvChecked e("1");
    return compileRobust({});
  }();
  CHECK(on.code.llvmIR != base.code.llvmIR);
  CHECK(env1.code.llvmIR == on.code.llvmIR);
  CHECK(on.code.llvmIR.find("define internal i64 @kiln_first_nonfinite(") != std::string::npos);
  CHECK(on.stats.kernels > base.stats.kernels);
  CHECK(on.plan.totalBytes > base.plan.totalBytes);
}
