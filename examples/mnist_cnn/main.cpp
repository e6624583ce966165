// Trains the ahead-of-time compiled MNIST CNN (conv-pool-conv-pool-fc-fc).
// Links mnist_cnn (the generated object) and libkiln_rt only. Prints the
// time of each epoch: kiln's conv kernels are naive single-threaded loop
// nests for now, so this is the example whose speed they decide.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstring>
#include <exception>
#include <string>

#include <kiln/rt/Runtime.h>

#include "Example.h"
#include "mnist_cnn.h"

using namespace kiln;

static constexpr int64_t kBatch = 64;

// Accuracy over `ds` (the last partial batch is padded with its first
// example and only its real rows are scored).
static double evaluate(mnist_cnn::Model& m, const rt::Dataset& ds) {
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

static void truncate(rt::Dataset& ds, int64_t count) {
  ds.count = std::min(ds.count, count);
  ds.images.resize(static_cast<size_t>(ds.count * ds.features));
  ds.labels.resize(static_cast<size_t>(ds.count));
}

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: mnist_cnn [options]\n"
                              "Trains conv5x5x32-maxpool-conv5x5x64-maxpool-fc128-fc10 (relu, Adam lr 1e-3,\n"
                              "batch 64) on MNIST. --quick: the first 2,000 training and 1,000 test\n"
                              "examples, 1 epoch.\n") +
                      example::commonUsage());
    example::Common c = example::parseCommon(args, "mnist_cnn", 5, 1, "data/mnist");
    args.finish();

    rt::Dataset train = rt::loadMnist(c.data, "train");
    rt::Dataset test = rt::loadMnist(c.data, "test");
    if (c.quick) {
      truncate(train, 2000);
      truncate(test, 1000);
    }
    std::printf("mnist_cnn: %lld train / %lld test examples, %lld epochs, seed %llu\n",
                static_cast<long long>(train.count), static_cast<long long>(test.count),
                static_cast<long long>(c.epochs), static_cast<unsigned long long>(c.seed));

    mnist_cnn::Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    rt::MetricsLog log(c.metricsCsv(), {"epoch", "train_loss", "test_accuracy", "epoch_seconds", "epoch_cpu_seconds"});
    rt::Batcher batches(train.count, kBatch, c.seed);
    double acc = c.epochs == 0 ? evaluate(m, test) : 0.0;
    double totalSeconds = 0, totalCpu = 0;
    for (int64_t e = 0; e < c.epochs; ++e) {
      batches.startEpoch(e);
      rt::Progress bar("epoch " + std::to_string(e + 1), batches.batchesPerEpoch());
      std::span<const int64_t> idx;
      double lossSum = 0;
      int64_t steps = 0;
      auto t0 = std::chrono::steady_clock::now();
      std::clock_t cpu0 = std::clock();
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
      // Wall time depends on what else the machine runs; CPU time does not.
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double cpuSeconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
      totalSeconds += seconds;
      totalCpu += cpuSeconds;
      acc = evaluate(m, test);
      log.row({static_cast<double>(e + 1), lossSum / steps, acc, seconds, cpuSeconds});
      std::printf("epoch %2lld  train loss %.4f  test accuracy %.4f  %.1f s wall, %.1f s cpu (%.0f ms/step)\n",
                  static_cast<long long>(e + 1), lossSum / steps, acc, seconds, cpuSeconds,
                  1000.0 * cpuSeconds / steps);
      std::fflush(stdout);
    }
    if (c.epochs > 0)
      std::printf("training time: %.1f s wall, %.1f s cpu (%.1f s cpu/epoch)\n", totalSeconds, totalCpu,
                  totalCpu / c.epochs);
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    example::finishPlots(c, "mnist_cnn");
    std::printf("final test accuracy: %.4f\n", acc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_cnn: %s\n", e.what());
    return 1;
  }
}
