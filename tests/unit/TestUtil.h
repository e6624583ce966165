// Helpers shared by the unit tests: deterministic random tensors, the
// interpreter-vs-JIT harness and central finite differences.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <kiln/kiln.h>
#include <kiln/rt/Random.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "interp/Interpreter.h"
#include "ir/Text.h"

namespace kiln::test {

using interp::HostTensor;

// Uniform values in [lo, hi), deterministic in (stream, index).
inline std::vector<float> randomVec(int64_t n, uint64_t stream, float lo = -1.0f, float hi = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rt::uniform01(12345, stream, static_cast<uint64_t>(i));
  return v;
}

// Fills a source of a session with deterministic values (labels in [0, classes)).
inline void fillRandom(HostTensor& t, uint64_t stream, float lo = -1.0f, float hi = 1.0f, int32_t classes = 10) {
  if (t.type.dtype == ir::DType::F32) {
    t.f = randomVec(t.size(), stream, lo, hi);
  } else {
    for (int64_t i = 0; i < t.size(); ++i)
      t.i[i] = static_cast<int32_t>(rt::uniform01(999, stream, static_cast<uint64_t>(i)) * static_cast<float>(classes));
  }
}

// Seeded integers for the random-shape tests: next(lo, hi) is uniform-ish
// in [lo, hi], the same sequence for the same seed on every machine (a
// 64-bit LCG, its high bits).
struct SeededInts {
  uint64_t state;
  int64_t operator()(int64_t lo, int64_t hi) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + static_cast<int64_t>((state >> 33) % static_cast<uint64_t>(hi - lo + 1));
  }
};

// A convolution to test: input and filter shapes and the options.
struct ConvCase {
  Shape x, w;
  Conv2dOptions o;
  std::string label() const {
    return fmt::format("x {} w {} stride {} pad {} dilation {} groups {}", fmt::join(x, "x"), fmt::join(w, "x"),
                       fmt::join(o.stride, ","), fmt::join(o.pad, ","), fmt::join(o.dilation, ","), o.groups);
  }
};

// A convolution nobody picked, for the random-shape tests: a quarter
// grouped (2 or 3 groups), channels up to maxIn and maxOut per group,
// kernels 1..5, strides 1..3, padding below the kernel, a fifth dilated
// along each axis, images of up to 9 x maxSide x maxSide.
inline ConvCase randomConvCase(SeededInts& next, int64_t maxIn, int64_t maxOut, int64_t maxSide) {
  int64_t groups = next(0, 3) == 0 ? next(1, 3) : 1;
  int64_t cin = groups * next(1, maxIn), cout = groups * next(1, maxOut);
  int64_t kh = next(1, 5), kw = next(1, 5);
  int64_t sh = next(1, 3), sw = next(1, 3), ph = next(0, kh - 1), pw = next(0, kw - 1);
  int64_t dh = next(0, 4) == 0 ? 2 : 1, dw = next(0, 4) == 0 ? 2 : 1;
  int64_t h = next(dh * (kh - 1) + 1, maxSide), w = next(dw * (kw - 1) + 1, maxSide);
  int64_t n = next(1, 9);
  return {{n, cin, h, w}, {cout, cin / groups, kh, kw}, {{sh, sw}, {ph, pw}, {dh, dw}, groups}};
}

// Fills source `name` of the interpreter session with fillRandom's values
// and copies them into the compiled module's buffer of the same name, so
// both sides start from the same bits.
inline void fillBoth(interp::Session& s, jit::CompiledModule& m, const std::string& name, uint64_t stream,
                     float lo = -1.0f, float hi = 1.0f, int32_t classes = 10) {
  HostTensor& t = s.source(name);
  fillRandom(t, stream, lo, hi, classes);
  if (t.type.dtype == ir::DType::F32) std::copy(t.f.begin(), t.f.end(), m.f32(name));
  else std::copy(t.i.begin(), t.i.end(), m.i32(name));
}

// fillBoth for each of `names`, with streams first, first + 1, ...
inline void fillBoth(interp::Session& s, jit::CompiledModule& m, std::initializer_list<std::string> names,
                     uint64_t first = 1) {
  for (const std::string& name : names) fillBoth(s, m, name, first++);
}

// Every element of `got` has the bits of the same element of `want`; a
// mismatch is reported with the count and the first index.
inline void checkSameBits(const float* got, const HostTensor& want) {
  int64_t mismatches = 0, first = -1;
  for (int64_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&got[i], &want.f[static_cast<size_t>(i)], sizeof(float)) != 0) {
      if (first < 0) first = i;
      ++mismatches;
    }
  CHECK_MESSAGE(mismatches == 0, mismatches, " mismatches, the first at element ", first);
}

// Compiles `mod` (JIT, default options), lets `fill` give the interpreter
// and the compiled module the same inputs (fillBoth), runs function `fn` on
// both and checks each of `outputs` (f32) bit for bit.
inline void checkSameBitsAsInterpreter(const Module& mod, const std::vector<std::string>& outputs,
                                       const std::function<void(interp::Session&, jit::CompiledModule&)>& fill,
                                       const std::string& fn = "f") {
  interp::Session s(mod.ir());
  auto jit = jit::compile(mod);
  fill(s, *jit);
  s.run(fn);
  jit->run(fn);
  for (const std::string& o : outputs) {
    CAPTURE(o);
    checkSameBits(jit->f32(fn + "." + o), s.output(fn, o));
  }
}

inline float maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
    if (!std::isnan(a[i])) m = std::max(m, std::fabs(a[i] - b[i]));
  }
  return m;
}

// |a-b| <= atol + rtol*|b| elementwise; reports the first failure.
inline void checkClose(const std::vector<float>& a, const std::vector<float>& b, float atol, float rtol,
                       const std::string& what) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    bool ok = std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(b[i]);
    if (!ok) {
      FAIL_CHECK(fmt::format("{}: element {} differs: {} vs {}", what, i, a[i], b[i]));
      return;
    }
  }
}

// Central finite differences of scalar `loss` with respect to every element
// of source `param`, evaluated by the interpreter with the other sources
// fixed: (loss(x+h) - loss(x-h)) / 2h.
inline std::vector<float> numericGradient(const ir::Graph& g, ir::ValueId loss, ir::ValueId param,
                                          const std::map<ir::ValueId, HostTensor>& src, float h = 1e-2f) {
  std::vector<float> numeric(src.at(param).f.size());
  for (size_t i = 0; i < numeric.size(); ++i) {
    auto plus = src, minus = src;
    plus[param].f[i] += h;
    minus[param].f[i] -= h;
    float lp = interp::evaluate(g, {loss}, plus)[0].f[0];
    float lm = interp::evaluate(g, {loss}, minus)[0].f[0];
    numeric[i] = (lp - lm) / (2 * h);
  }
  return numeric;
}

}  // namespace kiln::test
