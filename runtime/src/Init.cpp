// Parameter initializers driven by the counter-based generator in Random.h.
#include "kiln/rt/Init.h"

#include "kiln/rt/Error.h"
#include "kiln/rt/Random.h"

#include <cmath>
#include <iterator>
#include <vector>

namespace kiln::rt {

static const char* const kInitKindNames[] = {
    "zeros", "constant", "uniform", "normal", "xavier_uniform", "he_uniform", "he_normal",
    "truncated_normal", "xavier_normal", "identity", "orthogonal", "seed",
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

// A rows x cols matrix with orthonormal rows (or columns, whichever are
// fewer) times gain: modified Gram-Schmidt, in double, on a Gaussian matrix.
static void fillOrthogonal(float* data, int64_t n, float gain, int64_t rows, int64_t cols, uint64_t seed,
                           uint64_t stream) {
  if (rows <= 0 || cols <= 0 || rows * cols != n)
    fail("initTensor: orthogonal: %lld x %lld does not match %lld elements", static_cast<long long>(rows),
         static_cast<long long>(cols), static_cast<long long>(n));
  bool tall = rows > cols;  // orthonormalize the shorter side's vectors
  int64_t k = tall ? cols : rows, len = tall ? rows : cols;
  std::vector<double> v(static_cast<size_t>(k * len));
  for (int64_t i = 0; i < k * len; ++i) v[i] = normal01(seed, stream, static_cast<uint64_t>(i));
  for (int64_t i = 0; i < k; ++i) {
    double* vi = &v[i * len];
    for (int64_t j = 0; j < i; ++j) {
      const double* vj = &v[j * len];
      double dot = 0;
      for (int64_t t = 0; t < len; ++t) dot += vi[t] * vj[t];
      for (int64_t t = 0; t < len; ++t) vi[t] -= dot * vj[t];
    }
    double norm = 0;
    for (int64_t t = 0; t < len; ++t) norm += vi[t] * vi[t];
    norm = std::sqrt(norm);
    if (norm < 1e-12) fail("initTensor: orthogonal: degenerate draw");
    for (int64_t t = 0; t < len; ++t) vi[t] /= norm;
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      data[r * cols + c] = static_cast<float>(gain * (tall ? v[c * len + r] : v[r * len + c]));
}

void initSeedKey(int32_t* data, int64_t n, uint64_t seed, uint64_t stream) {
  if (n != 2) fail("initSeedKey: an RNG key has 2 elements, got %lld", static_cast<long long>(n));
  uint64_t bits = random64(seed, stream, 0);
  data[0] = static_cast<int32_t>(static_cast<uint32_t>(bits));  // seed half
  data[1] = 0;                                                  // step half
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
  case InitKind::TruncatedNormal:
    // Redraw (with the next counter of the element's own sequence) until
    // within 2 std; each element uses counters i, i + n, i + 2n, ...
    for (int64_t i = 0; i < n; ++i) {
      float z = 0.0f;
      for (uint64_t k = 0;; ++k) {
        z = normal01(seed, stream, static_cast<uint64_t>(i) + k * static_cast<uint64_t>(n));
        if (std::fabs(z) <= 2.0f) break;
      }
      data[i] = a + b * z;
    }
    return;
  case InitKind::XavierNormal: {
    requirePositive(kind, "fanIn + fanOut", fanIn + fanOut);
    auto stddev = static_cast<float>(std::sqrt(2.0 / static_cast<double>(fanIn + fanOut)));
    fillNormal(data, n, 0.0f, stddev, seed, stream);
    return;
  }
  case InitKind::Identity:
    requirePositive(kind, "rows", fanIn);
    requirePositive(kind, "cols", fanOut);
    if (fanIn * fanOut != n)
      fail("initTensor: identity: %lld x %lld does not match %lld elements", static_cast<long long>(fanIn),
           static_cast<long long>(fanOut), static_cast<long long>(n));
    for (int64_t i = 0; i < n; ++i)
      data[i] = (i / fanOut == i % fanOut) ? a : 0.0f;
    return;
  case InitKind::Orthogonal:
    fillOrthogonal(data, n, a, fanIn, fanOut, seed, stream);
    return;
  case InitKind::Seed:
    fail("initTensor: seed: fills i32 keys; use initSeedKey");
  }
  fail("initTensor: unknown init kind %d", static_cast<int>(kind));
}

} // namespace kiln::rt
