// Inputs of the checked-mode model (CheckedModel.h) and where it overflows,
// for the JIT test and the AOT program alike (no compiler headers here).
#pragma once

#include <cmath>

namespace checked_model {

inline constexpr float kX[4] = {0.5f, 1.0f, 2.0f, 0.25f};

// The call of trainStep (from 1) whose exp first overflows, and where:
// the same SGD steps in float on the host.
struct Overflow {
  int call = 0;
  int element = -1;
};
inline Overflow expectedOverflow() {
  float w[4] = {1, 1, 1, 1};
  for (int call = 1; call < 100; ++call) {
    float e[4];
    for (int i = 0; i < 4; ++i) e[i] = std::exp(w[i] * kX[i]);
    for (int i = 0; i < 4; ++i)
      if (!std::isfinite(e[i])) return {call, i};
    for (int i = 0; i < 4; ++i) w[i] -= 10.0f * (-kX[i] * e[i] / 4.0f);
  }
  return {};
}

}  // namespace checked_model
