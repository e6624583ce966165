// Elementwise kernels big enough for the runtime's threads (codegen's
// parallelElementwise / parallelRows) against the interpreter, bit for bit:
// flat ones run in chunks of elements, ones that need multi-indices (a
// broadcast bias) in ranges of their outermost dimension, a big log_softmax
// in ranges of its slices. No element's value may depend on the chunking or
// the thread count (tests/CMakeLists.txt runs these at 1 and 3 threads too).

#include <limits>

#include "TestUtil.h"

using namespace kiln;

namespace {

// f = relu(x + broadcast(b)) * 0.5 - x over x of `shape`, b of `bshape`
// (broadcast to shape), compared with the interpreter element by element
void checkBiasRelu(const Shape& shape, const Shape& bshape) {
  CAPTURE(shape.size());
  CAPTURE(shape[0]);
  Graph g;
  Tensor x = g.input("x", shape);
  Tensor b = g.input("b", bshape);
  Module mod(g);
  mod.addFunction("f", {x, b}, {{"y", relu(x + broadcastTo(b, shape)) * 0.5 - x}});
  test::checkSameBitsAsInterpreter(mod, {"y"}, [](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, "x", 11);
    test::fillBoth(s, m, "b", 12);
  });
}

}  // namespace

TEST_CASE("elementwise: threaded bias broadcasts equal the interpreter at every row split") {
  checkBiasRelu({64, 1000}, {1000});              // rows of 1000: 8 rows a chunk
  checkBiasRelu({8, 16, 20, 20}, {1, 16, 1, 1});  // a per-channel bias over a conv output
  checkBiasRelu({3, 20000}, {20000});             // rows longer than a chunk: one row each
  checkBiasRelu({1000, 33}, {1000, 1});           // 248 rows a chunk, the last chunk short
  checkBiasRelu({40, 100}, {100});                // 4,000 elements: below the threshold, one thread
}

namespace {

// y = log_softmax(x * 3, axis) over x of `shape`, against the interpreter
void checkLogSoftmax(const Shape& shape, int64_t axis) {
  CAPTURE(shape[0]);
  CAPTURE(axis);
  Graph g;
  Tensor x = g.input("x", shape);
  Module mod(g);
  mod.addFunction("f", {x}, {{"y", logSoftmax(x * 3.0, axis)}});
  test::checkSameBitsAsInterpreter(mod, {"y"},
                                   [](interp::Session& s, jit::CompiledModule& m) { test::fillBoth(s, m, "x", 13); });
}

}  // namespace

TEST_CASE("elementwise: threaded log_softmax equals the interpreter at every split of its slices") {
  checkLogSoftmax({2048, 65}, 1);     // char-RNN's stacked logits: 126 rows a chunk
  checkLogSoftmax({3, 20000}, 1);     // slices longer than a chunk: one each
  checkLogSoftmax({8, 100, 50}, 1);   // along a middle axis: 8 outer ranges of 50 inner slices
  checkLogSoftmax({300, 200}, 0);     // along the outermost axis: one outer range, not split
  checkLogSoftmax({100, 65}, 1);      // 6,500 elements: below the threshold, one thread
  checkLogSoftmax({37, 10}, 1);       // 16 rows at a time along the last axis: two groups and 5 rows
  checkLogSoftmax({16, 2}, 1);        // one group exactly
  checkLogSoftmax({15, 3}, 1);        // no full group
}

// The last-axis log_softmax runs 16 rows at once (one lane each): rows of
// NaN, +inf, -inf, -0 and huge values keep the interpreter's bits, lane
// by lane.
TEST_CASE("elementwise: log_softmax over rows with NaN, infinities and signed zeros equals the interpreter") {
  Graph g;
  Tensor x = g.input("x", {40, 9});
  Module mod(g);
  mod.addFunction("f", {x}, {{"y", logSoftmax(x, 1)}});
  test::checkSameBitsAsInterpreter(mod, {"y"}, [](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, "x", 21, -5.0f, 5.0f);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const std::pair<int, float> special[] = {{0, nan},      {9 + 3, inf},   {18 + 8, -inf}, {27, -0.0f},
                                             {28, 0.0f},    {36 + 1, 3e38f}, {45, -3e38f},  {90 + 4, nan},
                                             {90 + 5, inf}, {99 + 2, -inf}, {99 + 3, -inf}};
    for (auto [at, v] : special) {
      s.source("x").f[static_cast<size_t>(at)] = v;
      m.f32("x")[at] = v;
    }
    for (int k = 0; k < 9; ++k) {  // a row of -inf only, and one of +inf only
      s.source("x").f[static_cast<size_t>(18 * 9 + k)] = m.f32("x")[18 * 9 + k] = -inf;
      s.source("x").f[static_cast<size_t>(19 * 9 + k)] = m.f32("x")[19 * 9 + k] = inf;
    }
  });
}

namespace {

// y = exp(scatter_along(src, idx, axis)) * 2 - 1 (and -scatter) with one index per slice:
// the scatter is evaluated inside the consumer's kernel (passes/Fusion.h),
// and must give src's element (plus zero: a -0 becomes +0) where idx names
// the position, else 0; also its row sums (a reduction over the scatter)
void checkOneHotScatter(const Shape& shape, int64_t axis, int32_t classes) {
  CAPTURE(shape[0]);
  CAPTURE(axis);
  Shape idxShape = shape;
  idxShape[static_cast<size_t>(axis)] = 1;
  Graph g;
  Tensor src = g.input("src", idxShape);
  Tensor idx = g.input("idx", idxShape, DType::I32);
  Module mod(g);
  Tensor sc = scatterAlongAxis(src, idx, axis, shape);
  mod.addFunction("f", {src, idx}, {{"y", exp(sc) * 2.0 - 1.0}, {"n", -sc}, {"s", sum(sc * 3.0, {axis}, true)}});
  // n: -(+0) = -0 shows whether a -0 source was kept
  test::checkSameBitsAsInterpreter(mod, {"y", "n", "s"}, [&](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, "src", 21);
    test::fillBoth(s, m, "idx", 22, 0.0f, 1.0f, classes);
    // a -0 among the sources: the scatter adds it to +0
    s.source("src").f[0] = -0.0f;
    m.f32("src")[0] = -0.0f;
  });
}

}  // namespace

TEST_CASE("elementwise: a scatter_along with one index per slice evaluated in its consumers equals the interpreter") {
  checkOneHotScatter({2048, 65}, 1, 65);  // the stacked cross-entropy gradient: threaded rows
  checkOneHotScatter({40, 10}, 1, 10);    // small: one thread
  checkOneHotScatter({7, 30}, 0, 7);      // along the outer axis
}

namespace {

// y = tanh(gather(table, idx) + x): the gather is evaluated inside the
// consumer's kernel (passes/Fusion.h), each element the table row the
// index names; also read by two consumers and under a matmul's epilogue
void checkGatherInline(const Shape& tableShape, const Shape& idxShape) {
  CAPTURE(tableShape.size());
  CAPTURE(idxShape.size());
  Shape outShape = idxShape;
  outShape.insert(outShape.end(), tableShape.begin() + 1, tableShape.end());
  Graph g;
  Tensor table = g.input("table", tableShape);
  Tensor idx = g.input("idx", idxShape, DType::I32);
  Tensor x = g.input("x", outShape);
  Module mod(g);
  Tensor e = gather(table, idx);
  std::vector<Tensor> ins{table, idx, x};
  std::vector<std::pair<std::string, Tensor>> outs{{"y", tanh(e + x)}, {"z", e * x}};
  if (outShape.size() == 2) {  // an RNN step: tanh(e + x W)
    Tensor w = g.input("w", {outShape[1], outShape[1]});
    ins.push_back(w);
    outs.push_back({"r", tanh(e + matmul(x, w))});
  }
  mod.addFunction("f", ins, outs);
  std::vector<std::string> names;
  for (const auto& [name, t] : outs) names.push_back(name);
  test::checkSameBitsAsInterpreter(mod, names, [&](interp::Session& s, jit::CompiledModule& m) {
    test::fillBoth(s, m, "table", 31);
    test::fillBoth(s, m, "idx", 32, 0.0f, 1.0f, static_cast<int32_t>(tableShape[0]));
    test::fillBoth(s, m, "x", 33);
    if (outShape.size() == 2) test::fillBoth(s, m, "w", 34);
  });
}

}  // namespace

TEST_CASE("elementwise: a gather evaluated in its consumers equals the interpreter") {
  checkGatherInline({65, 256}, {32});      // a char-RNN step's embedding, under the GEMM epilogue too
  checkGatherInline({65, 256}, {2048});    // stacked: threaded rows
  checkGatherInline({10, 3, 5}, {4, 6});   // a 3-D table and 2-D indices
}

namespace {

// s = sum(relu(x) * x, axes) and m = reduce_max(x, axes) over x of `shape`:
// big reductions that keep a dim run over ranges of it; each output's
// inputs must still be combined in row-major order
void checkReduce(const Shape& shape, const std::vector<int64_t>& axes) {
  CAPTURE(shape.size());
  CAPTURE(axes.size());
  Graph g;
  Tensor x = g.input("x", shape);
  Module mod(g);
  mod.addFunction("f", {x}, {{"s", sum(relu(x) * x, axes, true)}, {"m", reduceMax(x, axes)}});
  test::checkSameBitsAsInterpreter(mod, {"s", "m"},
                                   [](interp::Session& s, jit::CompiledModule& m) { test::fillBoth(s, m, "x", 41); });
}

}  // namespace

TEST_CASE("elementwise: threaded reductions equal the interpreter at every split of a kept dim") {
  checkReduce({64, 32, 28, 28}, {0, 2, 3});  // a conv bias gradient: 32 channels over the threads
  checkReduce({2048, 256}, {0});             // a bias gradient: kept dim 1 is the innermost, one thread
  checkReduce({40, 64, 16}, {1});            // kept dim 0 over runs of 64 x 16 floats
  checkReduce({2048, 65}, {1});              // row sums: kept dim 0
  checkReduce({3, 40000}, {1});              // 3 rows: fewer indices than threads
  checkReduce({100000}, {0});                // a full reduction: nothing kept, one thread
  checkReduce({40, 100}, {0});               // 4,000 elements: below the threshold
}

// More reduction shapes: kept extents that split unevenly over the threads,
// several trailing reduced dims, reduced dims on both sides of a kept one.
TEST_CASE("elementwise: reductions of uneven and mixed shapes equal the interpreter") {
  checkReduce({64, 19, 28, 28}, {0, 2, 3});  // 19 channels over the threads
  checkReduce({2051, 65}, {1});              // row sums, an odd number of rows
  checkReduce({9, 4, 30}, {1, 2});           // two trailing reduced dims, one thread
  checkReduce({5, 12, 6, 7}, {0, 2, 3});     // a reduced dim before the kept one, one thread
  checkReduce({3, 8, 2, 5}, {0, 3});         // kept, kept, reduced on both sides
}

// A sum of a buffer over every dim but one (a conv's bias gradient) runs a
// vector of outputs at a time, one output per lane, each lane gathering its
// own inputs in row-major order (Emitter::laneReduce). Shapes: whole vectors
// of outputs and vector tails (19, 37, 33 outputs), the kept dim first or
// between reduced ones, and NaN, infinities and signed zeros in some lanes'
// chains (an inf + -inf lane turns NaN; -0 + -0 stays -0). The sum of a
// product (a fused tree) and two kept dims take the general path.
TEST_CASE("elementwise: sums kept along one dim, a lane per output, equal the interpreter") {
  const Shape shapes[] = {{64, 32, 28, 28}, {64, 19, 28, 28}, {8, 37, 20, 20}, {5, 33, 9, 30}, {40, 1000}};
  for (const Shape& shape : shapes) {
    CAPTURE(shape.size());
    CAPTURE(shape[1]);
    const std::vector<int64_t> axes =
        shape.size() == 2 ? std::vector<int64_t>{1} : std::vector<int64_t>{0, 2, 3};
    Graph g;
    Tensor x = g.input("x", shape);
    Module mod(g);
    mod.addFunction("f", {x}, {{"s", sum(x, axes)}, {"p", sum(x * x, axes)}});
    test::checkSameBitsAsInterpreter(mod, {"s", "p"}, [&](interp::Session& s, jit::CompiledModule& m) {
      test::fillBoth(s, m, "x", 43);
      const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
      const int64_t inner = shape.size() == 2 ? 1 : shape[2] * shape[3];
      auto at = [&](int64_t outer, int64_t c, int64_t pos) {  // element pos of output c's inputs in image `outer`
        return shape.size() == 2 ? c * shape[1] + pos : (outer * shape[1] + c) * inner + pos;
      };
      const std::pair<int64_t, float> special[] = {
          {at(0, 1, 3), nan}, {at(0, 2, 0), inf}, {at(1, 2, 5), -inf}, {at(0, 3, 7), inf}};
      for (auto [i, v] : special) s.source("x").f[static_cast<size_t>(i)] = m.f32("x")[i] = v;
      // output 5's inputs all -0 (only in the 2-D shape, where they are contiguous)
      if (shape.size() == 2)
        for (int64_t k = 0; k < shape[1]; ++k) s.source("x").f[static_cast<size_t>(at(0, 5, k))] = m.f32("x")[at(0, 5, k)] = -0.0f;
    });
  }
}
