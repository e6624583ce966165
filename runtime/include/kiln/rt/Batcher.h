// Minibatch index generation with a deterministic per-epoch shuffle.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kiln::rt {

struct Dataset;

/// Splits 0..count-1 into shuffled batches of exactly `batch` indices. The
/// permutation of epoch e is a Fisher–Yates shuffle driven by Random.h from
/// (seed, e), so it is the same on every run and machine. The last partial
/// batch (count % batch examples) is dropped, so every step sees a full batch
/// and compiled models can use a fixed batch dimension; which examples are
/// dropped changes from epoch to epoch.
class Batcher {
public:
  /// Throws Error unless 0 < batch <= count. Starts epoch 0.
  Batcher(int64_t count, int64_t batch, uint64_t seed);

  /// Reshuffles for `epoch` and rewinds to the first batch.
  void startEpoch(int64_t epoch);

  /// Points `idx` at the next batch and returns true, or returns false at the
  /// end of the epoch. The span stays valid until the next startEpoch.
  bool next(std::span<const int64_t>& idx);

  int64_t batchesPerEpoch() const { return Count / Batch; }
  int64_t batchSize() const { return Batch; }
  int64_t count() const { return Count; }
  int64_t epoch() const { return Epoch; }

  /// The current epoch's whole permutation.
  std::span<const int64_t> order() const { return Order; }

private:
  int64_t Count;
  int64_t Batch;
  uint64_t Seed;
  int64_t Epoch = 0;
  int64_t Cursor = 0;
  std::vector<int64_t> Order;
};

/// Copies the examples named by `idx` into x (idx.size() * ds.features floats)
/// and their labels into y (idx.size() ints; y may be null). Throws Error for
/// an index outside the dataset.
void gatherBatch(const Dataset& ds, std::span<const int64_t> idx, float* x, int32_t* y);

} // namespace kiln::rt
