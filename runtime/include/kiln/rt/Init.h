// Parameter initializers: fill a tensor from Random.h so that element i
// depends only on (seed, stream, i) — same bits whatever the threading.
#pragma once

#include <cstdint>
#include <string_view>

namespace kiln::rt {

/// Values are stable: generated code stores them as integers.
enum class InitKind : int32_t {
  Zeros = 0,
  Constant = 1,
  Uniform = 2,
  Normal = 3,
  XavierUniform = 4,
  HeUniform = 5,
  HeNormal = 6,
  TruncatedNormal = 7,
  XavierNormal = 8,
  Identity = 9,
  Orthogonal = 10,
  Seed = 11,
};

/// "zeros", "constant", "uniform", "normal", "xavier_uniform", "he_uniform",
/// "he_normal"; "?" for a value outside the enum.
const char* initKindName(InitKind kind);

/// Inverse of initKindName; returns false (leaving `kind` alone) if unknown.
bool parseInitKind(std::string_view name, InitKind& kind);

/// Fills data[0..n) according to `kind`:
///   Zeros          0
///   Constant       a
///   Uniform        U(a, b)
///   Normal         N(mean a, std b)
///   XavierUniform  U(-l, l), l = sqrt(6 / (fanIn + fanOut))
///   HeUniform      U(-l, l), l = sqrt(6 / fanIn)
///   HeNormal       N(0, sqrt(2 / fanIn))
///   TruncatedNormal N(mean a, std b), redrawn beyond 2 std
///   XavierNormal   N(0, sqrt(2 / (fanIn + fanOut)))
///   Identity       a * I for a fanIn x fanOut matrix
///   Orthogonal     a * (orthonormal rows or columns) of a fanIn x fanOut matrix
///   Seed           not for floats: see initSeedKey
/// Arguments a kind does not use are ignored. Throws Error if n < 0 or a fan
/// the kind needs is not positive.
void initTensor(float* data, int64_t n, InitKind kind, float a, float b,
                int64_t fanIn, int64_t fanOut, uint64_t seed, uint64_t stream);

/// Fills an i32[2] RNG key: element 0 from (seed, stream), element 1 (the
/// step counter) with 0.
void initSeedKey(int32_t* data, int64_t n, uint64_t seed, uint64_t stream);

} // namespace kiln::rt
