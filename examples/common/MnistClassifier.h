// The training program the MNIST classifier examples share (mnist_mlp,
// logistic_regression, mnist_bn_dropout, mnist_cnn): parse the common
// options, load MNIST, train the generated model an epoch at a time with a
// progress bar, score it on the test set, log metrics.csv, plot it, print
// `final test accuracy`. Each example's main.cpp names its generated Model
// class and describes itself in a ClassifierSpec. Header-only; links libkiln_rt.
//
// The generated Model must have: init(seed), load/save(path), inputs x()
// f32[B,784] and y() i32[B], trainStep() with output trainStep_loss() f32[],
// and predict() with output predict_label() i32[B].
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include <kiln/rt/Runtime.h>

#include "Example.h"

namespace kiln::example {

struct ClassifierSpec {
  const char* name;         // program name: usage, messages, build/runs/<name>
  const char* description;  // usage text after the "usage:" line, ending in '\n'
  int64_t epochs;           // default --epochs
  int64_t quickEpochs;      // --epochs under --quick
  int64_t quickTrain = 2000;  // --quick trains on the first quickTrain examples
  int64_t quickTest = -1;     // and tests on the first quickTest (-1: all)
  // Also log and print each epoch's wall and CPU time and the total.
  bool timing = false;
};

// Keeps the first `count` examples of `ds`.
inline void truncate(rt::Dataset& ds, int64_t count) {
  ds.count = std::min(ds.count, count);
  ds.images.resize(static_cast<size_t>(ds.count * ds.features));
  ds.labels.resize(static_cast<size_t>(ds.count));
}

// Accuracy over `ds` (the last partial batch is padded with its first
// example and only its real rows are scored).
template <class Model>
double evaluateAccuracy(Model& m, const rt::Dataset& ds) {
  constexpr int64_t kBatch = Model::k_predict_label_size;
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

// One pass over the shuffled training set; returns the mean training loss.
template <class Model>
double trainEpoch(Model& m, const rt::Dataset& train, rt::Batcher& batches, int64_t epoch) {
  batches.startEpoch(epoch);
  rt::Progress bar("epoch " + std::to_string(epoch + 1), batches.batchesPerEpoch());
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
  return lossSum / static_cast<double>(steps);
}

// The whole program: returns main's exit code (1 with a message on error).
template <class Model>
int runMnistClassifier(int argc, char** argv, const ClassifierSpec& spec) {
  try {
    rt::Args args(argc, argv, std::string("usage: ") + spec.name + " [options]\n" + spec.description + commonUsage());
    Common c = parseCommon(args, spec.name, spec.epochs, spec.quickEpochs, "data/mnist");
    args.finish();

    rt::Dataset train = rt::loadMnist(c.data, "train");
    rt::Dataset test = rt::loadMnist(c.data, "test");
    if (c.quick) {
      truncate(train, spec.quickTrain);
      if (spec.quickTest >= 0) truncate(test, spec.quickTest);
    }
    std::printf("%s: %lld train / %lld test examples, %lld epochs, seed %llu\n", spec.name,
                static_cast<long long>(train.count), static_cast<long long>(test.count),
                static_cast<long long>(c.epochs), static_cast<unsigned long long>(c.seed));

    Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    std::vector<std::string> columns{"epoch", "train_loss", "test_accuracy"};
    if (spec.timing) columns.insert(columns.end(), {"epoch_seconds", "epoch_cpu_seconds"});
    rt::MetricsLog log(c.metricsCsv(), columns);
    rt::Batcher batches(train.count, Model::k_predict_label_size, c.seed);
    double acc = c.epochs == 0 ? evaluateAccuracy(m, test) : 0.0;  // else scored after each epoch
    double totalSeconds = 0, totalCpu = 0;
    for (int64_t e = 0; e < c.epochs; ++e) {
      auto t0 = std::chrono::steady_clock::now();
      std::clock_t cpu0 = std::clock();
      double loss = trainEpoch(m, train, batches, e);
      // Wall time depends on what else the machine runs; CPU time does not.
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double cpuSeconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
      totalSeconds += seconds;
      totalCpu += cpuSeconds;
      acc = evaluateAccuracy(m, test);
      std::printf("epoch %2lld  train loss %.4f  test accuracy %.4f", static_cast<long long>(e + 1), loss, acc);
      if (spec.timing) {
        log.row({static_cast<double>(e + 1), loss, acc, seconds, cpuSeconds});
        std::printf("  %.1f s wall, %.1f s cpu (%.0f ms/step)", seconds, cpuSeconds,
                    1000.0 * cpuSeconds / static_cast<double>(batches.batchesPerEpoch()));
      } else {
        log.row({static_cast<double>(e + 1), loss, acc});
      }
      std::printf("\n");
      std::fflush(stdout);
    }
    if (spec.timing && c.epochs > 0)
      std::printf("training time: %.1f s wall, %.1f s cpu (%.1f s cpu/epoch)\n", totalSeconds, totalCpu,
                  totalCpu / static_cast<double>(c.epochs));
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    finishPlots(c, spec.name);
    std::printf("final test accuracy: %.4f\n", acc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", spec.name, e.what());
    return 1;
  }
}

}  // namespace kiln::example
