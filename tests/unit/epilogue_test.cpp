// GEMM epilogues (passes/Fusion.h, codegen/Gemm.cpp): a matmul whose one
// consumer is an elementwise chain of its shape runs as a GEMM that writes C
// into the chain's output buffer, and every finished tile is overwritten by
// the chain's values while it is hot. Against the interpreter, bit for bit,
// on shapes that reach each way the GEMM hands out tiles: few rows with B
// read in place (k in one block, passed in slices), one row block with the
// panels packed in the tile, several row blocks after a packing pass, k in
// several 256-deep blocks (the epilogue must run in the last one only),
// row and column tails and transposed operands. A conv2d's epilogue (its
// bias and activation) runs on each image's output right after the image's
// GEMMs; its cases cover groups, strides, padding, dilation and 1x1 convs.
// Also run at 1 and 3 threads (tests/CMakeLists.txt).

#include "TestUtil.h"

#include <fmt/ranges.h>

#include "lower/Plan.h"
#include "passes/Passes.h"

using namespace kiln;

namespace {

struct EpiCase {
  int64_t m, k, n;
  bool ta, tb;
};

// y = tanh(op(a) op(b) + broadcast(bias) + r) * 0.5 - r, r another input
// of y's shape: the epilogue reads a broadcast, a second buffer and its own
// C, and the chain is three maps deep
void checkEpilogue(const EpiCase& c) {
  CAPTURE(c.m);
  CAPTURE(c.k);
  CAPTURE(c.n);
  CAPTURE(c.ta);
  CAPTURE(c.tb);
  Graph g;
  Tensor a = g.input("a", c.ta ? Shape{c.k, c.m} : Shape{c.m, c.k});
  Tensor b = g.input("b", c.tb ? Shape{c.n, c.k} : Shape{c.k, c.n});
  Tensor bias = g.input("bias", {c.n});
  Tensor r = g.input("r", {c.m, c.n});
  Module mod(g);
  Tensor y = tanh(matmul(a, b, c.ta, c.tb) + broadcastTo(bias, {c.m, c.n}) + r) * 0.5 - r;
  mod.addFunction("f", {a, b, bias, r}, {{"y", y}});
  test::checkSameBitsAsInterpreter(mod, {"y"}, [](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, {"a", "b", "bias", "r"});
  });
}

}  // namespace

TEST_CASE("epilogue: a matmul feeding an elementwise chain is fused into the chain's kernel") {
  Graph g;
  Tensor a = g.input("a", {32, 64});
  Tensor w = g.input("w", {64, 48});
  Tensor bias = g.input("bias", {48});
  Module mod(g);
  Tensor z = matmul(a, w);
  mod.addFunction("f", {a, w, bias}, {{"y", relu(z + broadcastTo(bias, {32, 48}))}});
  ir::Graph ig = g.ir();
  passes::runPasses(ig, passes::defaultPipeline(), true);
  lower::ModulePlan p = lower::planModule(ig);
  REQUIRE(p.functions.size() == 1);
  REQUIRE(p.functions[0].kernels.size() == 1);  // the relu, with the matmul in it
  const lower::Kernel& k = p.functions[0].kernels[0];
  ir::ValueId mm = lower::epilogueProduct(ig, k);
  REQUIRE(mm >= 0);
  CHECK(ig.node(mm).op == ir::OpKind::MatMul);
  CHECK(p.offsetOf[mm] < 0);  // no buffer of its own: C lives in the relu's
  CHECK(k.scratchBytes == lower::kernelScratchBytes(ig, mm));
  CHECK_FALSE(lower::isFlatElementwise(ig, k));  // never a member of a fused loop
}

TEST_CASE("epilogue: fused GEMM epilogues equal the interpreter bit for bit at every tiling") {
  const EpiCase shapes[] = {
      {32, 256, 256, false, false},  // few rows, B in place, one k block
      {32, 600, 256, false, false},  // few rows, k passed in three slices
      {37, 70, 65, false, false},    // row tail 5, a narrow tail panel
      {64, 784, 128, false, false},  // the MLP's first layer: k in four blocks
      {200, 300, 100, false, false}, // two row blocks, a packing pass, k in two blocks
      {1, 5, 3, false, false},       // one row
  };
  for (EpiCase c : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        c.ta = ta;
        c.tb = tb;
        checkEpilogue(c);
      }
}

namespace {

// no epilogue for a product read by several kernels, or by one that is not
// an elementwise map of its shape (a reduction, a broadcast)
void checkNotFused(const std::function<std::vector<std::pair<std::string, Tensor>>(Tensor)>& uses) {
  Graph g;
  Tensor a = g.input("a", {8, 16});
  Tensor w = g.input("w", {16, 8});
  Module mod(g);
  std::vector<std::pair<std::string, Tensor>> outs = uses(matmul(a, w));
  mod.addFunction("f", {a, w}, outs);
  ir::Graph ig = g.ir();
  passes::runPasses(ig, passes::defaultPipeline(), true);
  lower::ModulePlan p = lower::planModule(ig);
  for (const lower::Kernel& k : p.functions[0].kernels) CHECK(lower::epilogueProduct(ig, k) < 0);
  std::vector<std::string> names;
  for (const auto& [name, t] : outs) names.push_back(name);
  test::checkSameBitsAsInterpreter(mod, names, [](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, {"a", "w"}, 5);
  });
}

}  // namespace

TEST_CASE("epilogue: a matmul read by several kernels, a reduction or a broadcast keeps its own kernel") {
  checkNotFused([](Tensor z) { return std::vector<std::pair<std::string, Tensor>>{{"y", exp(z)}, {"u", relu(z)}}; });
  checkNotFused([](Tensor z) { return std::vector<std::pair<std::string, Tensor>>{{"s", exp(sum(z))}}; });
  checkNotFused(
      [](Tensor z) { return std::vector<std::pair<std::string, Tensor>>{{"b", exp(broadcastTo(z, {3, 8, 8}))}}; });
}

// Shapes nobody picked: 16 seeded random (M, K, N, ta, tb) up to 300 x 600 x
// 300, a quarter with K = 1024. 120 such shapes (two seeds, 2 and 3
// threads) passed once.
TEST_CASE("epilogue: random shapes equal the interpreter bit for bit") {
  test::SeededInts next{2026};
  for (int i = 0; i < 16; ++i) {
    EpiCase c{next(1, 300), next(1, 600), next(1, 300), next(0, 1) == 1, next(0, 1) == 1};
    if (next(0, 3) == 0) c.k = 1024;
    checkEpilogue(c);
  }
}

namespace {

using test::ConvCase;

// y = tanh(conv2d(x, w) + bias (per channel, as the Conv2d layer adds it) +
// r) * 0.5 - r: the conv's epilogue reads a broadcast, a second buffer of
// y's shape and its own C
void checkConvEpilogue(const ConvCase& c) {
  CAPTURE(c.label());
  Graph g;
  Tensor x = g.input("x", c.x);
  Tensor w = g.input("w", c.w);
  Tensor bias = g.input("bias", {c.w[0]});
  Tensor z = conv2d(x, w, c.o);
  Tensor r = g.input("r", g.ir().type(z.id()).shape);
  Module mod(g);
  Tensor y = tanh(z + reshape(bias, {1, c.w[0], 1, 1}) + r) * 0.5 - r;
  mod.addFunction("f", {x, w, bias, r}, {{"y", y}});
  ir::Graph ig = g.ir();
  passes::runPasses(ig, passes::defaultPipeline(), true);
  lower::ModulePlan p = lower::planModule(ig);
  int fused = 0;
  for (const lower::Kernel& k : p.functions[0].kernels)
    if (ir::ValueId pr = lower::epilogueProduct(ig, k); pr >= 0 && ig.node(pr).op == ir::OpKind::Conv2d) ++fused;
  CHECK(fused == 1);
  test::checkSameBitsAsInterpreter(mod, {"y"}, [](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, {"x", "w", "bias", "r"});
  });
}

}  // namespace

TEST_CASE("epilogue: a conv2d feeding its bias and relu is fused into their kernel") {
  Graph g;
  Tensor x = g.input("x", {4, 3, 12, 12});
  Tensor w = g.input("w", {8, 3, 5, 5});
  Tensor bias = g.input("bias", {8});
  Module mod(g);
  mod.addFunction("f", {x, w, bias}, {{"y", relu(conv2d(x, w, {.pad = {2, 2}}) + reshape(bias, {1, 8, 1, 1}))}});
  ir::Graph ig = g.ir();
  passes::runPasses(ig, passes::defaultPipeline(), true);
  lower::ModulePlan p = lower::planModule(ig);
  REQUIRE(p.functions.size() == 1);
  REQUIRE(p.functions[0].kernels.size() == 1);  // the relu, with the conv in it
  const lower::Kernel& k = p.functions[0].kernels[0];
  ir::ValueId cv = lower::epilogueProduct(ig, k);
  REQUIRE(cv >= 0);
  CHECK(ig.node(cv).op == ir::OpKind::Conv2d);
  CHECK(p.offsetOf[cv] < 0);  // no buffer of its own: C lives in the relu's
  CHECK(k.scratchBytes == lower::kernelScratchBytes(ig, cv));
  CHECK_FALSE(lower::isFlatElementwise(ig, k));
  test::checkSameBitsAsInterpreter(mod, {"y"}, [](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, {"x", "w", "bias"}, 7);
  });
}

TEST_CASE("epilogue: a conv2d read by two kernels keeps its own buffer") {
  Graph g;
  Tensor x = g.input("x", {2, 3, 9, 9});
  Tensor w = g.input("w", {4, 3, 3, 3});
  Module mod(g);
  Tensor z = conv2d(x, w);
  mod.addFunction("f", {x, w}, {{"a", relu(z)}, {"b", exp(z)}});
  ir::Graph ig = g.ir();
  passes::runPasses(ig, passes::defaultPipeline(), true);
  lower::ModulePlan p = lower::planModule(ig);
  for (const lower::Kernel& k : p.functions[0].kernels) CHECK(lower::epilogueProduct(ig, k) < 0);
  test::checkSameBitsAsInterpreter(mod, {"a", "b"}, [](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, {"x", "w"}, 5);
  });
}

TEST_CASE("epilogue: conv2d epilogues equal the interpreter bit for bit") {
  const ConvCase cases[] = {
      {{64, 1, 28, 28}, {32, 1, 5, 5}, {.pad = {2, 2}}},   // the cnn benchmark's first layer, threaded
      {{3, 8, 14, 14}, {16, 8, 5, 5}, {.pad = {2, 2}}},    // k = 200
      {{2, 6, 7, 9}, {6, 2, 3, 3}, {.groups = 3}},         // groups: the epilogue after the image's last group
      {{2, 5, 10, 10}, {7, 5, 1, 1}, {}},                  // 1x1: the direct path
      {{2, 3, 11, 13}, {5, 3, 3, 2}, {.stride = {2, 3}, .pad = {1, 1}, .dilation = {2, 1}}},
      {{1, 2, 3, 3}, {3, 2, 3, 3}, {}},                    // one output pixel per channel
  };
  for (const ConvCase& c : cases) checkConvEpilogue(c);
}

// Shapes nobody picked: 10 seeded random convolutions (as conv_test's
// random shapes) with the epilogue.
TEST_CASE("epilogue: conv2d epilogues of random shapes equal the interpreter bit for bit") {
  test::SeededInts next{77};
  for (int i = 0; i < 10; ++i) checkConvEpilogue(test::randomConvCase(next, 24, 40, 32));
}
