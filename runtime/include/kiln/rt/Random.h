// Deterministic, counter-based random numbers. Every value is a pure function
// of (seed, stream, counter), so results do not depend on thread count or call
// order and are bit-identical on every standard library (std::
// distributions are not, which is why none are used).
//
// Construction (SplitMix64 addressed by counter): a key is derived from
// (seed, stream); value = mix64(key + (counter + 1) * golden). For a fixed key
// distinct counters give distinct values, since both steps are bijections.
#pragma once

#include <cstdint>

namespace kiln::rt {

/// The SplitMix64 finalizer: a bijective 64-bit mixing function.
uint64_t mix64(uint64_t x);

/// 64 random bits for (seed, stream, counter).
uint64_t random64(uint64_t seed, uint64_t stream, uint64_t counter);

/// Uniform in [0, 1) with 24-bit resolution (every value is exactly a float).
float uniform01(uint64_t seed, uint64_t stream, uint64_t counter);

/// Standard normal via Box–Muller from two 32-bit uniforms taken from one
/// random64 draw; the radius uniform lies in (0, 1], so log(0) never occurs
/// and |result| <= 6.67.
float normal01(uint64_t seed, uint64_t stream, uint64_t counter);

/// Uniform integer in [0, n) by multiply-shift of 64 random bits; the bias is
/// at most n / 2^64. n must be > 0.
uint64_t uniformBelow(uint64_t n, uint64_t seed, uint64_t stream, uint64_t counter);

} // namespace kiln::rt
