// The sgemm baseline of `make bench`: OpenBLAS's cblas_sgemm on n x n
// row-major f32 matrices (c = a b), pinned to a thread count.
//
//   openblas_sgemm N [--threads T] [--warm W] [--iters I] [--reps R]
//
// Timing as kiln_bench's: W calls, then R repeats of I calls; the median of
// the repeats' mean ms per call. Prints one JSON line with ms and GFLOP/s.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "Inputs.h"

extern "C" void openblas_set_num_threads(int);
extern "C" int openblas_get_num_threads(void);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: openblas_sgemm N [--threads T] [--warm W] [--iters I] [--reps R]\n");
    return 2;
  }
  int n = std::atoi(argv[1]);
  int threads = 2, warm = 3, iters = 10, reps = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (k == "--threads") threads = v;
    else if (k == "--warm") warm = v;
    else if (k == "--iters") iters = v;
    else if (k == "--reps") reps = v;
    else {
      std::fprintf(stderr, "openblas_sgemm: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (n < 1 || iters < 1 || reps < 1) return 2;
  openblas_set_num_threads(threads);

  size_t nn = static_cast<size_t>(n) * static_cast<size_t>(n);
  std::vector<float> a(nn), b(nn), c(nn);
  bench::InputRng rng(7);
  rng.fill(a.data(), static_cast<int64_t>(nn), 1.0);
  rng.fill(b.data(), static_cast<int64_t>(nn), 1.0);
  auto call = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  };
  for (int i = 0; i < warm; ++i) call();
  std::vector<double> perRep;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) call();
    perRep.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters);
  }
  std::vector<double> s = perRep;
  std::sort(s.begin(), s.end());
  double ms = s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
  double gflops = 2.0 * n * static_cast<double>(n) * n / (ms * 1e-3) / 1e9;
  std::printf("{\"name\": \"openblas_sgemm_%d\", \"ms\": %.6g, \"gflops\": %.6g, \"threads\": %d, \"reps\": [", n, ms,
              gflops, openblas_get_num_threads());
  for (size_t i = 0; i < perRep.size(); ++i) std::printf("%s%.6g", i ? ", " : "", perRep[i]);
  std::printf("]}\n");
  return 0;
}
