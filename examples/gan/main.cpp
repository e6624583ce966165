// Trains the ahead-of-time compiled MNIST GAN (gan model: dStep, gStep,
// sample) and judges its digits with the mnist_cnn classifier, whose
// generated model is linked here too and loaded from a checkpoint written
// by `mnist_cnn --save`. Each epoch writes a grid of samples from fixed
// noise as build/runs/gan/samples_epochNN.png (matplotlib: one
// plot_samples.py process kept open for the run).
#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
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

// Draws sample grids as PNGs through one plot_samples.py --stream process
// kept open for the run (matplotlib is imported once, not every epoch). A
// missing python or matplotlib costs the pictures, not the run.
class GridWriter {
public:
  GridWriter() {
    std::signal(SIGPIPE, SIG_IGN);  // a plotter that died makes fwrite fail instead
    std::string cmd = "/usr/bin/python3 " + shellQuote(std::string(KILN_GAN_SCRIPT_DIR) + "/plot_samples.py") +
                      " --stream 8 8";
    pipe_ = popen(cmd.c_str(), "w");
    ok_ = pipe_ != nullptr;
  }
  GridWriter(const GridWriter&) = delete;
  GridWriter& operator=(const GridWriter&) = delete;
  ~GridWriter() { close(); }

  // Queues the 64 images of one `sample` call (fixed noise, so epochs
  // compare) as run-dir/samples_epochNN.png.
  void write(gan::Model& m, const example::Common& c, int64_t epoch) {
    uint64_t counter = 0;
    fillNoise(m.z(), c.seed, kGridStream, counter);
    m.sample();
    if (!pipe_) return;
    char name[64];
    std::snprintf(name, sizeof name, "/samples_epoch%02lld.png", static_cast<long long>(epoch));
    std::string header = c.runDir + name + "\tgan samples, epoch " + std::to_string(epoch) + "\n";
    if (std::fputs(header.c_str(), pipe_) < 0 ||
        std::fwrite(m.sample_images(), sizeof(float), kBatch * kPixels, pipe_) != size_t(kBatch * kPixels) ||
        std::fflush(pipe_) != 0) {
      ok_ = false;
      close();
    }
  }
  // Waits for the plotter to draw what it was sent; false if any is missing.
  bool close() {
    if (!pipe_) return ok_;
    ok_ = pclose(pipe_) == 0 && ok_;
    pipe_ = nullptr;
    return ok_;
  }

private:
  std::FILE* pipe_ = nullptr;
  bool ok_ = false;
};

// An exponential moving average of the generator's params (Polyak
// averaging; Yazici et al. 2019 show it makes GAN samples markedly cleaner).
// Training never reads it: swap() exchanges it with the live params, so
// sampling and judging see the average and a second swap() restores them.
class GeneratorAverage {
public:
  // Every checkpointed buffer of G: its names start with "g" ("g1.w"), the
  // G step's optimizer state ("gStep.") excepted.
  explicit GeneratorAverage(gan::Model& m) {
    for (const rt::CheckpointTensor& t : m.checkpointTensors()) {
      if (t.name[0] != 'g' || t.name.starts_with("gStep.")) continue;
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      live_.emplace_back(static_cast<float*>(t.data), n);
    }
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

// Adds the CNN's verdict on the first `count` images in its input x().
static void classifyBatch(mnist_cnn::Model& cnn, int64_t count, int64_t& confident, Judgement& j) {
  cnn.predict();
  for (int64_t b = 0; b < count; ++b) {
    const float* p = cnn.predict_probs() + b * 10;
    int64_t best = std::max_element(p, p + 10) - p;
    j.meanMaxProb += p[best];
    if (p[best] >= kConfident) {
      ++confident;
      ++j.classes[static_cast<size_t>(best)];
    }
  }
}

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
    classifyBatch(cnn, std::min(kBatch, kJudged - done), confident, j);
  }
  j.confident = static_cast<double>(confident) / kJudged;
  j.meanMaxProb /= kJudged;
  return j;
}

// The same judgement of the first kJudged real test digits: what digits
// drawn like MNIST's score, for comparison.
static Judgement judgeReal(mnist_cnn::Model& cnn, const rt::Dataset& test) {
  Judgement j;
  int64_t n = std::min(kJudged, test.count), confident = 0;
  for (int64_t done = 0; done < n; done += kBatch) {
    int64_t count = std::min(kBatch, n - done);
    std::memcpy(cnn.x(), test.images.data() + done * kPixels, count * kPixels * sizeof(float));
    classifyBatch(cnn, count, confident, j);
  }
  j.confident = static_cast<double>(confident) / static_cast<double>(n);
  j.meanMaxProb /= static_cast<double>(n);
  return j;
}

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: gan [options]\n"
                              "Trains an MLP GAN on MNIST (G: z64-256-512-1024-784, batch norm, relu, tanh;\n"
                              "D: 784-512-256-1, leaky relu 0.2, dropout 0.3; Adam lr 1e-3 on a cosine to 0\n"
                              "over 100 epochs, beta1 0.5, batch 64; one D step and one G step per batch) and\n"
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
    example::Common c = example::parseCommon(args, "gan", 100, 10, "data/mnist");
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
    GridWriter grids;
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
      grids.write(m, c, e + 1);
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
    if (grids.close())
      std::printf("samples: %s/samples_epochNN.png\n", c.runDir.c_str());
    else
      std::fprintf(stderr, "note: sample grids not all written (needs /usr/bin/python3 with matplotlib)\n");
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
    Judgement real = judgeReal(cnn, rt::loadMnist(c.data, "test"));
    std::printf("for comparison, 1,000 real test digits: confident fraction %.4f, mean max class probability %.4f\n",
                real.confident, real.meanMaxProb);
    std::printf("final confident fraction: %.4f\n", j.confident);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gan: %s\n", e.what());
    return 1;
  }
}
