// Logistic regression on MNIST: one linear layer and softmax cross-entropy,
// trained with SGD. Links logistic_regression (the generated object) and
// libkiln_rt only.
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <exception>
#include <string>

#include <kiln/rt/Runtime.h>

#include "Example.h"
#include "logistic_regression.h"

using namespace kiln;

static constexpr int64_t kBatch = 64;

// Accuracy over whole batches of `ds` (the remainder, if any, is scored too
// by padding the last batch with its first example).
static double evaluate(logistic_regression::Model& m, const rt::Dataset& ds) {
  int64_t correct = 0;
  for (int64_t start = 0; start < ds.count; start += kBatch) {
    for (int64_t b = 0; b < kBatch; ++b) {
      int64_t i = start + b < ds.count ? start + b : start;
      std::memcpy(m.x() + b * ds.features, ds.images.data() + i * ds.features, ds.features * sizeof(float));
    }
    m.predict();
    for (int64_t b = 0; b < kBatch && start + b < ds.count; ++b)
      correct += m.predict_label()[b] == ds.labels[start + b];
  }
  return static_cast<double>(correct) / static_cast<double>(ds.count);
}

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: logistic_regression [options]\n"
                              "Trains multinomial logistic regression (784 -> 10, softmax cross-entropy,\n"
                              "SGD lr 0.1, batch 64) on MNIST.\n") +
                      example::commonUsage());
    example::Common c = example::parseCommon(args, "logistic_regression", 20, 5, "data/mnist");
    args.finish();

    rt::Dataset train = rt::loadMnist(c.data, "train");
    rt::Dataset test = rt::loadMnist(c.data, "test");
    if (c.quick) {  // the first 2,000 training examples
      train.count = std::min<int64_t>(train.count, 2000);
      train.images.resize(static_cast<size_t>(train.count * train.features));
      train.labels.resize(static_cast<size_t>(train.count));
    }
    std::printf("logistic_regression: %lld train / %lld test examples, %lld epochs, seed %llu\n",
                static_cast<long long>(train.count), static_cast<long long>(test.count),
                static_cast<long long>(c.epochs), static_cast<unsigned long long>(c.seed));

    logistic_regression::Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    rt::MetricsLog log(c.metricsCsv(), {"epoch", "train_loss", "test_accuracy"});
    rt::Batcher batches(train.count, kBatch, c.seed);
    double acc = evaluate(m, test);
    for (int64_t e = 0; e < c.epochs; ++e) {
      batches.startEpoch(e);
      rt::Progress bar("epoch " + std::to_string(e + 1), batches.batchesPerEpoch());
      std::span<const int64_t> idx;
      double lossSum = 0;
      int64_t steps = 0;
      while (batches.next(idx)) {
        rt::gatherBatch(train, idx, m.x(), m.y());
        m.trainStep();
        lossSum += m.trainStep_loss()[0];
        ++steps;
        char info[64];
        std::snprintf(info, sizeof info, "loss %.4f", lossSum / steps);
        bar.update(steps, info);
      }
      bar.finish();
      acc = evaluate(m, test);
      log.row({static_cast<double>(e + 1), lossSum / steps, acc});
      std::printf("epoch %2lld  train loss %.4f  test accuracy %.4f\n", static_cast<long long>(e + 1),
                  lossSum / steps, acc);
      std::fflush(stdout);
    }
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    example::finishPlots(c, "logistic_regression");
    std::printf("final test accuracy: %.4f\n", acc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "logistic_regression: %s\n", e.what());
    return 1;
  }
}
