// Deterministic inputs for the AOT test (runtime only: no compiler headers).
#pragma once

#include <cstdint>
#include <kiln/rt/Random.h>

namespace tiny {
constexpr uint64_t kSeed = 7;
constexpr int kSteps = 3;
// The same batch every step, so the loss must fall.
inline void fillInputs(float* x, int32_t* y) {
  for (int i = 0; i < 4 * 6; ++i) x[i] = 2.0f * kiln::rt::uniform01(100, 0, static_cast<uint64_t>(i)) - 1.0f;
  for (int i = 0; i < 4; ++i) y[i] = i % 3;
}
}  // namespace tiny
