// The packed GEMM (codegen/Gemm.cpp) against the interpreter, to the last
// bit, on shapes chosen to reach every edge of its blocking: rows that are
// not a multiple of the micro-kernel's 8, columns not a multiple of its
// panel width (32 with AVX-512, 16 with AVX), k spanning several 256-deep
// blocks with a remainder, all four transpose variants and a batch. Both
// sides compute each element as one fused multiply-add chain over k
// ascending, so any packing or indexing slip shows as a mismatch.

#include "TestUtil.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

struct GemmCase {
  int64_t batch, m, k, n;
  bool ta, tb;
};

// asGiven: compiled with dce alone, so the product is the one written (the
// batch pass reorients a transposed-A product with a column tail); cpu: a
// target other than the host (the AVX2 code: 8-lane vectors, 16-column
// panels)
void checkGemm(const GemmCase& c, bool asGiven = false, const std::string& cpu = "") {
  CAPTURE(c.batch);
  CAPTURE(c.m);
  CAPTURE(c.k);
  CAPTURE(c.n);
  CAPTURE(c.ta);
  CAPTURE(c.tb);
  Graph g;
  auto dims = [&](int64_t r, int64_t cols) {
    Shape s;
    if (c.batch > 1) s.push_back(c.batch);
    s.push_back(r);
    s.push_back(cols);
    return s;
  };
  Tensor a = g.input("a", dims(c.ta ? c.k : c.m, c.ta ? c.m : c.k));
  Tensor b = g.input("b", dims(c.tb ? c.n : c.k, c.tb ? c.k : c.n));
  Module mod(g);
  mod.addFunction("f", {a, b}, {{"c", matmul(a, b, c.ta, c.tb)}});
  interp::Session s(g.ir());
  CompileOptions opts;
  if (asGiven) opts.passes = {"dce"};
  opts.targetCpu = cpu;
  auto jit = jit::compile(mod, opts);
  test::fillBoth(s, *jit, "a", 1);
  test::fillBoth(s, *jit, "b", 2);
  s.run("f");
  jit->run("f");
  const HostTensor& want = s.output("f", "c");
  REQUIRE(want.size() == c.batch * c.m * c.n);
  test::checkSameBits(jit->f32("f.c"), want);
}

// every case under all four (ta, tb) combinations
template <size_t N>
void checkAllTransposes(const GemmCase (&shapes)[N]) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (GemmCase c : shapes) {
        c.ta = ta;
        c.tb = tb;
        checkGemm(c);
      }
}

}  // namespace

TEST_CASE("gemm: the packed GEMM equals the interpreter bit for bit at every blocking edge") {
  const GemmCase shapes[] = {
      {1, 1, 1, 1, false, false},     {1, 6, 256, 32, false, false},  {1, 7, 257, 33, false, false},
      {1, 5, 3, 15, false, false},    {1, 13, 600, 47, false, false}, {1, 64, 784, 128, false, false},
      {1, 12, 512, 64, false, false}, {1, 2, 1, 100, false, false},   {1, 31, 70, 17, false, false},
  };
  checkAllTransposes(shapes);
  checkGemm({3, 7, 300, 40, false, false});
  checkGemm({2, 9, 33, 65, true, true});
}

// The packing paths: transposed B is packed in VW x VW blocks transposed in
// registers plus a one-element k remainder, and the panels are packed by the
// tile that uses them when all rows fit one 128-row block, else by a pass of
// their own. A is packed too when transposed or when its rows are 4 KB
// apart, given N > 96. Shapes reach k remainders 0 .. 15, column
// tails of 1 and 31, one and several row blocks, and sizes large enough to
// run on the thread pool (over 2 MFLOP per k block).
TEST_CASE("gemm: packing of transposed and plain B at k and column remainders, one or several row blocks") {
  const GemmCase shapes[] = {
      {1, 3, 15, 33, false, false},    {1, 5, 16, 32, false, false},   {1, 4, 17, 31, false, false},
      {1, 8, 31, 65, false, false},    {1, 6, 47, 1, false, false},    {1, 32, 256, 256, false, false},
      {1, 32, 65, 256, false, false},  {1, 96, 100, 70, false, false}, {1, 97, 271, 97, false, false},
      {1, 200, 300, 64, false, false}, {1, 130, 33, 129, false, false}, {1, 128, 40, 100, false, false},
      {1, 129, 70, 33, false, false},
  };
  checkAllTransposes(shapes);
  checkGemm({3, 40, 70, 50, false, true});
  // An item that packs its own panel (one row block, or 8 or more panels
  // of few rows) and reads A in place runs every k block itself, packing
  // the panel a 256-deep slice at a time: several slices with a remainder,
  // one and two row blocks, a tail panel.
  const GemmCase ownK[] = {{1, 64, 784, 100, false, false}, {1, 200, 600, 260, false, false},
                           {1, 100, 513, 300, false, false}, {1, 300, 700, 257, false, false}};
  for (bool tb : {false, true})
    for (GemmCase c : ownK) {
      c.tb = tb;
      checkGemm(c);
    }
  // A packed as rows (lda a multiple of 1024) with one and several row blocks
  checkGemm({1, 13, 1024, 100, false, false});
  checkGemm({1, 101, 1024, 130, false, true});
}

// Row tails of a packed transposed A (k-major micro-panels of 8 rows, used
// with 4 or more panels and k > 128 or k lines 1 KB apart): M mod 8 of 3, 5,
// 6 and 7 runs a 2- or 1-row piece that starts mid-panel, after the 4-row
// (or 2-row) piece. Until 2026-11-23 those pieces read the panel's first
// rows instead: wrong results, silently. The shapes with k <= 128 read the
// same A in place.
TEST_CASE("gemm: row tails of a packed transposed A start at their own lane of the micro-panel") {
  const GemmCase shapes[] = {
      {1, 806, 64, 196, true, false}, {1, 103, 300, 130, true, false}, {1, 135, 70, 200, true, true},
      {1, 11, 40, 97, true, false},   {1, 13, 33, 128, true, true},    {1, 262, 17, 160, true, false},
      // the same with k > 128, where transposed A is packed (above it is read
      // in place: few k lines, not 1 KB apart)
      {1, 806, 200, 196, true, false}, {1, 135, 170, 200, true, true}, {1, 11, 140, 97, true, false},
      {1, 13, 133, 128, true, true},   {1, 262, 129, 160, true, false},
  };
  for (const GemmCase& c : shapes) checkGemm(c);
}

// A tail panel of 1 to 4 columns of a transposed A read in place goes by
// row vectors: 32 rows at a time (C gathered and scattered once per k
// block), the last rows mod 32 one vector per row. Shapes: row counts below,
// at and past 32 and 128, tails of 1 to 4 columns and of 5 (the one-vector
// kernel again), k in one block and in two (C reloaded), both B layouts.
TEST_CASE("gemm: narrow tail panels of a transposed A go by row vectors") {
  const GemmCase shapes[] = {
      {1, 800, 64, 196, true, false}, {1, 31, 40, 33, true, false},  {1, 32, 40, 34, true, true},
      {1, 33, 300, 35, true, false},  {1, 100, 7, 36, true, true},   {1, 200, 300, 65, true, false},
      {1, 64, 64, 37, true, false},   {1, 130, 513, 100, true, true}, {1, 5, 20, 3, true, false},
  };
  for (const GemmCase& c : shapes) checkGemm(c, true);
}

// The AVX2 code (compiled for haswell, run here when the host has AVX2 and
// FMA): 8-lane vectors, 16-column panels, so other tails and edges than the
// AVX-512 code's, through every kernel above.
TEST_CASE("gemm: the AVX2 code equals the interpreter bit for bit") {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
  const GemmCase shapes[] = {
      {1, 7, 257, 33, false, false},  {1, 64, 784, 100, false, false}, {1, 13, 600, 47, false, true},
      {1, 800, 64, 196, true, false}, {1, 33, 300, 19, true, true},   {1, 130, 513, 100, true, false},
      {1, 32, 576, 64, false, false}, {1, 806, 200, 196, true, false}, {2, 9, 33, 65, true, true},
  };
  for (const GemmCase& c : shapes) checkGemm(c, true, "haswell");
}

// With at most 48 rows, untransposed B in full panels and A read in place,
// nothing is packed and k is one block that each tile passes in 256-deep
// slices, storing and reloading C between them. Shapes: k just over one
// slice, several slices with a remainder, 48 rows (the limit) and 49 (the
// packed path again), large enough to run on the pool, and a batch.
TEST_CASE("gemm: unpacked products of few rows pass k in slices") {
  const GemmCase shapes[] = {
      {1, 32, 257, 256, false, false}, {1, 32, 576, 256, false, false}, {1, 48, 1000, 64, false, false},
      {1, 49, 600, 64, false, false},  {1, 7, 513, 32, false, false},   {2, 20, 300, 96, false, false},
  };
  checkAllTransposes(shapes);
}

// A 2-D f32 transpose that is a kernel of its own (here a function's output;
// the batch pass makes one for a shared weight) is emitted as blocks of
// VW x VW transposed in registers, masked at the edges: rows and columns
// below, at and past multiples of 16 and 8.
TEST_CASE("gemm: a transpose kernel equals the interpreter at block edges") {
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 17}, {16, 16}, {8, 40}, {33, 70}, {256, 320}};
  for (auto [rows, cols] : shapes) {
    CAPTURE(rows);
    CAPTURE(cols);
    Graph g;
    Tensor a = g.input("a", {rows, cols});
    Module mod(g);
    mod.addFunction("f", {a}, {{"t", transpose(a)}});
    interp::Session s(g.ir());
    auto jit = jit::compile(mod);
    test::fillBoth(s, *jit, "a", 3);
    s.run("f");
    jit->run("f");
    const HostTensor& want = s.output("f", "t");
    REQUIRE(want.size() == rows * cols);
    test::checkSameBits(jit->f32("f.t"), want);
  }
}

// Shapes nobody picked: 30 seeded random (M, K, N, ta, tb) up to 300 x 600 x
// 300, a third with K = 1024 and some batched. The hand-picked cases above
// missed the packed-A row-tail bug; 150 such shapes pass, checked once.
TEST_CASE("gemm: random shapes equal the interpreter bit for bit") {
  test::SeededInts next{12345};
  for (int i = 0; i < 30; ++i) {
    GemmCase c{1, next(1, 300), next(1, 600), next(1, 300), next(0, 1) == 1, next(0, 1) == 1};
    if (next(0, 3) == 0) c.k = 1024;
    if (next(0, 5) == 0) c.batch = 2;
    checkGemm(c);
  }
}
