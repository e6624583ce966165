// kiln's floating-point mode (rt/FloatMode.h): compiled code and the
// interpreter flush subnormal f32 to zero, as results (FTZ) and as inputs
// (DAZ), alike; the caller's mode is restored after every call; the pool's
// workers compute in the same mode.
#include <cmath>
#include <cstring>
#include <limits>

#include "TestUtil.h"
#include "kiln/rt/FloatMode.h"
#include "kiln/rt/Parallel.h"

using namespace kiln;
using kiln::test::HostTensor;

namespace {

bool isSubnormal(float x) { return x != 0.0f && std::fpclassify(x) == FP_SUBNORMAL; }

}  // namespace

#ifdef KILN_RT_HAVE_MXCSR
TEST_CASE("float mode: subnormal results and inputs are zero in compiled code and the interpreter alike") {
  // start the pool here, outside compiled code: its workers are born in the
  // default mode (a thread inherits its creator's), so the items they run
  // below flush subnormals only if they take the caller's mode per call
  auto noop = [](void*, int64_t) {};
  kiln_rt_parallel_for(8, noop, nullptr, int64_t(1) << 40);
  // n elements: 300,000 runs on the pool's threads (the workers' items too)
  for (int64_t n : {int64_t(37), int64_t(300000)}) {
    CAPTURE(n);
    Graph g;
    Tensor x = g.input("x", {n});
    Tensor s = g.input("s", {n});
    Module mod(g);
    // x * s: normal inputs whose products are subnormal; sqrt(x * x + s):
    // s subnormal as an input (DAZ reads it as 0)
    mod.addFunction("f", {x, s}, {{"p", x * s}, {"q", sqrt(x * x + s) * 2.0}});
    interp::Session ses(g.ir());
    auto jm = jit::compile(mod);
    HostTensor& xi = ses.source("x");
    HostTensor& si = ses.source("s");
    for (int64_t i = 0; i < n; ++i) {
      float xv = 1e-20f * static_cast<float>(1 + i % 7), sv = i % 2 ? 1e-20f : 3e-39f;  // 3e-39 is subnormal
      xi.f[static_cast<size_t>(i)] = jm->f32("x")[i] = xv;
      si.f[static_cast<size_t>(i)] = jm->f32("s")[i] = sv;
    }
    const unsigned before = rt::floatControl();
    ses.run("f");
    jm->run("f");
    CHECK(rt::floatControl() == before);  // the caller's mode is back, both ways
    CHECK((before & rt::kFlushDenormalBits) == 0);
    int64_t subnormals = 0, differ = 0;
    for (const char* out : {"p", "q"}) {
      const HostTensor& want = ses.output("f", out);
      const float* got = jm->f32(std::string("f.") + out);
      for (int64_t i = 0; i < n; ++i) {
        subnormals += isSubnormal(got[i]) + isSubnormal(want.f[static_cast<size_t>(i)]);
        differ += std::memcmp(&got[i], &want.f[static_cast<size_t>(i)], 4) != 0;
      }
    }
    CHECK(subnormals == 0);
    CHECK(differ == 0);
    // every product is below FLT_MIN: all zeros (a subnormal would be 1e-40)
    int64_t nonzero = 0;
    for (int64_t i = 0; i < n; ++i) nonzero += jm->f32("f.p")[i] != 0.0f;
    CHECK(nonzero == 0);
    // sqrt(x*x + s): x*x underflows, s reads as 0 when subnormal: sqrt(0)*2 = 0,
    // and 2*sqrt(1e-20) = 2e-10 where s is 1e-20
    for (int64_t i = 0; i < 4; ++i) CHECK(jm->f32("f.q")[i] == (i % 2 ? 2.0f * std::sqrt(1e-20f) : 0.0f));
  }
}

TEST_CASE("float mode: a caller that already flushes keeps its mode, and one that does not gets it back") {
  Graph g;
  Tensor x = g.input("x", {4});
  Module mod(g);
  mod.addFunction("f", {x}, {{"y", x * 0.5}});
  auto jm = jit::compile(mod);
  const unsigned base = rt::floatControl();
  {
    rt::ScopedFlushDenormals ftz;
    jm->run("f");
    CHECK(rt::floatControl() == (base | rt::kFlushDenormalBits));
  }
  CHECK(rt::floatControl() == base);
  jm->run("f");
  CHECK(rt::floatControl() == base);
}
#endif
