// Times the ahead-of-time compiled benchmark models (linked with libkiln_rt
// only), or checks that they compute what they should.
//
//   kiln_bench NAME [--warm W] [--iters I] [--reps R]   one JSON line: median ms per call
//   kiln_bench --check NAME                              exit 0 if the model is right
//
// Timing, as bench/torch_bench.py's: W calls, then R repeats of I calls; a
// repeat's figure is its mean ms per call and the result is the median of
// the repeats. Inputs are fixed random values (bench::InputRng), filled once.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "Inputs.h"
#include "bench_char_rnn.h"
#include "bench_cnn.h"
#include "bench_collab.h"
#include "bench_mlp_b256.h"
#include "bench_mlp_b64.h"
#include "bench_seq2seq.h"
#include "bench_sgemm_1024.h"
#include "bench_sgemm_256.h"

namespace {

constexpr uint64_t kInitSeed = 1;
constexpr uint64_t kInputSeed = 7;

using bench::InputRng;

// One benchmark model with its inputs filled.
struct Bench {
  std::function<void()> call;
  std::function<float()> loss;  // training workloads
  int64_t n = 0;                // sgemm: the matrix size
  std::function<const float*(char)> matrix;  // sgemm: 'a', 'b', 'c'
  // The loss a fresh model should start near, and how near (0: unchecked).
  double startLoss = 0, startTol = 0;
};

#define KB_FILL(m, in) rng.fill(m->in(), std::remove_reference_t<decltype(*m)>::k_##in##_size, bench::inputRange(#in))

template <typename M>
std::shared_ptr<M> fresh() {
  auto m = std::make_shared<M>();
  m->init(kInitSeed);
  return m;
}

template <typename M>
Bench train(std::shared_ptr<M> m, double startLoss = 0, double startTol = 0) {
  Bench b;
  b.call = [m] { m->trainStep(); };
  b.loss = [m] { return m->trainStep_loss()[0]; };
  b.startLoss = startLoss;
  b.startTol = startTol;
  return b;
}

template <typename M>
Bench sgemm(int64_t n) {
  auto m = fresh<M>();
  InputRng rng(kInputSeed);
  KB_FILL(m, a);
  KB_FILL(m, b);
  Bench b;
  b.call = [m] { m->forward(); };
  b.n = n;
  b.matrix = [m](char which) -> const float* { return which == 'a' ? m->a() : which == 'b' ? m->b() : m->forward_c(); };
  return b;
}

// Input ranges as bench::inputRange (Inputs.h); initial losses: ln(classes) for the
// classifiers (small initial logits), none for collab (saturated sigmoid).
bool makeBench(const std::string& name, Bench& out) {
  InputRng rng(kInputSeed);
  if (name == "mlp_b64") {
    auto m = fresh<bench_mlp_b64::Model>();
    KB_FILL(m, x);
    KB_FILL(m, y);
    out = train(m, std::log(10.0), 0.3);
  } else if (name == "mlp_b256") {
    auto m = fresh<bench_mlp_b256::Model>();
    KB_FILL(m, x);
    KB_FILL(m, y);
    out = train(m, std::log(10.0), 0.3);
  } else if (name == "cnn") {
    auto m = fresh<bench_cnn::Model>();
    KB_FILL(m, x);
    KB_FILL(m, y);
    out = train(m, std::log(10.0), 0.3);
  } else if (name == "collab") {
    auto m = fresh<bench_collab::Model>();
    KB_FILL(m, user);
    KB_FILL(m, item);
    KB_FILL(m, rating);
    out = train(m);
  } else if (name == "char_rnn") {
    auto m = fresh<bench_char_rnn::Model>();
    KB_FILL(m, xs);
    KB_FILL(m, ys);
    out = train(m, std::log(65.0), 0.05);  // logits ~ 0: Why ~ N(0, 0.01^2)
  } else if (name == "seq2seq") {
    auto m = fresh<bench_seq2seq::Model>();
    KB_FILL(m, src);
    KB_FILL(m, tgt);
    out = train(m, std::log(65.0), 0.3);
  } else if (name == "sgemm_256") {
    out = sgemm<bench_sgemm_256::Model>(256);
  } else if (name == "sgemm_1024") {
    out = sgemm<bench_sgemm_1024::Model>(1024);
  } else {
    return false;
  }
  return true;
}

int check(const std::string& name, Bench& b) {
  if (b.n > 0) {  // c = a b on sampled entries against a double-precision product
    b.call();
    const float *a = b.matrix('a'), *bm = b.matrix('b'), *c = b.matrix('c');
    InputRng pick(3);
    int bad = 0;
    for (int s = 0; s < 200; ++s) {
      int64_t i = static_cast<int64_t>(pick.next() % static_cast<uint64_t>(b.n));
      int64_t j = static_cast<int64_t>(pick.next() % static_cast<uint64_t>(b.n));
      double want = 0;
      for (int64_t k = 0; k < b.n; ++k) want += static_cast<double>(a[i * b.n + k]) * bm[k * b.n + j];
      if (!(std::fabs(c[i * b.n + j] - want) <= 1e-5 * want)) {  // positive terms: relative error is tight
        if (++bad <= 5) std::fprintf(stderr, "%s: c[%lld,%lld] = %.9g, want %.9g\n", name.c_str(),
                                     static_cast<long long>(i), static_cast<long long>(j), c[i * b.n + j], want);
      }
    }
    std::printf("%s: %d of 200 sampled entries wrong\n", name.c_str(), bad);
    return bad == 0 ? 0 : 1;
  }
  // training: the same batch 8 times; the loss is finite, starts where it
  // should and falls
  std::vector<float> losses;
  for (int s = 0; s < 8; ++s) {
    b.call();
    losses.push_back(b.loss());
  }
  std::printf("%s: losses", name.c_str());
  for (float l : losses) std::printf(" %.6f", l);
  std::printf("\n");
  bool ok = std::all_of(losses.begin(), losses.end(), [](float l) { return std::isfinite(l); });
  if (!ok) std::fprintf(stderr, "%s: a loss is not finite\n", name.c_str());
  if (b.startTol > 0 && !(std::fabs(losses[0] - b.startLoss) <= b.startTol)) {
    std::fprintf(stderr, "%s: first loss %.6f, want %.6f +- %.3f\n", name.c_str(), losses[0], b.startLoss, b.startTol);
    ok = false;
  }
  if (!(losses.back() < losses.front())) {
    std::fprintf(stderr, "%s: the loss did not fall (%.6f -> %.6f)\n", name.c_str(), losses.front(), losses.back());
    ok = false;
  }
  return ok ? 0 : 1;
}

int usage() {
  std::fprintf(stderr,
               "usage: kiln_bench NAME [--warm W] [--iters I] [--reps R]\n"
               "       kiln_bench --check NAME\n"
               "NAME: mlp_b64 mlp_b256 cnn collab char_rnn seq2seq sgemm_256 sgemm_1024\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--check") {
    Bench b;
    if (!makeBench(args[1], b)) return usage();
    return check(args[1], b);
  }
  if (args.empty()) return usage();
  std::string name = args[0];
  int warm = 3, iters = 10, reps = 5;
  for (size_t i = 1; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return usage();
    int v = std::atoi(args[i + 1].c_str());
    if (args[i] == "--warm") warm = v;
    else if (args[i] == "--iters") iters = v;
    else if (args[i] == "--reps") reps = v;
    else return usage();
  }
  if (iters < 1 || reps < 1 || warm < 0) return usage();
  Bench b;
  if (!makeBench(name, b)) return usage();

  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < warm; ++i) b.call();
  std::vector<double> perRep;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) b.call();
    perRep.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / iters);
  }
  std::vector<double> sorted = perRep;
  std::sort(sorted.begin(), sorted.end());
  size_t mid = sorted.size() / 2;
  double ms = sorted.size() % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;

  std::printf("{\"name\": \"%s\", \"ms\": %.6g, \"warm\": %d, \"iters\": %d, \"reps\": [", name.c_str(), ms, warm,
              iters);
  for (size_t i = 0; i < perRep.size(); ++i) std::printf("%s%.6g", i ? ", " : "", perRep[i]);
  std::printf("]");
  if (b.n > 0) std::printf(", \"gflops\": %.6g", 2.0 * b.n * b.n * b.n / (ms * 1e-3) / 1e9);
  if (b.loss) std::printf(", \"loss\": %.6g", b.loss());
  std::printf("}\n");
  return 0;
}
