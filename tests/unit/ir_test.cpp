// The graph IR: text round trip, parser and verifier diagnostics, build-time
// shape errors with the caller's file:line, determinism of printed IR.
#include "TestUtil.h"

using namespace kiln;

namespace {

// A small MLP with a train step: exercises most ops and all text features.
void buildMlp(Graph& g, Module& m, const Optimizer& opt) {
  Tensor x = g.input("x", {8, 12});
  Tensor y = g.input("y", {8}, DType::I32);
  Linear l1(g, "l1", 12, 6), l2(g, "l2", 6, 4);
  Tensor logits = l2(relu(l1(x)));
  m.addFunction("predict", {x}, {{"logits", logits}, {"label", argmax(logits, 1)}});
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(logits, y)), opt);
}

void checkRoundTrip(const ir::Graph& g) {
  std::string text = ir::printGraph(g);
  ir::Graph back = ir::parseGraph(text, "roundtrip.kir");
  CHECK(ir::printGraph(back) == text);
}

}  // namespace

TEST_CASE("ir: print(parse(print(g))) == print(g) for the test graphs") {
  for (int opt = 0; opt < 3; ++opt) {
    Graph g;
    Module m(g);
    Optimizer o = opt == 0 ? Optimizer(SGD{.lr = 0.1}) : opt == 1 ? Optimizer(SGD{.lr = 0.1, .momentum = 0.9}) : Optimizer(Adam{});
    buildMlp(g, m, o);
    checkRoundTrip(g.ir());
  }
  Graph g;
  Tensor a = g.input("a", {2, 3, 4});
  Tensor b = transpose(a, {1, 2, 0});
  Tensor c = reshape(sum(b * b, {0, 2}, true), {1, 4}) + g.constant(-1.25e-7);
  Tensor d = broadcastTo(logSoftmax(c, 0), {5, 1, 4});
  Module m(g);
  m.addFunction("f", {a}, {d, reduceMax(d, {0, 2}), oneHot(argmax(c), 7)});
  checkRoundTrip(g.ir());
}

TEST_CASE("ir: building the same graph twice prints byte-identical text") {
  Graph g1, g2;
  Module m1(g1), m2(g2);
  buildMlp(g1, m1, Adam{});
  buildMlp(g2, m2, Adam{});
  CHECK(ir::printGraph(g1.ir()) == ir::printGraph(g2.ir()));
}

TEST_CASE("ir: the printed form of a node") {
  Graph g;
  Tensor x = g.input("x", {2, 3});
  Tensor w = g.param("w", {3, 4}, Init::uniform(-0.5, 0.5));
  int line = __LINE__ + 1;
  Tensor y = matmul(x, w, false, false);
  CHECK(ir::printNode(g.ir(), x.id()) == "%0 = input \"x\" : f32[2,3] loc(\"ir_test.cpp:" + std::to_string(line - 3) + "\")");
  CHECK(ir::printNode(g.ir(), w.id()) ==
        "%1 = param \"w\" {a = -0.5, b = 0.5, init = \"uniform\"} : f32[3,4] loc(\"ir_test.cpp:" + std::to_string(line - 2) + "\")");
  CHECK(ir::printNode(g.ir(), y.id()) ==
        "%2 = matmul %0, %1 {ta = 0, tb = 0} : f32[2,4] loc(\"ir_test.cpp:" + std::to_string(line) + "\")");
}

TEST_CASE("ir: parse errors name FILE:LINE:COL and the token") {
  auto errorOf = [](std::string_view text) -> std::string {
    try {
      ir::parseGraph(text, "t.kir");
    } catch (const ir::CompileError& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(errorOf("%0 = input \"x\" : f32[2]\n%1 = frob %0 : f32[2]\n") == "t.kir:2:6: unknown op 'frob'");
  CHECK(errorOf("%0 = exp %7 : f32[2]\n") == "t.kir:1:10: use of undefined value '%7'");
  CHECK(errorOf("%0 = input \"x\" : f32[2]\n%0 = exp %0 : f32[2]\n") == "t.kir:2:1: value '%0' is defined twice");
  CHECK(errorOf("%0 = input \"x\" : f32[2]\n%1 = add %0 : f32[2]\n") == "t.kir:2:6: 'add' takes 2 operand(s), found 1");
  CHECK(errorOf("%0 = input \"x\" : f32[2,3]\n%1 = input \"w\" : f32[4,5]\n%2 = matmul %0, %1 {ta = 0, tb = 0} : f32[2,5]\n") ==
        "t.kir:3:6: matmul: inner dims differ (3 vs 4): lhs f32[2,3], rhs f32[4,5]");
  CHECK(errorOf("%0 = input \"x\" : f32[2]\n%1 = exp %0 : f32[3]\n") ==
        "t.kir:2:15: exp: declared type f32[3] but the operands give f32[2]");
  CHECK(errorOf("%0 = input \"x : f32[2]\n") == "t.kir:1:12: unterminated string");
  CHECK(errorOf("%0 = input \"x\" : f32[0]\n") == "t.kir:1:22: dimension must be positive, found 0");
  CHECK(errorOf("%0 = input \"x\" : f32[2] $\n") == "t.kir:1:25: unexpected character '$'");
  CHECK(errorOf("%0 = input : f32[2]\n") == "t.kir:1:6: 'input' needs a quoted name");
  CHECK(errorOf("%0 = input \"x\" : f32[2]\n%1 = sum %0 {axes = [1], keep = 0} : f32[]\n") ==
        "t.kir:2:6: sum: axis 1 out of range for rank 1");
}

TEST_CASE("ir: the verifier names the value and the rule broken") {
  ir::Graph g;
  ir::Node in;
  in.op = ir::OpKind::Input;
  in.name = "x";
  in.type = {DType::F32, {2}};
  g.add(in);
  ir::Node bad;
  bad.op = ir::OpKind::Exp;
  bad.type = {DType::F32, {3}};
  bad.operands = {0};
  g.add(bad);
  ir::Node fwd;
  fwd.op = ir::OpKind::Neg;
  fwd.type = {DType::F32, {2}};
  fwd.operands = {5};
  g.add(fwd);
  g.functions().push_back({"f", {}, {{"y", 1}}, {}});
  auto problems = ir::verifyGraph(g);
  REQUIRE(problems.size() == 3);
  CHECK(problems[0] == "%1 (exp): has type f32[3] but its rule gives f32[2]");
  CHECK(problems[1] == "%2 (neg): operand %5 is not defined before it");
  CHECK(problems[2] == "function @f: reads input %0 (input \"x\") but does not declare it");
}

TEST_CASE("ir: shape errors carry the caller's file:line and both shapes") {
  Graph g;
  Tensor x = g.input("x", {64, 784});
  Tensor w = g.param("w", {512, 10}, Init::zeros());
  int line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(matmul(x, w), fmt::format("ir_test.cpp:{}: matmul: inner dims differ (784 vs 512): lhs f32[64,784], rhs f32[512,10]", line).c_str(), Error);
  Tensor a = g.input("a", {64, 10});
  Tensor b = g.input("b", {64, 12});
  line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(a + b, fmt::format("ir_test.cpp:{}: add: cannot broadcast f32[64,10] with f32[64,12]", line).c_str(), Error);
  Tensor labels = g.input("labels", {64}, DType::I32);
  line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(exp(labels), fmt::format("ir_test.cpp:{}: exp: needs f32 operands, got i32[64]", line).c_str(), Error);
  line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(sum(a, {2}), fmt::format("ir_test.cpp:{}: sum: axis 2 out of range for f32[64,10]", line).c_str(), Error);
  line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(reshape(a, {7, -1}), fmt::format("ir_test.cpp:{}: reshape: cannot reshape f32[64,10] (640 elements) to [7,-1]", line).c_str(), Error);
  line = __LINE__ + 1;
  CHECK_THROWS_WITH_AS(g.input("x", {3}), fmt::format("ir_test.cpp:{}: input: name \"x\" is already used", line).c_str(), Error);
}
