// Ratings data for collaborative filtering: a loader for MovieLens' u.data
// format (user, item, rating, timestamp; tab-separated; ids from 1), the item
// titles of u.item, a synthetic low-rank generator and a fixed split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/rt/Utf8.h"

namespace kiln::rt {

/// Ratings as parallel arrays. Ids are 0-based here (the file's id - 1).
struct Ratings {
  std::vector<int32_t> users;
  std::vector<int32_t> items;
  std::vector<float> values;
  int64_t numUsers = 0; ///< largest user id in the file (ids need not be dense)
  int64_t numItems = 0;
  int64_t size() const { return static_cast<int64_t>(values.size()); }
};

/// Reads a u.data file: one rating per line, four fields separated by tabs
/// (or spaces): user id >= 1, item id >= 1, a finite rating, a timestamp
/// (integer >= 0). Throws Error naming "file:line" for a row with the wrong
/// field count, a malformed or out-of-range field, and for a file that cannot
/// be opened or holds no ratings.
Ratings loadUData(const std::string& path);

/// Reads u.item ("id|title|..." per line) and returns `numItems` titles, in
/// UTF-8, by 0-based item; items the file does not name get "item N", ids
/// past numItems are skipped. MovieLens 100k's u.item is Latin-1: by default
/// a file that is not UTF-8 is decoded as Latin-1 with a note on stderr
/// ("u.item: not UTF-8 (...); decoded as Latin-1"); NonUtf8::Reject refuses it
/// with file:line and byte offset instead (Utf8.h). Throws Error (file:line)
/// for a line without an integer id >= 1 before its first '|', and for an id
/// given twice.
std::vector<std::string> loadItemTitles(const std::string& path, int64_t numItems,
                                        NonUtf8 nonUtf8 = NonUtf8::DecodeLatin1);

/// The synthetic ratings of the collab_filter example:
///   r = mean + userBias[u] + itemBias[i] + U[u] . V[i] + noise, clipped to
///   [minRating, maxRating], with U, V rank `rank`, entries N(0, factorStd),
///   biases N(0, userBiasStd / itemBiasStd), noise N(0, noiseStd).
/// `count` distinct (user, item) pairs drawn uniformly. A pure function of
/// the options and `seed`.
struct SyntheticRatingsOptions {
  int64_t numUsers = 943;
  int64_t numItems = 1682;
  int64_t count = 100000;
  int64_t rank = 5;
  double mean = 3.5;
  double factorStd = 0.6;
  double userBiasStd = 0.3;
  double itemBiasStd = 0.5;
  double noiseStd = 0.5;
  double minRating = 1.0;
  double maxRating = 5.0;
};
/// The truth behind synthetic ratings, for checking what a model learned.
struct SyntheticTruth {
  std::vector<double> userBias, itemBias;
};
Ratings syntheticRatings(const SyntheticRatingsOptions& opts, uint64_t seed, SyntheticTruth* truth = nullptr);

/// Splits into train and validation by a fixed pseudo-random permutation of
/// the rows (a function of `splitSeed` only, so every run of a data set uses
/// the same split): the first round(trainFraction * n) rows of it train.
void splitRatings(const Ratings& all, double trainFraction, uint64_t splitSeed, Ratings& train,
                  Ratings& val);

} // namespace kiln::rt
