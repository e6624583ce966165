// The collab_filter configuration both the generator and the application
// see: the model's static shapes and its training hyperparameters.
#pragma once

#include <cstdint>

namespace collab {

inline constexpr int64_t kBatch = 1024;
inline constexpr int64_t kUsers = 943;   // MovieLens 100k's users ...
inline constexpr int64_t kItems = 1682;  // ... and items
inline constexpr int64_t kFactors = 50;
inline constexpr double kLearningRate = 2e-3;
inline constexpr double kFactorDecay = 0.05;  // L2 on the factors of each rating, in the loss
inline constexpr double kWeightDecay = 0;     // Adam's (coupled, L2) weight decay on every param

}  // namespace collab
