// Trains the ahead-of-time compiled collaborative filter on MovieLens-style
// ratings (a u.data file, or synthetic low-rank ratings), then shows what it
// learned: the items with the highest and lowest bias, an item's nearest
// neighbours by cosine similarity, and a plot of the item embeddings on their
// first two principal components. Links collab_filter and libkiln_rt only.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include <kiln/rt/Ratings.h>
#include <kiln/rt/Runtime.h>
#include <kiln/rt/Vectors.h>

#include "Config.h"
#include "Example.h"
#include "collab_filter.h"

#ifndef COLLAB_PLOT_SCRIPT
#define COLLAB_PLOT_SCRIPT "examples/collab_filter/plot_embeddings.py"
#endif

using namespace kiln;
using namespace collab;

// The split is part of the data set, not of the run: every seed trains and
// validates on the same rows.
static constexpr uint64_t kSplitSeed = 20240601;

// Mean squared error of the model's predictions over `r`, in batches (the
// last one padded with its first row, which is not scored).
static double meanSquaredError(collab_filter::Model& m, const rt::Ratings& r) {
  double sse = 0;
  for (int64_t start = 0; start < r.size(); start += kBatch) {
    for (int64_t b = 0; b < kBatch; ++b) {
      size_t i = static_cast<size_t>(start + b < r.size() ? start + b : start);
      m.user()[b] = r.users[i];
      m.item()[b] = r.items[i];
    }
    m.predict();
    for (int64_t b = 0; b < kBatch && start + b < r.size(); ++b) {
      double d = m.predict_rating()[b] - r.values[static_cast<size_t>(start + b)];
      sse += d * d;
    }
  }
  return sse / static_cast<double>(r.size());
}

// Tiny data sets (fewer training rows than one batch, like the shipped
// sample) take this many steps per epoch, each on all training rows cycled in
// a fresh order to fill the batch.
static constexpr int64_t kSmallSteps = 20;

// One training step per batch of shuffled training rows; returns the mean
// training loss.
static double trainEpoch(collab_filter::Model& m, const rt::Ratings& train, rt::Batcher& batches, int64_t epoch) {
  bool small = train.size() < kBatch;
  int64_t total = small ? kSmallSteps : batches.batchesPerEpoch();
  rt::Progress bar("epoch " + std::to_string(epoch + 1), total);
  double lossSum = 0;
  std::span<const int64_t> idx;
  for (int64_t step = 0; step < total; ++step) {
    if (small) {
      batches.startEpoch(epoch * kSmallSteps + step);  // one batch = every row, in a new order
      batches.next(idx);
    } else {
      if (step == 0) batches.startEpoch(epoch);
      batches.next(idx);
    }
    for (int64_t b = 0; b < kBatch; ++b) {
      size_t i = static_cast<size_t>(idx[static_cast<size_t>(b) % idx.size()]);
      m.user()[b] = train.users[i];
      m.item()[b] = train.items[i];
      m.rating()[b] = train.values[i];
    }
    m.trainStep();
    lossSum += m.trainStep_loss()[0];
    char info[64];
    std::snprintf(info, sizeof info, "train loss %.4f", lossSum / double(step + 1));
    bar.update(step + 1, info);
  }
  bar.finish();
  return lossSum / double(total);
}

// Pearson correlation of learned[i] and truth[i].
static double correlation(const float* learned, const std::vector<double>& truth) {
  double n = static_cast<double>(truth.size()), ml = 0, mt = 0;
  for (size_t i = 0; i < truth.size(); ++i) ml += learned[i] / n, mt += truth[i] / n;
  double slt = 0, sll = 0, stt = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    slt += (learned[i] - ml) * (truth[i] - mt);
    sll += (learned[i] - ml) * (learned[i] - ml);
    stt += (truth[i] - mt) * (truth[i] - mt);
  }
  return slt / std::sqrt(sll * stt);
}

static std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// What the embeddings learned, on the items rated at least `minCount` times
// in training (a bias or a direction learned from two ratings means little).
static void showItems(collab_filter::Model& m, const rt::Ratings& train, const std::vector<std::string>& titles,
                      const example::Common& c) {
  std::vector<int64_t> counts(kItems, 0);
  for (int32_t i : train.items) ++counts[static_cast<size_t>(i)];
  int64_t maxCount = *std::max_element(counts.begin(), counts.end());
  int64_t minCount = std::min<int64_t>(20, std::max<int64_t>(1, maxCount / 2));
  std::vector<int64_t> shown;
  std::vector<bool> allowed(kItems, false);
  for (int64_t i = 0; i < kItems; ++i)
    if (counts[static_cast<size_t>(i)] >= minCount) shown.push_back(i), allowed[static_cast<size_t>(i)] = true;
  const float* bias = m.item_bias();
  std::vector<int64_t> byBias = shown;
  std::stable_sort(byBias.begin(), byBias.end(), [&](int64_t a, int64_t b) { return bias[a] > bias[b]; });
  size_t k = std::min<size_t>(5, byBias.size());
  std::printf("\nitems rated >= %lld times in training: %zu\n", static_cast<long long>(minCount), shown.size());
  std::printf("highest item bias:\n");
  for (size_t j = 0; j < k; ++j)
    std::printf("  %+.3f  %s (%lld ratings)\n", bias[byBias[j]], titles[byBias[j]].c_str(),
                static_cast<long long>(counts[byBias[j]]));
  std::printf("lowest item bias:\n");
  for (size_t j = 0; j < k; ++j) {
    int64_t i = byBias[byBias.size() - 1 - j];
    std::printf("  %+.3f  %s (%lld ratings)\n", bias[i], titles[i].c_str(), static_cast<long long>(counts[i]));
  }
  // nearest neighbours of the most-rated item
  int64_t query = std::max_element(counts.begin(), counts.end()) - counts.begin();
  std::vector<rt::Neighbour> nn = rt::nearestByCosine(m.item_factors_weight(), kItems, kFactors, query, 5, &allowed);
  std::printf("nearest items to %s (cosine similarity):\n", titles[query].c_str());
  for (const rt::Neighbour& n : nn) std::printf("  %.3f  %s\n", n.similarity, titles[n.row].c_str());

  // raw dump for the PCA plot: item, title, ratings, bias, factors...
  std::string dump = c.runDir + "/item_embeddings.tsv";
  rt::makeDirs(c.runDir);
  std::FILE* f = std::fopen(dump.c_str(), "w");
  if (!f) throw rt::Error(dump + ": cannot write");
  for (int64_t i : shown) {
    std::string title = titles[i];
    std::replace(title.begin(), title.end(), '\t', ' ');
    std::fprintf(f, "%lld\t%s\t%lld\t%.6g", static_cast<long long>(i + 1), title.c_str(),
                 static_cast<long long>(counts[i]), bias[i]);
    for (int64_t d = 0; d < kFactors; ++d) std::fprintf(f, "\t%.6g", m.item_factors_weight()[i * kFactors + d]);
    std::fprintf(f, "\n");
  }
  std::fclose(f);
  std::string png = c.runDir + "/item_pca.png";
  std::string cmd = "/usr/bin/python3 " + shellQuote(COLLAB_PLOT_SCRIPT) + " " + shellQuote(dump) + " " +
                    shellQuote(png);
  if (std::system(cmd.c_str()) == 0)
    std::printf("item embeddings: %s, PCA plot: %s\n", dump.c_str(), png.c_str());
  else
    std::printf("item embeddings: %s (no PCA plot: needs /usr/bin/python3 with numpy and matplotlib)\n",
                dump.c_str());
}

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: collab_filter [--synthetic | --data u.data] [options]\n"
                              "Collaborative filtering: 50-factor user/item embeddings with biases,\n"
                              "sigmoidRange(0, 5.5), Adam with weight decay, batch 1024; 80/20 split.\n"
                              "  --synthetic      943 users x 1682 items, 100k ratings from a rank-5 truth\n"
                              "                   plus biases and N(0, 0.5) noise, clipped to 1..5 (from --seed);\n"
                              "                   the default when --data is not given\n"
                              "  --items FILE     item titles (u.item); default: u.item beside --data if present\n") +
                      example::commonUsage());
    example::Common c = example::parseCommon(args, "collab_filter", 15, 10, "");
    bool synthetic = args.flag("synthetic");
    std::string itemsFile = args.getString("items", "");
    args.finish();
    if (synthetic && !c.data.empty()) throw rt::Error("--synthetic and --data exclude each other");
    synthetic = c.data.empty();

    rt::Ratings all;
    rt::SyntheticTruth truth;
    if (synthetic) {
      all = rt::syntheticRatings({}, c.seed, &truth);
    } else {
      all = rt::loadUData(c.data);
      if (itemsFile.empty()) {
        std::string beside = (std::filesystem::path(c.data).parent_path() / "u.item").string();
        if (std::filesystem::exists(beside)) itemsFile = beside;
      }
    }
    if (all.numUsers > kUsers || all.numItems > kItems)
      throw rt::Error(rt::strFormat("%s: ids up to user %lld and item %lld, but the compiled model has %lld users "
                                    "and %lld items (examples/collab_filter/Config.h)",
                                    c.data.c_str(), (long long)all.numUsers, (long long)all.numItems,
                                    (long long)kUsers, (long long)kItems));
    for (float v : all.values)
      if (!(v >= 0.0f && v <= 5.5f))
        throw rt::Error(rt::strFormat("%s: rating %g is outside the model's range 0..5.5", c.data.c_str(), v));
    rt::Ratings train, val;
    rt::splitRatings(all, 0.8, kSplitSeed, train, val);
    std::vector<std::string> titles(kItems);
    for (int64_t i = 0; i < kItems; ++i) titles[i] = "item " + std::to_string(i + 1);
    // MovieLens 100k's u.item is Latin-1: titles come out as UTF-8 (with a note on stderr)
    if (!itemsFile.empty()) titles = rt::loadItemTitles(itemsFile, kItems, rt::NonUtf8::DecodeLatin1);
    std::printf("collab_filter: %s, %lld ratings (%lld train / %lld val), %lld epochs, seed %llu\n",
                synthetic ? "synthetic" : c.data.c_str(), (long long)all.size(), (long long)train.size(),
                (long long)val.size(), (long long)c.epochs, (unsigned long long)c.seed);

    // the baseline every recommender must beat: the training mean for everyone
    double trainMean = std::accumulate(train.values.begin(), train.values.end(), 0.0) / train.size();
    double baseSse = 0;
    for (float v : val.values) baseSse += (v - trainMean) * (v - trainMean);
    double baselineRmse = std::sqrt(baseSse / val.size());

    collab_filter::Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    rt::MetricsLog log(c.metricsCsv(), {"epoch", "train_loss", "val_mse", "val_rmse"});
    rt::Batcher batches(train.size(), std::min<int64_t>(train.size(), kBatch), c.seed);
    double valMse = meanSquaredError(m, val);
    for (int64_t e = 0; e < c.epochs; ++e) {
      double trainLoss = trainEpoch(m, train, batches, e);
      valMse = meanSquaredError(m, val);
      log.row({double(e + 1), trainLoss, valMse, std::sqrt(valMse)});
      std::printf("epoch %2lld  train loss %.4f  val mse %.4f  val rmse %.4f\n", (long long)(e + 1), trainLoss, valMse,
                  std::sqrt(valMse));
      std::fflush(stdout);
    }
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    showItems(m, train, titles, c);
    if (synthetic)  // the biases are in the truth: did the model find them?
      std::printf("correlation of learned and true item bias: %.3f (user bias: %.3f)\n",
                  correlation(m.item_bias(), truth.itemBias), correlation(m.user_bias(), truth.userBias));
    example::finishPlots(c, "collab_filter");
    std::printf("final baseline rmse: %.4f\n", baselineRmse);
    std::printf("final val rmse: %.4f\n", std::sqrt(valMse));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "collab_filter: %s\n", e.what());
    return 1;
  }
}
