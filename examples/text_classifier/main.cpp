// Trains the ahead-of-time compiled text classifier to tell which fortune
// file (computers, food, love, ...) a fortune comes from. Links
// text_classifier and libkiln_rt only.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include <kiln/rt/Runtime.h>
#include <kiln/rt/Text.h>

#include "Config.h"
#include "Example.h"
#include "text_classifier.h"

using namespace kiln;
using namespace textcls;

struct Doc {
  std::vector<int32_t> ids;  // at most kLen
  int32_t label = 0;
  std::string text;
};

struct Corpus {
  std::vector<Doc> train, test;
  rt::Vocabulary vocab;
};

static std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Reads the category files, drops texts that occur in more than one of them
// (their label is ambiguous), and splits each category by position: every
// fifth entry is a test text. The split depends on the files only.
static Corpus loadCorpus(const std::string& dir, const std::vector<std::string>& categories) {
  std::vector<std::vector<rt::FortuneEntry>> files;
  std::map<std::string, int> seenIn;  // text -> number of categories holding it
  for (const std::string& cat : categories) {
    files.push_back(rt::readFortunes(dir + "/" + cat));
    std::vector<std::string> texts;
    for (const rt::FortuneEntry& e : files.back()) texts.push_back(e.text);
    std::sort(texts.begin(), texts.end());
    texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
    for (const std::string& t : texts) ++seenIn[t];
  }
  Corpus c;
  std::vector<std::vector<std::string>> trainTokens, testTokens;
  for (size_t k = 0; k < files.size(); ++k) {
    int64_t j = 0;
    for (const rt::FortuneEntry& e : files[k]) {
      if (seenIn[e.text] > 1) continue;
      bool test = j++ % 5 == 4;
      (test ? c.test : c.train).push_back({{}, static_cast<int32_t>(k), e.text});
      (test ? testTokens : trainTokens).push_back(rt::tokenizeWords(e.text));
    }
  }
  c.vocab = rt::Vocabulary::build(trainTokens, 2, kVocab);
  auto encode = [&](std::vector<Doc>& docs, const std::vector<std::vector<std::string>>& tokens) {
    for (size_t i = 0; i < docs.size(); ++i) {
      docs[i].ids = c.vocab.encode(tokens[i]);
      if (docs[i].ids.size() > static_cast<size_t>(kLen)) docs[i].ids.resize(kLen);
    }
  };
  encode(c.train, trainTokens);
  encode(c.test, testTokens);
  return c;
}

// Writes document `d` into row `b` of the model's inputs.
static void setRow(text_classifier::Model& m, int64_t b, const Doc& d) {
  int32_t* w = m.words() + b * kLen;
  std::fill(w, w + kLen, kPad);
  std::copy(d.ids.begin(), d.ids.end(), w);
  m.inv_len()[b] = 1.0f / static_cast<float>(std::max<size_t>(1, d.ids.size()));
  m.label()[b] = d.label;
}

// Predicted labels of every document (the last batch padded with its first).
static std::vector<int32_t> predictAll(text_classifier::Model& m, const std::vector<Doc>& docs) {
  std::vector<int32_t> pred(docs.size());
  for (size_t start = 0; start < docs.size(); start += kBatch) {
    for (int64_t b = 0; b < kBatch; ++b) setRow(m, b, docs[start + b < docs.size() ? start + b : start]);
    m.predict();
    for (size_t b = 0; b < static_cast<size_t>(kBatch) && start + b < docs.size(); ++b)
      pred[start + b] = m.predict_label()[b];
  }
  return pred;
}

static double accuracy(const std::vector<Doc>& docs, const std::vector<int32_t>& pred) {
  int64_t correct = 0;
  for (size_t i = 0; i < docs.size(); ++i) correct += pred[i] == docs[i].label;
  return static_cast<double>(correct) / static_cast<double>(docs.size());
}

static void printConfusion(const std::vector<Doc>& docs, const std::vector<int32_t>& pred,
                           const std::vector<std::string>& names) {
  std::vector<std::vector<int64_t>> conf(kClasses, std::vector<int64_t>(kClasses, 0));
  for (size_t i = 0; i < docs.size(); ++i) ++conf[docs[i].label][pred[i]];
  std::printf("\nconfusion (rows: true category, columns: predicted)\n%-12s", "");
  for (const std::string& n : names) std::printf(" %9.9s", n.c_str());
  std::printf("   recall\n");
  for (int64_t t = 0; t < kClasses; ++t) {
    int64_t total = 0;
    std::printf("%-12.12s", names[t].c_str());
    for (int64_t p = 0; p < kClasses; ++p) std::printf(" %9lld", (long long)conf[t][p]), total += conf[t][p];
    std::printf("   %.3f\n", total ? double(conf[t][t]) / double(total) : 0.0);
  }
}

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: text_classifier [options]\n"
                              "Sorts fortunes into their category files with an embedding bag (mean of\n"
                              "64-d word vectors), dropout 0.5 and a linear layer; AdamW lr 3e-3, batch 32.\n"
                              "  --categories A,B,...  six fortune files (default computers,food,love,politics,science,sports)\n") +
                      example::commonUsage());
    example::Common c = example::parseCommon(args, "text_classifier", 12, 8, rt::kFortunesDir);
    std::vector<std::string> categories =
        splitList(args.getString("categories", "computers,food,love,politics,science,sports"));
    args.finish();
    if (static_cast<int64_t>(categories.size()) != kClasses)
      throw rt::Error(rt::strFormat("--categories: the model is compiled for %lld categories, got %zu",
                                    (long long)kClasses, categories.size()));

    Corpus corpus = loadCorpus(c.data, categories);
    std::vector<int64_t> perClass(kClasses, 0);
    for (const Doc& d : corpus.test) ++perClass[d.label];
    double majority = double(*std::max_element(perClass.begin(), perClass.end())) / double(corpus.test.size());
    std::printf("text_classifier: %zu train / %zu test texts, %lld words in the vocabulary, %lld epochs, seed %llu\n",
                corpus.train.size(), corpus.test.size(), (long long)corpus.vocab.size(), (long long)c.epochs,
                (unsigned long long)c.seed);
    for (int64_t k = 0; k < kClasses; ++k)
      std::printf("  %-10s %4lld test texts\n", categories[k].c_str(), (long long)perClass[k]);

    text_classifier::Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    rt::MetricsLog log(c.metricsCsv(), {"epoch", "train_loss", "train_accuracy", "test_accuracy"});
    rt::Batcher batches(static_cast<int64_t>(corpus.train.size()), kBatch, c.seed);
    std::vector<int32_t> pred = predictAll(m, corpus.test);
    double acc = accuracy(corpus.test, pred);
    for (int64_t e = 0; e < c.epochs; ++e) {
      batches.startEpoch(e);
      rt::Progress bar("epoch " + std::to_string(e + 1), batches.batchesPerEpoch());
      std::span<const int64_t> idx;
      double lossSum = 0;
      int64_t steps = 0;
      while (batches.next(idx)) {
        for (int64_t b = 0; b < kBatch; ++b) setRow(m, b, corpus.train[idx[b]]);
        m.trainStep();
        lossSum += m.trainStep_loss()[0];
        ++steps;
        char info[64];
        std::snprintf(info, sizeof info, "loss %.4f", lossSum / steps);
        bar.update(steps, info);
      }
      bar.finish();
      double trainAcc = accuracy(corpus.train, predictAll(m, corpus.train));
      pred = predictAll(m, corpus.test);
      acc = accuracy(corpus.test, pred);
      log.row({double(e + 1), lossSum / steps, trainAcc, acc});
      std::printf("epoch %2lld  train loss %.4f  train accuracy %.4f  test accuracy %.4f\n", (long long)(e + 1),
                  lossSum / steps, trainAcc, acc);
      std::fflush(stdout);
    }
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    printConfusion(corpus.test, pred, categories);
    std::printf("\nsome test texts:\n");
    int shown = 0;
    for (size_t i = 0; i < corpus.test.size() && shown < 6; i += 37) {
      const Doc& d = corpus.test[i];
      if (d.text.size() > 100) continue;
      std::string oneLine = d.text;
      std::replace(oneLine.begin(), oneLine.end(), '\n', ' ');
      std::replace(oneLine.begin(), oneLine.end(), '\t', ' ');
      std::printf("  [%s -> %s] %s\n", categories[d.label].c_str(), categories[pred[i]].c_str(), oneLine.c_str());
      ++shown;
    }
    example::finishPlots(c, "text_classifier");
    std::printf("final majority baseline: %.4f\n", majority);
    std::printf("final test accuracy: %.4f\n", acc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "text_classifier: %s\n", e.what());
    return 1;
  }
}
