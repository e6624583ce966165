// The compile cache across processes (test cache.fresh_process): JIT-compiles
// a small fixed model with the cache on, runs it once and exits 0 if
// whether it hit the cache matches argv[1] ("hit" or "miss") and the loss is
// the expected value. A hit in a fresh process runs no LLVM codegen at all,
// which the in-process unit tests (cache_test.cpp) cannot show.
#include <cmath>
#include <cstdio>
#include <kiln/kiln.h>
#include <string>

using namespace kiln;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kiln_cache_probe hit|miss\n");
    return 2;
  }
  Graph g;
  Module m(g);
  Tensor w = g.param("w", {3}, Init::constant(2.0));
  Tensor x = g.input("x", {3});
  m.addFunction("f", {x}, {{"y", sum(tanh(w * x))}});
  CompileOptions opts;
  opts.cache = 1;
  auto c = jit::compile(m, opts);
  c->init(1);
  float in[3] = {0.25f, -0.5f, 1.0f};
  std::copy(in, in + 3, c->f32("x"));
  c->run("f");
  float want = std::tanh(0.5f) + std::tanh(-1.0f) + std::tanh(2.0f);
  bool hit = c->compiled().stats.cacheHit;
  float y = c->f32("f.y")[0];
  std::printf("cache %s, y = %.8g (want %.8g)\n", hit ? "hit" : "miss", y, want);
  return (hit == (std::string(argv[1]) == "hit")) && std::fabs(y - want) < 1e-6f ? 0 : 1;
}
