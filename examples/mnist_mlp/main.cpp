// Trains the ahead-of-time compiled MNIST MLP. Links mnist_mlp (the
// generated object) and libkiln_rt only.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include <kiln/rt/Runtime.h>

#include "mnist_mlp.h"

using namespace kiln;

static constexpr int64_t kBatch = 64;

// Accuracy over whole batches of `ds` (the remainder, if any, is scored too
// by padding the last batch with its first example).
static double evaluate(mnist_mlp::Model& m, const rt::Dataset& ds) {
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
                  "usage: mnist_mlp [--data DIR] [--epochs N] [--seed S]\n"
                  "Trains a 784-128-10 MLP (relu, Adam lr 1e-3, batch 64) on MNIST.");
    std::string dir = args.getString("data", "data/mnist");
    int64_t epochs = args.getInt("epochs", 10);
    int64_t seed = args.getInt("seed", 1);
    args.finish();
    if (epochs < 1) throw rt::Error("--epochs must be at least 1, got " + std::to_string(epochs));

    rt::Dataset train = rt::loadMnist(dir, "train");
    rt::Dataset test = rt::loadMnist(dir, "test");
    std::printf("mnist_mlp: %lld train / %lld test examples, %lld epochs, seed %lld\n",
                static_cast<long long>(train.count), static_cast<long long>(test.count),
                static_cast<long long>(epochs), static_cast<long long>(seed));

    mnist_mlp::Model m;
    m.init(static_cast<uint64_t>(seed));
    rt::Batcher batches(train.count, kBatch, static_cast<uint64_t>(seed));
    double acc = 0;
    for (int64_t e = 0; e < epochs; ++e) {
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
      std::printf("epoch %2lld  train loss %.4f  test accuracy %.4f\n", static_cast<long long>(e + 1),
                  lossSum / steps, acc);
      std::fflush(stdout);
    }
    std::printf("final test accuracy: %.4f\n", acc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_mlp: %s\n", e.what());
    return 1;
  }
}
