// Parameter initializers driven by the counter-based generator in Random.h.
#include "kiln/rt/Init.h"

#include "kiln/rt/Error.h"
#include "kiln/rt/Random.h"

#include <cmath>
#include <iterator>

namespace kiln::rt {

static const char* const kInitKindNames[] = {
    "zeros", "constant", "uniform", "normal", "xavier_uniform", "he_uniform", "he_normal",
};

const char* initKindName(InitKind kind) {
  auto i = static_cast<int32_t>(kind);
  if (i < 0 || i >= static_cast<int32_t>(std::size(kInitKindNames)))
    return "?";
  return kInitKindNames[i];
}

bool parseInitKind(std::string_view name, InitKind& kind) {
  for (size_t i = 0; i < std::size(kInitKindNames); ++i) {
    if (name == kInitKindNames[i]) {
      kind = static_cast<InitKind>(i);
      return true;
    }
  }
  return false;
}

static void fillUniform(float* data, int64_t n, float lo, float hi, uint64_t seed,
                        uint64_t stream) {
  float width = hi - lo;
  for (int64_t i = 0; i < n; ++i)
    data[i] = lo + width * uniform01(seed, stream, static_cast<uint64_t>(i));
}

static void fillNormal(float* data, int64_t n, float mean, float stddev, uint64_t seed,
                       uint64_t stream) {
  for (int64_t i = 0; i < n; ++i)
    data[i] = mean + stddev * normal01(seed, stream, static_cast<uint64_t>(i));
}

static void requirePositive(InitKind kind, const char* what, int64_t value) {
  if (value <= 0)
    fail("initTensor: %s: %s must be positive, got %lld", initKindName(kind), what,
         static_cast<long long>(value));
}

void initTensor(float* data, int64_t n, InitKind kind, float a, float b, int64_t fanIn,
                int64_t fanOut, uint64_t seed, uint64_t stream) {
  if (n < 0)
    fail("initTensor: %s: negative element count %lld", initKindName(kind),
         static_cast<long long>(n));
  if (n > 0 && !data)
    fail("initTensor: %s: null data for %lld elements", initKindName(kind),
         static_cast<long long>(n));

  switch (kind) {
  case InitKind::Zeros:
    for (int64_t i = 0; i < n; ++i)
      data[i] = 0.0f;
    return;
  case InitKind::Constant:
    for (int64_t i = 0; i < n; ++i)
      data[i] = a;
    return;
  case InitKind::Uniform:
    fillUniform(data, n, a, b, seed, stream);
    return;
  case InitKind::Normal:
    fillNormal(data, n, a, b, seed, stream);
    return;
  case InitKind::XavierUniform: {
    requirePositive(kind, "fanIn + fanOut", fanIn + fanOut);
    auto limit = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fanIn + fanOut)));
    fillUniform(data, n, -limit, limit, seed, stream);
    return;
  }
  case InitKind::HeUniform: {
    requirePositive(kind, "fanIn", fanIn);
    auto limit = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fanIn)));
    fillUniform(data, n, -limit, limit, seed, stream);
    return;
  }
  case InitKind::HeNormal: {
    requirePositive(kind, "fanIn", fanIn);
    auto stddev = static_cast<float>(std::sqrt(2.0 / static_cast<double>(fanIn)));
    fillNormal(data, n, 0.0f, stddev, seed, stream);
    return;
  }
  }
  fail("initTensor: unknown init kind %d", static_cast<int>(kind));
}

} // namespace kiln::rt
