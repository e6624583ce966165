// Shuffled minibatches: one deterministic Fisher–Yates permutation per epoch.
#include "kiln/rt/Batcher.h"

#include "kiln/rt/Error.h"
#include "kiln/rt/Mnist.h"
#include "kiln/rt/Random.h"

#include <cstring>

namespace kiln::rt {

// Keeps shuffles independent of initTensor draws made with the same seed.
static constexpr uint64_t kShuffleDomain = 0x53485546464C4521ull; // "SHUFFLE!"

Batcher::Batcher(int64_t count, int64_t batch, uint64_t seed)
    : Count(count), Batch(batch), Seed(mix64(seed ^ kShuffleDomain)) {
  if (batch <= 0)
    fail("Batcher: batch size must be positive, got %lld", (long long)batch);
  if (count < batch)
    fail("Batcher: batch size %lld exceeds dataset size %lld", (long long)batch,
         (long long)count);
  Order.resize(static_cast<size_t>(count));
  startEpoch(0);
}

void Batcher::startEpoch(int64_t epoch) {
  Epoch = epoch;
  Cursor = 0;
  for (int64_t i = 0; i < Count; ++i)
    Order[static_cast<size_t>(i)] = i;
  auto stream = static_cast<uint64_t>(epoch);
  for (int64_t i = Count - 1; i > 0; --i) {
    auto j = static_cast<int64_t>(
        uniformBelow(static_cast<uint64_t>(i + 1), Seed, stream, static_cast<uint64_t>(i)));
    std::swap(Order[static_cast<size_t>(i)], Order[static_cast<size_t>(j)]);
  }
}

bool Batcher::next(std::span<const int64_t>& idx) {
  if (Cursor + Batch > Count)
    return false;
  idx = std::span<const int64_t>(Order).subspan(static_cast<size_t>(Cursor),
                                                static_cast<size_t>(Batch));
  Cursor += Batch;
  return true;
}

void gatherBatch(const Dataset& ds, std::span<const int64_t> idx, float* x, int32_t* y) {
  auto features = static_cast<size_t>(ds.features);
  for (size_t row = 0; row < idx.size(); ++row) {
    int64_t i = idx[row];
    if (i < 0 || i >= ds.count)
      fail("gatherBatch: index %lld at batch row %zu is outside the dataset (%lld examples)",
           (long long)i, row, (long long)ds.count);
    std::memcpy(x + row * features, ds.images.data() + static_cast<size_t>(i) * features,
                features * sizeof(float));
    if (y)
      y[row] = ds.labels[static_cast<size_t>(i)];
  }
}

} // namespace kiln::rt
