// Deterministic batches for the checkpoint tests (runtime only: the AOT
// programs include it too). Batch `step` differs from step to step, so a
// resumed run that replays the wrong batch is caught.
#pragma once

#include <cstdint>
#include <kiln/rt/Random.h>

namespace robust {
constexpr uint64_t kSeed = 11;
inline void fillBatch(int step, float* x, int32_t* y) {
  for (int i = 0; i < 8 * 32; ++i)
    x[i] = 2.0f * kiln::rt::uniform01(200 + static_cast<uint64_t>(step), 0, static_cast<uint64_t>(i)) - 1.0f;
  // a learnable rule, so the loss falls over a few steps
  for (int i = 0; i < 8; ++i) y[i] = (x[i * 32] > 0 ? 1 : 0) + (x[i * 32 + 1] > 0 ? 2 : 0);
}
}  // namespace robust
