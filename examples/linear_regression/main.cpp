// The spreadsheet lesson: fits y = w x + b to points drawn from
// y = 2x + 30 + noise with three optimizers side by side (plain SGD, SGD with
// momentum, Adam) on the same batches, and reports how many epochs each
// needed to bring the slope within 0.05 and the intercept within 0.5 of the
// truth. Links linear_regression (the generated object) and libkiln_rt only.
#include <cmath>
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include <kiln/rt/Runtime.h>

#include "Example.h"
#include "linear_regression.h"

using namespace kiln;

static constexpr int64_t kBatch = 50;
static constexpr double kSlope = 2.0, kIntercept = 30.0;
static constexpr double kSlopeTol = 0.05, kInterceptTol = 0.5;

// One optimizer's copy of the line: how to take a step and where its
// params and loss live in the model.
struct Run {
  const char* name;
  void (linear_regression::Model::*step)();
  float* (linear_regression::Model::*w)();
  float* (linear_regression::Model::*b)();
  float* (linear_regression::Model::*loss)();
  double lossSum = 0;
  int64_t reached = -1;  // first epoch from which the fit stayed within tolerance
};

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: linear_regression [options]\n"
                              "Fits y = w x + b to y = 2x + 30 + N(0, 1) noise, x ~ U(0, 10), with SGD (lr 0.025),\n"
                              "SGD with momentum 0.9 (lr 0.01) and Adam (lr 1), each lr decayed by 0.998 a step;\n"
                              "batch 50, 100 epochs (60 with --quick). --data is not used: the points are generated from --seed.\n"
                              "  --points N       how many points (default 1000)\n"
                              "  --noise S        standard deviation of the noise (default 1)\n") +
                      example::commonUsage());
    example::Common c = example::parseCommon(args, "linear_regression", 100, 60, "");
    int64_t count = args.getInt("points", 1000);
    double noise = args.getDouble("noise", 1.0);
    args.finish();
    if (count < kBatch) throw rt::Error("--points must be at least " + std::to_string(kBatch));

    // The data set: one stream for x, one for the noise.
    std::vector<float> xs(count), ys(count);
    for (int64_t i = 0; i < count; ++i) {
      xs[i] = 10.0f * rt::uniform01(c.seed, 1001, static_cast<uint64_t>(i));
      ys[i] = static_cast<float>(kSlope * xs[i] + kIntercept + noise * rt::normal01(c.seed, 1002, static_cast<uint64_t>(i)));
    }
    std::printf("linear_regression: %lld points from y = %g x + %g + N(0, %g^2), %lld epochs, seed %llu\n",
                static_cast<long long>(count), kSlope, kIntercept, noise, static_cast<long long>(c.epochs),
                static_cast<unsigned long long>(c.seed));

    // The closed-form least-squares line through these points: the best any
    // optimizer can do on them.
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int64_t i = 0; i < count; ++i) {
      sx += xs[i];
      sy += ys[i];
      sxx += static_cast<double>(xs[i]) * xs[i];
      sxy += static_cast<double>(xs[i]) * ys[i];
    }
    double n = static_cast<double>(count);
    double lsSlope = (n * sxy - sx * sy) / (n * sxx - sx * sx), lsIntercept = (sy - lsSlope * sx) / n;
    std::printf("least squares on these points: slope %.4f, intercept %.4f\n", lsSlope, lsIntercept);

    using M = linear_regression::Model;
    std::vector<Run> runs = {
        {"sgd", &M::trainSgd, &M::sgd_w, &M::sgd_b, &M::trainSgd_loss},
        {"momentum", &M::trainMomentum, &M::momentum_w, &M::momentum_b, &M::trainMomentum_loss},
        {"adam", &M::trainAdam, &M::adam_w, &M::adam_b, &M::trainAdam_loss},
    };
    M m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    auto within = [&](const Run& r) {
      return std::fabs((m.*r.w)()[0] - kSlope) <= kSlopeTol && std::fabs((m.*r.b)()[0] - kIntercept) <= kInterceptTol;
    };
    for (Run& r : runs)
      if (within(r)) r.reached = 0;

    rt::MetricsLog log(c.metricsCsv(), {"epoch", "sgd_loss", "momentum_loss", "adam_loss"});
    rt::Batcher batches(count, kBatch, c.seed);
    rt::Progress bar("training", c.epochs);
    for (int64_t e = 0; e < c.epochs; ++e) {
      batches.startEpoch(e);
      std::span<const int64_t> idx;
      int64_t steps = 0;
      for (Run& r : runs) r.lossSum = 0;
      while (batches.next(idx)) {
        for (int64_t k = 0; k < kBatch; ++k) {
          m.x()[k] = xs[idx[k]];
          m.y()[k] = ys[idx[k]];
        }
        for (Run& r : runs) {
          (m.*r.step)();
          r.lossSum += (m.*r.loss)()[0];
        }
        ++steps;
      }
      std::vector<double> row = {static_cast<double>(e + 1)};
      for (Run& r : runs) {
        row.push_back(r.lossSum / steps);
        if (!within(r)) r.reached = -1;
        else if (r.reached < 0) r.reached = e + 1;
      }
      log.row(row);
      char info[96];
      std::snprintf(info, sizeof info, "loss sgd %.3g  momentum %.3g  adam %.3g", row[1], row[2], row[3]);
      bar.update(e + 1, info);
    }
    bar.finish();

    std::printf("%-9s %8s %10s %10s  %s\n", "optimizer", "slope", "intercept", "loss", "epochs to tolerance");
    for (const Run& r : runs) {
      std::string reached = r.reached >= 0 ? std::to_string(r.reached) : "not reached";
      std::string loss = "-";  // the last epoch's mean training loss
      if (c.epochs > 0) loss = std::to_string(r.lossSum / static_cast<double>(batches.batchesPerEpoch()));
      std::printf("%-9s %8.4f %10.4f %10.10s  %s\n", r.name, (m.*r.w)()[0], (m.*r.b)()[0], loss.c_str(), reached.c_str());
    }
    std::printf("(tolerance: slope within %g of %g, intercept within %g of %g, and staying there)\n", kSlopeTol, kSlope,
                kInterceptTol, kIntercept);
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    example::finishPlots(c, "linear_regression: training loss per optimizer");
    for (const Run& r : runs) {
      std::printf("final %s slope: %.4f\n", r.name, (m.*r.w)()[0]);
      std::printf("final %s intercept: %.4f\n", r.name, (m.*r.b)()[0]);
      std::printf("final %s epochs to tolerance: %lld\n", r.name, static_cast<long long>(r.reached));
    }
    // The unqualified lines are the Adam run's.
    std::printf("final slope: %.4f\n", m.adam_w()[0]);
    std::printf("final intercept: %.4f\n", m.adam_b()[0]);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "linear_regression: %s\n", e.what());
    return 1;
  }
}
