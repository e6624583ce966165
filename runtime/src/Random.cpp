// Counter-based random numbers: SplitMix64 addressed by (seed, stream, counter).
#include "kiln/rt/Random.h"

#include <cmath>
#include <numbers>

namespace kiln::rt {

static constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
static constexpr uint64_t kStreamMul = 0xD1B54A32D192ED03ull;

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

static uint64_t streamKey(uint64_t seed, uint64_t stream) {
  // For a fixed seed, distinct streams give distinct keys (odd multiplier,
  // then bijections); the final mix spreads keys over the whole 2^64 cycle so
  // two streams' counter ranges practically never overlap.
  return mix64(mix64(seed ^ kGolden) + stream * kStreamMul + kGolden);
}

uint64_t random64(uint64_t seed, uint64_t stream, uint64_t counter) {
  return mix64(streamKey(seed, stream) + (counter + 1) * kGolden);
}

float uniform01(uint64_t seed, uint64_t stream, uint64_t counter) {
  // The top 24 bits scaled by 2^-24: exact in float, and never rounds up to 1.
  return static_cast<float>(random64(seed, stream, counter) >> 40) * 0x1.0p-24f;
}

float normal01(uint64_t seed, uint64_t stream, uint64_t counter) {
  uint64_t r = random64(seed, stream, counter);
  double u1 = static_cast<double>((r >> 32) + 1) * 0x1.0p-32; // (0, 1]
  double u2 = static_cast<double>(r & 0xFFFFFFFFull) * 0x1.0p-32; // [0, 1)
  double radius = std::sqrt(-2.0 * std::log(u1));
  return static_cast<float>(radius * std::cos(2.0 * std::numbers::pi * u2));
}

/// High 64 bits of a * b, in portable C++ (no __int128).
static uint64_t mulHigh64(uint64_t a, uint64_t b) {
  uint64_t aLo = a & 0xFFFFFFFFull, aHi = a >> 32;
  uint64_t bLo = b & 0xFFFFFFFFull, bHi = b >> 32;
  uint64_t lolo = aLo * bLo, hilo = aHi * bLo, lohi = aLo * bHi, hihi = aHi * bHi;
  uint64_t middle = (lolo >> 32) + (hilo & 0xFFFFFFFFull) + lohi;
  return hihi + (hilo >> 32) + (middle >> 32);
}

uint64_t uniformBelow(uint64_t n, uint64_t seed, uint64_t stream, uint64_t counter) {
  return mulHigh64(random64(seed, stream, counter), n);
}

} // namespace kiln::rt
