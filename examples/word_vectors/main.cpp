// Learns word vectors from the fortune-cookie files with the ahead-of-time
// compiled skip-gram model, then shows each query word's nearest neighbours
// by cosine similarity. Links word_vectors and libkiln_rt only.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <kiln/rt/Runtime.h>
#include <kiln/rt/Text.h>
#include <kiln/rt/Vectors.h>

#include "Config.h"
#include "Example.h"
#include "word_vectors.h"

using namespace kiln;
using namespace wordvec;

static constexpr int64_t kWindow = 5;           // contexts up to this far on each side (word2vec's dynamic window)
static constexpr double kSubsample = 1e-3;      // word2vec's frequent-word subsampling threshold
static constexpr int64_t kNeighbours = 5;
static constexpr int64_t kMinCount = 5;         // rarer words have too few contexts for a vector
static constexpr int64_t kRandomPairs = 20000;  // for the random-pair similarity
enum : uint64_t { kStreamSubsample = 1, kStreamWindow, kStreamShuffle, kStreamNegative, kStreamRandomPairs };

static const char* kQueries[] = {"love", "computer", "money", "god", "war", "woman", "time", "program",
                                 "president", "wine"};
// Pairs a reader would call related. Untrained vectors give each pair a
// similarity near 0, unlike the nearest-neighbour similarity, which is a
// maximum over thousands of words and is high (about 0.4) even for random
// vectors; so these pairs are the evidence that the vectors learned meaning.
static const char* kRelated[][2] = {
    {"he", "she"},       {"his", "her"},      {"man", "woman"},      {"men", "women"},   {"one", "two"},
    {"two", "three"},    {"day", "night"},    {"good", "bad"},       {"war", "peace"},   {"computer", "computers"},
    {"program", "programs"}, {"unix", "linux"}, {"husband", "wife"}, {"boy", "girl"},    {"year", "years"},
    {"first", "second"}, {"black", "white"},  {"king", "queen"},     {"wine", "beer"},   {"always", "never"}};

// Every fortune file in `dir` (the plain files that have a .dat index),
// sorted by name; under --quick only the first `limit` of them.
static std::vector<std::string> fortuneFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw rt::Error(dir + ": fortunes directory not found (install the Debian packages fortunes and fortunes-min)");
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string p = e.path().string();
    if (e.path().extension().empty() && std::filesystem::exists(p + ".dat")) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw rt::Error(dir + ": no fortune files (NAME with NAME.dat)");
  return files;
}

// The (center, context) pairs of one epoch, shuffled: frequent words are
// dropped with word2vec's probability 1 - sqrt(t/f), each kept word gets a
// window of 1..kWindow words on each side, and windows stay inside a fortune.
static void makePairs(const std::vector<std::vector<int32_t>>& sentences, const rt::Vocabulary& vocab,
                      uint64_t seed, int64_t epoch, std::vector<int32_t>& centers, std::vector<int32_t>& contexts) {
  centers.clear();
  contexts.clear();
  uint64_t es = rt::mix64(seed + static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ull);
  uint64_t draw = 0;
  std::vector<int32_t> kept;
  for (const auto& s : sentences) {
    kept.clear();
    for (int32_t w : s) {
      double f = double(vocab.count(w)) / double(vocab.totalCount());
      double keep = std::min(1.0, std::sqrt(kSubsample / f) + kSubsample / f);
      if (rt::uniform01(es, kStreamSubsample, draw++) < keep) kept.push_back(w);
    }
    for (size_t i = 0; i < kept.size(); ++i) {
      int64_t b = 1 + static_cast<int64_t>(rt::uniformBelow(kWindow, es, kStreamWindow, draw++));
      for (int64_t j = std::max<int64_t>(0, int64_t(i) - b); j <= std::min<int64_t>(kept.size() - 1, i + b); ++j)
        if (j != int64_t(i)) centers.push_back(kept[i]), contexts.push_back(kept[j]);
    }
  }
  for (size_t i = centers.size(); i > 1; --i) {
    size_t j = rt::uniformBelow(i, es, kStreamShuffle, i);
    std::swap(centers[i - 1], centers[j]);
    std::swap(contexts[i - 1], contexts[j]);
  }
}

// Cumulative unigram^0.75 weights, for drawing negatives by bisection.
static std::vector<double> noiseCdf(const rt::Vocabulary& vocab) {
  std::vector<double> cdf(vocab.size());
  double total = 0;
  for (int64_t i = 0; i < vocab.size(); ++i) cdf[i] = total += std::pow(double(vocab.count(i)), 0.75);
  for (double& c : cdf) c /= total;
  return cdf;
}

struct Similarity {
  double neighbour = 0, random = 0, related = 0;
};

// Mean cosine similarity of each query to its kNeighbours nearest words, and
// of kRandomPairs random pairs of distinct words, over the input vectors.
// Also the mean similarity of the related pairs.
static Similarity similarity(const float* table, const rt::Vocabulary& vocab, const std::vector<int32_t>& queries,
                             const std::vector<std::pair<int32_t, int32_t>>& related, bool print) {
  Similarity s;
  int64_t v = vocab.size();
  for (int32_t q : queries) {
    std::vector<rt::Neighbour> nn = rt::nearestByCosine(table, v, kDim, q, kNeighbours);
    if (print) std::printf("  %-10s", vocab.word(q).c_str());
    for (const rt::Neighbour& n : nn) {
      s.neighbour += n.similarity;
      if (print) std::printf(" %s (%.2f)", vocab.word(static_cast<int32_t>(n.row)).c_str(), n.similarity);
    }
    if (print) std::printf("\n");
  }
  s.neighbour /= double(queries.size() * kNeighbours);
  for (int64_t i = 0; i < kRandomPairs; ++i) {
    int64_t a = rt::uniformBelow(v, 7, kStreamRandomPairs, 2 * i);
    int64_t b = rt::uniformBelow(v - 1, 7, kStreamRandomPairs, 2 * i + 1);
    b += b >= a;  // distinct from a
    s.random += rt::cosineSimilarity(table + a * kDim, table + b * kDim, kDim);
  }
  s.random /= double(kRandomPairs);
  if (print) std::printf("related pairs:\n");
  for (auto [a, b] : related) {
    float sim = rt::cosineSimilarity(table + a * kDim, table + b * kDim, kDim);
    s.related += sim;
    if (print) std::printf("  %-10s %-10s %.2f\n", vocab.word(a).c_str(), vocab.word(b).c_str(), sim);
  }
  s.related /= double(std::max<size_t>(1, related.size()));
  return s;
}

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: word_vectors [options]\n"
                              "Skip-gram with negative sampling on the fortune files: 64-d vectors,\n"
                              "window 5, 5 negatives, Adam lr 1e-2, batch 1024 pairs.\n") +
                      example::commonUsage());
    example::Common c = example::parseCommon(args, "word_vectors", 5, 2, rt::kFortunesDir);
    args.finish();

    std::vector<std::string> files = fortuneFiles(c.data);
    if (c.quick) {  // --quick: the files whose name starts with a..l (about 40% of the text)
      files.erase(std::remove_if(files.begin(), files.end(),
                                 [](const std::string& f) { return std::filesystem::path(f).filename().string() > "m"; }),
                  files.end());
    }
    std::vector<std::vector<std::string>> tokens;
    for (const std::string& f : files)
      for (const rt::FortuneEntry& e : rt::readFortunes(f)) tokens.push_back(rt::tokenizeWords(e.text));
    rt::Vocabulary vocab = rt::Vocabulary::build(tokens, kMinCount, kVocab);
    std::vector<std::vector<int32_t>> sentences;
    for (const auto& t : tokens) sentences.push_back(vocab.encode(t));
    std::vector<int32_t> queries;
    for (const char* q : kQueries)
      if (int32_t id = vocab.id(q); id >= 0) queries.push_back(id);
    if (queries.empty()) throw rt::Error("none of the query words is in the vocabulary");
    std::vector<std::pair<int32_t, int32_t>> related;
    for (const auto& p : kRelated)
      if (vocab.id(p[0]) >= 0 && vocab.id(p[1]) >= 0) related.emplace_back(vocab.id(p[0]), vocab.id(p[1]));
    std::printf("word_vectors: %zu fortune files, %zu fortunes, %lld words, vocabulary %lld, %lld epochs, seed %llu\n",
                files.size(), tokens.size(), (long long)vocab.totalCount(), (long long)vocab.size(),
                (long long)c.epochs, (unsigned long long)c.seed);

    word_vectors::Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    Similarity untrained = similarity(m.in_weight(), vocab, queries, related, false);
    std::printf("before training: neighbour similarity %.4f, random similarity %.4f, related-pair similarity %.4f\n",
                untrained.neighbour, untrained.random, untrained.related);

    std::vector<double> cdf = noiseCdf(vocab);
    rt::MetricsLog log(c.metricsCsv(), {"epoch", "train_loss", "neighbour_similarity", "random_similarity", "related_similarity"});
    std::vector<int32_t> centers, contexts;
    uint64_t negDraw = 0;
    Similarity sim = untrained;
    for (int64_t e = 0; e < c.epochs; ++e) {
      makePairs(sentences, vocab, c.seed, e, centers, contexts);
      int64_t steps = static_cast<int64_t>(centers.size()) / kBatch;
      rt::Progress bar("epoch " + std::to_string(e + 1), steps);
      double lossSum = 0;
      for (int64_t s = 0; s < steps; ++s) {
        for (int64_t b = 0; b < kBatch; ++b) {
          m.center()[b] = centers[s * kBatch + b];
          m.context()[b] = contexts[s * kBatch + b];
          for (int64_t k = 0; k < kNegatives; ++k) {
            double u = rt::uniform01(c.seed, kStreamNegative, negDraw++);
            m.negatives()[b * kNegatives + k] =
                static_cast<int32_t>(std::upper_bound(cdf.begin(), cdf.end() - 1, u) - cdf.begin());
          }
        }
        m.trainStep();
        lossSum += m.trainStep_loss()[0];
        char info[64];
        std::snprintf(info, sizeof info, "loss %.4f", lossSum / (s + 1));
        bar.update(s + 1, info);
      }
      bar.finish();
      sim = similarity(m.in_weight(), vocab, queries, related, false);
      double loss = steps ? lossSum / steps : 0.0;
      log.row({double(e + 1), loss, sim.neighbour, sim.random, sim.related});
      std::printf("epoch %2lld  %lld pairs  train loss %.4f  similarity: neighbour %.4f  random %.4f  related %.4f\n",
                  (long long)(e + 1), (long long)(steps * kBatch), loss, sim.neighbour, sim.random, sim.related);
      std::fflush(stdout);
    }
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    std::printf("\nnearest neighbours (cosine similarity of the input vectors):\n");
    similarity(m.in_weight(), vocab, queries, related, true);
    example::finishPlots(c, "word_vectors");
    std::printf("final neighbour similarity: %.4f\n", sim.neighbour);
    std::printf("final random similarity: %.4f\n", sim.random);
    std::printf("final similarity margin: %.4f\n", sim.neighbour - sim.random);
    std::printf("final untrained margin: %.4f\n", untrained.neighbour - untrained.random);
    std::printf("final related-pair similarity: %.4f\n", sim.related);
    std::printf("final related margin: %.4f\n", sim.related - sim.random);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "word_vectors: %s\n", e.what());
    return 1;
  }
}
