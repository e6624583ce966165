// The word_vectors configuration the generator and the application share.
#pragma once

#include <cstdint>

namespace wordvec {

inline constexpr int64_t kBatch = 1024;   // (center, context) pairs per step
inline constexpr int64_t kVocab = 8192;   // most frequent words (seen >= 5 times)
inline constexpr int64_t kDim = 64;
inline constexpr int64_t kNegatives = 5;  // negative samples per pair
inline constexpr double kLearningRate = 1e-2;  // Adam

}  // namespace wordvec
