// Loads MNIST-style IDX image/label pairs into float tensors for training.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt {

struct Dataset {
  int64_t count = 0;           ///< Number of examples.
  int64_t features = 0;        ///< Floats per example (rows * cols).
  std::vector<float> images;   ///< count * features, pixels scaled to [0, 1].
  std::vector<int32_t> labels; ///< count labels in 0..9.
};

/// split "train" reads DIR/train-images-idx3-ubyte + DIR/train-labels-idx1-ubyte,
/// split "test" reads DIR/t10k-images-idx3-ubyte + DIR/t10k-labels-idx1-ubyte.
/// Throws Error if the files are missing (saying how to fetch them), malformed,
/// disagree in count, or hold a label outside 0..9.
Dataset loadMnist(const std::string& dir, const std::string& split);

} // namespace kiln::rt
