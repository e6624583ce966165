// The text_classifier configuration the generator and the application share.
#pragma once

#include <cstdint>

namespace textcls {

inline constexpr int64_t kBatch = 32;
inline constexpr int64_t kVocab = 8192;  // most frequent training words; rarer ones are dropped
inline constexpr int64_t kLen = 128;     // words per text; longer texts are truncated
inline constexpr int64_t kDim = 64;      // embedding size
inline constexpr int64_t kClasses = 6;
inline constexpr double kDropout = 0.5;
inline constexpr double kLearningRate = 3e-3;
inline constexpr double kWeightDecay = 0.01;  // AdamW's (decoupled)
// Padding positions hold this id: the embedding's extra last row, set as its
// paddingIdx, so it reads as zeros and gets no gradient.
inline constexpr int32_t kPad = static_cast<int32_t>(kVocab);

}  // namespace textcls
