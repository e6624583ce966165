// Index inputs are validated at the entry-point boundary on every call: an
// out-of-range label or id is an error naming the input, the position and
// the value, and nothing is computed (params are not touched).
#include "TestUtil.h"

using namespace kiln;

TEST_CASE("robustness: an out-of-range label is reported before the step runs") {
  Graph g;
  Tensor x = g.input("x", {4, 3});
  Tensor y = g.input("y", {4}, DType::I32);
  Linear l(g, "l", 3, 5);
  Module m(g);
  int line = __LINE__ + 1;
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(l(x), y)), SGD{0.1});
  auto jit = jit::compile(m);
  jit->init(1);
  int32_t labels[4] = {0, 4, 7, 1};
  std::copy(labels, labels + 4, jit->i32("y"));
  std::vector<float> before(jit->f32("l.w"), jit->f32("l.w") + 15);
  std::string want = fmt::format("trainStep: input \"y\" element 2 is 7, outside [0, 5) (indices for take_along at "
                                 "index_check_test.cpp:{}); nothing was computed", line);
  CHECK_THROWS_WITH_AS(jit->run("trainStep"), doctest::Contains(want.c_str()), rt::Error);
  CHECK(std::vector<float>(jit->f32("l.w"), jit->f32("l.w") + 15) == before);
  jit->i32("y")[2] = 2;
  CHECK_NOTHROW(jit->run("trainStep"));
  jit->i32("y")[0] = -1;
  CHECK_THROWS_WITH_AS(jit->run("trainStep"), doctest::Contains("element 0 is -1, outside [0, 5)"), rt::Error);
}

TEST_CASE("robustness: embedding ids are checked against the table, through reshapes") {
  Graph g;
  Tensor ids = g.input("ids", {2, 3}, DType::I32);
  Embedding emb(g, "emb", 10, 4);
  Module m(g);
  m.addFunction("f", {ids}, {{"v", emb(reshape(ids, {6}))}});
  auto jit = jit::compile(m);
  jit->init(1);
  for (int i = 0; i < 6; ++i) jit->i32("ids")[i] = i;
  CHECK_NOTHROW(jit->run("f"));
  jit->i32("ids")[5] = 10;
  CHECK_THROWS_WITH_AS(jit->run("f"), doctest::Contains("f: input \"ids\" element 5 is 10, outside [0, 10) (indices for gather"),
                       rt::Error);
}
