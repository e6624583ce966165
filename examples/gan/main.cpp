// Trains the ahead-of-time compiled MNIST GAN (gan model: dStep, gStep,
// sample) and judges its digits with the mnist_cnn classifier, whose
// generated model is linked here too and loaded from a checkpoint written
// by `mnist_cnn --save`. Each epoch writes a grid of samples from fixed
// noise as build/runs/gan/samples_epochNN.png (matplotlib, plot_samples.py).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <kiln/rt/Runtime.h>

#include "Example.h"
#include "gan.h"
#include "mnist_cnn.h"

#ifndef KILN_GAN_SCRIPT_DIR
#define KILN_GAN_SCRIPT_DIR "examples/gan"
#endif

using namespace kiln;

static constexpr int64_t kBatch = 64, kNoise = 64, kPixels = 784;
static constexpr int64_t kJudged = 1000;     // generated digits the classifier judges
static constexpr double kConfident = 0.9;    // max class probability that counts as confident
// Noise streams of rt::normal01 (the seed is --seed).
static constexpr uint64_t kTrainStream = 1, kGridStream = 2, kJudgeStream = 3;

// Fills the model's noise input with N(0, scale^2) values number counter..
// of `stream`.
static void fillNoise(float* z, uint64_t seed, uint64_t stream, uint64_t& counter, float scale = 1.0f) {
  for (int64_t i = 0; i < kBatch * kNoise; ++i) z[i] = scale * rt::normal01(seed, stream, counter++);
}

// Single-quotes `s` for /bin/sh.
static std::string shellQuote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

// Writes the 64 images of one `sample` call (fixed noise, so epochs compare)
// as an 8x8 grid PNG. A missing matplotlib costs the picture, not the run.
static void writeGrid(gan::Model& m, const example::Common& c, int64_t epoch) {
  uint64_t counter = 0;
  fillNoise(m.z(), c.seed, kGridStream, counter);
  m.sample();
  char name[64];
  std::snprintf(name, sizeof name, "samples_epoch%02lld", static_cast<long long>(epoch));
  std::string raw = c.runDir + "/samples.raw", png = c.runDir + "/" + name + ".png";
  std::FILE* f = std::fopen(raw.c_str(), "wb");
  if (!f || std::fwrite(m.sample_images(), sizeof(float), kBatch * kPixels, f) != size_t(kBatch * kPixels) ||
      std::fclose(f) != 0)
    throw rt::Error("cannot write " + raw);
  std::string cmd = "/usr/bin/python3 " + shellQuote(std::string(KILN_GAN_SCRIPT_DIR) + "/plot_samples.py") + " " +
                    shellQuote(raw) + " " + shellQuote(png) + " 8 8 " +
                    shellQuote("gan samples, epoch " + std::to_string(epoch));
  if (std::system(cmd.c_str()) != 0)
    std::fprintf(stderr, "note: no sample grid written (needs /usr/bin/python3 with matplotlib)\n");
}

// An exponential moving average of the generator's params (Polyak
// averaging; Yazici et al. 2019 show it makes GAN samples markedly cleaner).
// Training never reads it: swap() exchanges it with the live params, so
// sampling and judging see the average and a second swap() restores them.
class GeneratorAverage {
public:
  explicit GeneratorAverage(gan::Model& m)
      : live_{{m.g1_w(), gan::Model::k_g1_w_size},
              {m.g1_b(), gan::Model::k_g1_b_size},
              {m.g2_w(), gan::Model::k_g2_w_size},
              {m.g2_b(), gan::Model::k_g2_b_size}} {
    reset();
  }
  // Starts the average at the current params.
  void reset() {
    avg_.clear();
    for (auto [p, n] : live_) avg_.emplace_back(p, p + n);
    updates_ = 0;
  }
  // avg = d*avg + (1-d)*live with d = min(kDecay, (1+t)/(10+t)), so early
  // updates, when the average still holds the initial params, count more.
  void update() {
    ++updates_;
    float d = static_cast<float>(std::min(kDecay, (1.0 + updates_) / (10.0 + updates_)));
    for (size_t i = 0; i < live_.size(); ++i) {
      float* a = avg_[i].data();
      const float* p = live_[i].first;
      for (int64_t k = 0; k < live_[i].second; ++k) a[k] = d * a[k] + (1.0f - d) * p[k];
    }
  }
  void swap() {
    for (size_t i = 0; i < live_.size(); ++i)
      std::swap_ranges(live_[i].first, live_[i].first + live_[i].second, avg_[i].data());
  }

private:
  static constexpr double kDecay = 0.999;
  std::vector<std::pair<float*, int64_t>> live_;
  std::vector<std::vector<float>> avg_;
  int64_t updates_ = 0;
};

struct Judgement {
  double confident = 0;  // fraction with max class probability >= kConfident
  double meanMaxProb = 0;
  std::array<int64_t, 10> classes{};  // argmax counts over the confident ones
};

// Classifies kJudged generated digits (the same noise every time) with the
// CNN. psi < 1 shrinks the noise toward 0 (the "truncation trick": fewer
// odd digits, less variety); training always uses psi = 1.
static Judgement judge(gan::Model& m, mnist_cnn::Model& cnn, uint64_t seed, float psi = 1.0f) {
  Judgement j;
  uint64_t counter = 0;
  int64_t confident = 0;
  for (int64_t done = 0; done < kJudged; done += kBatch) {
    fillNoise(m.z(), seed, kJudgeStream, counter, psi);
    m.sample();
    std::memcpy(cnn.x(), m.sample_images(), kBatch * kPixels * sizeof(float));
    cnn.predict();
    for (int64_t b = 0; b < kBatch && done + b < kJudged; ++b) {
      const float* p = cnn.predict_probs() + b * 10;
      int64_t best = std::max_element(p, p + 10) - p;
      j.meanMaxProb += p[best];
      if (p[best] >= kConfident) {
        ++confident;
        ++j.classes[static_cast<size_t>(best)];
      }
    }
  }
  j.confident = static_cast<double>(confident) / kJudged;
  j.meanMaxProb /= kJudged;
  return j;
}

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: gan [options]\n"
                              "Trains an MLP GAN on MNIST (G: z64-256-784 tanh, D: 784-256-1, leaky relu 0.2,\n"
                              "Adam lr 2e-4 beta1 0.5, batch 64; one D step and one G step per batch) and\n"
                              "writes a grid of samples each epoch. With --classifier, the mnist_cnn model\n"
                              "classifies 1,000 generated digits: the confident fraction is the share with\n"
                              "max class probability >= 0.9. Samples come from an average of G's params.\n"
                              "--quick: 10 epochs.\n"
                              "  --classifier FILE  a checkpoint written by `mnist_cnn --save`\n"
                              "  --judge-every N    judge after every N-th epoch and the last (default 5;\n"
                              "                     with --quick only the last)\n"
                              "  --truncation PSI   also judge digits made from noise scaled by PSI < 1 at\n"
                              "                     the end (reported beside, never instead of, the metric)\n") +
                      example::commonUsage());
    example::Common c = example::parseCommon(args, "gan", 60, 10, "data/mnist");
    std::string classifier = args.getString("classifier", "");
    int64_t judgeEvery = args.getInt("judge-every", c.quick ? c.epochs + 1 : 5);  // quick: the last epoch only
    double psi = args.getDouble("truncation", 1.0);
    if (judgeEvery < 1) throw rt::Error("--judge-every must be at least 1, got " + std::to_string(judgeEvery));
    if (!(psi > 0 && psi <= 1)) throw rt::Error("--truncation must be in (0, 1], got " + std::to_string(psi));
    args.finish();

    // The classifier is loaded first, so a bad file fails before training.
    mnist_cnn::Model cnn;
    if (!classifier.empty()) cnn.load(classifier);
    rt::Dataset train = rt::loadMnist(c.data, "train");
    std::printf("gan: %lld training images, %lld epochs, seed %llu, classifier %s\n",
                static_cast<long long>(train.count), static_cast<long long>(c.epochs),
                static_cast<unsigned long long>(c.seed), classifier.empty() ? "(none)" : classifier.c_str());

    gan::Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    GeneratorAverage average(m);  // after --resume: the average restarts there
    rt::makeDirs(c.runDir);
    rt::MetricsLog log(c.metricsCsv(), {"epoch", "d_loss", "g_loss", "confident_fraction", "live_g_confident",
                                        "epoch_seconds", "epoch_cpu_seconds"});
    rt::Batcher batches(train.count, kBatch, c.seed);
    uint64_t noiseCounter = 0;
    Judgement j;
    for (int64_t e = 0; e < c.epochs; ++e) {
      batches.startEpoch(e);
      rt::Progress bar("epoch " + std::to_string(e + 1), batches.batchesPerEpoch());
      std::span<const int64_t> idx;
      double dSum = 0, gSum = 0;
      int64_t steps = 0;
      auto t0 = std::chrono::steady_clock::now();
      std::clock_t cpu0 = std::clock();
      while (batches.next(idx)) {
        rt::gatherBatch(train, idx, m.x(), nullptr);
        fillNoise(m.z(), c.seed, kTrainStream, noiseCounter);
        m.dStep();
        dSum += m.dStep_loss()[0];
        fillNoise(m.z(), c.seed, kTrainStream, noiseCounter);
        m.gStep();
        gSum += m.gStep_loss()[0];
        average.update();
        ++steps;
        char info[64];
        std::snprintf(info, sizeof info, "D %.3f  G %.3f", dSum / steps, gSum / steps);
        bar.update(steps, info);
      }
      bar.finish();
      // Wall time depends on what else the machine runs; CPU time does not.
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double cpuSeconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
      // Samples and judgements come from the averaged generator; the live
      // one's confident fraction is logged beside it for comparison.
      double confident = std::numeric_limits<double>::quiet_NaN(), liveConfident = confident;
      bool judged = !classifier.empty() && ((e + 1) % judgeEvery == 0 || e + 1 == c.epochs);
      if (judged) liveConfident = judge(m, cnn, c.seed).confident;
      average.swap();
      writeGrid(m, c, e + 1);
      if (judged) {
        j = judge(m, cnn, c.seed);
        confident = j.confident;
      }
      average.swap();
      log.row({static_cast<double>(e + 1), dSum / steps, gSum / steps, confident, liveConfident, seconds,
               cpuSeconds});
      std::printf("epoch %2lld  D loss %.4f  G loss %.4f", static_cast<long long>(e + 1), dSum / steps,
                  gSum / steps);
      if (judged) std::printf("  confident %.3f (live G %.3f)", confident, liveConfident);
      std::printf("  %.1f s wall, %.1f s cpu\n", seconds, cpuSeconds);
      std::fflush(stdout);
    }
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    example::finishPlots(c, "gan");
    std::printf("samples: %s/samples_epochNN.png\n", c.runDir.c_str());
    if (classifier.empty()) {
      std::printf("no --classifier: generated digits not judged\n");
      return 0;
    }
    if (c.epochs == 0) {  // a resumed generator: its average is itself
      j = judge(m, cnn, c.seed);
    }
    std::printf("confident digits by class:");
    for (size_t k = 0; k < 10; ++k) std::printf(" %zu:%lld", k, static_cast<long long>(j.classes[k]));
    std::printf("\nmean max class probability: %.4f\n", j.meanMaxProb);
    if (psi < 1) {
      average.swap();
      std::printf("confident fraction with noise truncated to psi %.2f: %.4f\n", psi,
                  judge(m, cnn, c.seed, static_cast<float>(psi)).confident);
      average.swap();
    }
    std::printf("final confident fraction: %.4f\n", j.confident);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gan: %s\n", e.what());
    return 1;
  }
}
