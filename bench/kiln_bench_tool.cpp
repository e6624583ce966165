// The benchmark's kiln-linked helper (bench/run.py and the bench-check tests):
//
//   kiln_bench_tool compile NAME   JIT-compiles the workload once with default options;
//                                  JSON: seconds in jit::compile (graph building and autodiff
//                                  not included), kernels, LLVM time
//   kiln_bench_tool flops NAME     JSON: the matmul/conv FLOPs of one call of the timed function
//                                  as built and differentiated (before the passes: the work an
//                                  eager framework does too)
//   kiln_bench_tool interp NAME    one JIT call and one interpreter call from the same seed and
//                                  inputs agree (two for training workloads); exit 0 if so
//   kiln_bench_tool gemm M N K [ta tb] [calls]
//                                  JIT-compiles one matmul op(A)[M,K] op(B)[K,N] (ta/tb 0 or 1:
//                                  the GEMM reads the operand transposed; no passes but dce, so
//                                  the product is the one given) and times it: JSON with the median of 5 repeats of `calls`
//                                  calls (default 1000) in microseconds and GFLOP/s, and the
//                                  CPU time per call (all threads). For work on
//                                  the GEMM (a shape of a model, alone); `make bench` does not use it.
//   kiln_bench_tool peak THREADS   the machine's measured f32 FMA peak: THREADS threads at once,
//                                  each running 16 independent chains of the widest FMA
//                                  (AVX-512 or AVX2) in registers; JSON with the total GFLOP/s
//                                  (best of 5). bench/run.py reports "of peak" against it, since
//                                  the clock /proc/cpuinfo gives (a VM's nominal rate) leaves
//                                  out turbo.
//
// The compile time is measured in a fresh process per repeat (run.py starts
// this tool once per repeat), so nothing cached in-process is reused, and
// with the compile cache (driver/Cache.h) off.
#include <kiln/kiln.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <immintrin.h>
#include <string>
#include <thread>
#include <vector>

#include "Workloads.h"
#include "interp/Interpreter.h"

namespace {

using namespace kiln;

constexpr uint64_t kInitSeed = 1;
constexpr uint64_t kInputSeed = 7;

// Multiply-adds x 2 of the contractions the function runs: matmul
// 2*|result|*K; conv2d and both its gradients 2*|y or dy| * C/groups*KH*KW
// (the filter's trailing dims). Elementwise work is not counted.
double contractionFlops(const ir::Graph& g, const std::string& function) {
  const ir::Function* f = g.findFunction(function);
  if (!f) throw std::runtime_error("no function " + function);
  std::vector<bool> live = ir::ancestors(g, ir::functionRoots(*f));
  double flops = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    if (!live[static_cast<size_t>(v)]) continue;
    const ir::Node& n = g.node(v);
    auto numel = [&](ir::ValueId id) { return static_cast<double>(g.type(id).numElements()); };
    switch (n.op) {
      case ir::OpKind::MatMul: {
        const ir::Shape& a = g.type(n.operands[0]).shape;
        bool ta = n.attrs.getInt("ta", 0) != 0;
        double k = static_cast<double>(ta ? a[a.size() - 2] : a[a.size() - 1]);
        flops += 2 * numel(v) * k;
        break;
      }
      case ir::OpKind::Conv2d:  // x, w -> y
      case ir::OpKind::Conv2dBwdInput:  // dy, w -> dx
      case ir::OpKind::Conv2dBwdFilter: {  // x, dy -> dw
        bool filter = n.op == ir::OpKind::Conv2dBwdFilter;
        const ir::Shape& w = filter ? n.type.shape : g.type(n.operands[1]).shape;
        double out = filter ? numel(n.operands[1]) : n.op == ir::OpKind::Conv2d ? numel(v) : numel(n.operands[0]);
        flops += 2 * out * static_cast<double>(w[1] * w[2] * w[3]);
        break;
      }
      default:
        break;
    }
  }
  return flops;
}

int compileOnce(const std::string& name) {
  Graph g;
  Module m(g);
  bench::buildWorkload(name, g, m);
  CompileOptions opts;
  opts.cache = 0;  // time the compile itself, never a compile-cache hit
  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<jit::CompiledModule> c = jit::compile(m, opts);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const driver::Compiled& info = c->compiled();
  std::printf("{\"name\": \"%s\", \"seconds\": %.6g, \"kernels\": %lld, \"llvm_opt_ms\": %.6g, "
              "\"llvm_emit_ms\": %.6g}\n",
              name.c_str(), seconds, static_cast<long long>(info.stats.kernels), info.stats.llvmOptMs,
              info.stats.llvmEmitMs);
  return 0;
}

int flops(const std::string& name) {
  Graph g;
  Module m(g);
  bench::buildWorkload(name, g, m);
  std::printf("{\"name\": \"%s\", \"flops\": %.6g}\n", name.c_str(),
              contractionFlops(g.ir(), bench::timedFunction(name)));
  return 0;
}

// Same seed, same inputs: the compiled function's outputs equal the
// interpreter's within f32 rounding.
int interpCheck(const std::string& name) {
  Graph g;
  Module m(g);
  bench::buildWorkload(name, g, m);
  std::unique_ptr<jit::CompiledModule> c = jit::compile(m);
  interp::Session s(g.ir());
  c->init(kInitSeed);
  s.init(kInitSeed);
  std::string fn = bench::timedFunction(name);
  const ir::Function* f = g.ir().findFunction(fn);
  bench::InputRng rngJit(kInputSeed), rngInterp(kInputSeed);
  for (ir::ValueId in : f->inputs) {
    const ir::Node& n = g.ir().node(in);
    double hi = bench::inputRange(n.name);
    interp::HostTensor& t = s.source(n.name);
    if (n.type.dtype == DType::I32) {
      rngJit.fill(c->i32(n.name), t.size(), hi);
      rngInterp.fill(t.i.data(), t.size(), hi);
    } else {
      rngJit.fill(c->f32(n.name), t.size(), hi);
      rngInterp.fill(t.f.data(), t.size(), hi);
    }
  }
  bool training = fn == "trainStep";
  std::string out = training ? "loss" : "c";
  int calls = training ? 2 : 1;
  int bad = 0;
  for (int call = 0; call < calls; ++call) {
    c->run(fn);
    s.run(fn);
    const float* got = c->f32(fn + "." + out);
    const std::vector<float>& want = s.output(fn, out).f;
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      double err = std::fabs(static_cast<double>(got[i]) - want[i]) / std::max(1.0, std::fabs(static_cast<double>(want[i])));
      worst = std::max(worst, std::isfinite(got[i]) ? err : INFINITY);
    }
    // f32 sums in different orders: a few ulps per term of the longest sum
    double tol = training ? 1e-4 : 1e-5;
    std::printf("%s: call %d: %s[0] jit %.9g interpreter %.9g, worst relative difference %.3g (tolerance %.1g)\n",
                name.c_str(), call + 1, out.c_str(), got[0], want[0], worst, tol);
    if (!(worst <= tol)) ++bad;
  }
  return bad == 0 ? 0 : 1;
}

int gemmTiming(int64_t M, int64_t N, int64_t K, bool ta, bool tb, int calls) {
  if (M <= 0 || N <= 0 || K <= 0 || calls <= 0) throw std::runtime_error("gemm: M, N, K and calls must be positive");
  Graph g;
  Tensor a = g.input("a", ta ? std::vector<int64_t>{K, M} : std::vector<int64_t>{M, K});
  Tensor b = g.input("b", tb ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N});
  Module m(g);
  m.addFunction("forward", {a, b}, {{"c", matmul(a, b, ta, tb)}});
  // only dce: the default pipeline may reorient the product (the batch
  // pass computes a transposed-A product with a column tail as the
  // transpose of B's product with A, to lose the tail), and this times the
  // product as given
  CompileOptions opts;
  opts.passes = {"dce"};
  std::unique_ptr<jit::CompiledModule> c = jit::compile(m, opts);
  c->init(kInitSeed);
  bench::InputRng rng(kInputSeed);
  rng.fill(c->f32("a"), static_cast<size_t>(M * K), 1.0);
  rng.fill(c->f32("b"), static_cast<size_t>(K * N), 1.0);
  for (int i = 0; i < calls / 10 + 1; ++i) c->run("forward");  // warm-up
  // wall time, and the process's CPU time (all threads): with one thread
  // the latter does not count time the process spent descheduled
  auto cpuUs = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
  };
  std::vector<double> us, cpu;
  for (int r = 0; r < 5; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpuUs();
    for (int i = 0; i < calls; ++i) c->run("forward");
    cpu.push_back((cpuUs() - c0) / calls);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / calls);
  }
  std::sort(us.begin(), us.end());
  std::sort(cpu.begin(), cpu.end());
  double med = us[us.size() / 2];
  std::printf("{\"M\": %lld, \"N\": %lld, \"K\": %lld, \"ta\": %d, \"tb\": %d, \"us\": %.3f, \"gflops\": %.1f, "
              "\"cpu_us\": %.3f}\n",
              static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K), ta, tb, med,
              2.0 * static_cast<double>(M * N * K) / med / 1e3, cpu[cpu.size() / 2]);
  return 0;
}

// n iterations of 16 independent FMA chains, 16 (AVX-512) or 8 (AVX2)
// lanes each; the sum keeps the work alive. a < 1 and b small keep every
// value normal and bounded.
__attribute__((target("avx512f"))) float fmaChains512(int64_t n) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < n; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float fmaChains256(int64_t n) {
  __m256 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < n; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float v[8];
  _mm256_store_ps(v, s);
  float t = 0;
  for (float x : v) t += x;
  return t;
}

// THREADS threads run the chains at once (released together); total
// GFLOP/s over the slowest thread's time, best of 5.
int peakTiming(int threads) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (threads < 1 || (!avx512 && !avx2)) {
    std::fprintf(stderr, "kiln_bench_tool: peak: %s\n", threads < 1 ? "THREADS must be >= 1" : "no AVX2 FMA on this CPU");
    return 1;
  }
  const int64_t n = 20'000'000;
  const double flopsPerThread = static_cast<double>(n) * 16 * (avx512 ? 16 : 8) * 2;
  double best = 0, sink = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<double> secs(static_cast<size_t>(threads));
    std::vector<float> sums(static_cast<size_t>(threads));
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load()) {
        }
        auto t0 = std::chrono::steady_clock::now();
        sums[static_cast<size_t>(t)] = avx512 ? fmaChains512(n) : fmaChains256(n);
        secs[static_cast<size_t>(t)] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      });
    while (ready.load() != threads) {
    }
    go.store(true);
    for (std::thread& th : ts) th.join();
    double slowest = *std::max_element(secs.begin(), secs.end());
    best = std::max(best, flopsPerThread * threads / slowest / 1e9);
    for (float x : sums) sink += x;
  }
  std::printf("{\"threads\": %d, \"isa\": \"%s\", \"gflops\": %.1f, \"check\": %.3g}\n", threads,
              avx512 ? "avx512" : "avx2", best, sink);
  return 0;
}

int usage() {
  std::fprintf(stderr, "usage: kiln_bench_tool compile|flops|interp NAME\n"
                       "       kiln_bench_tool gemm M N K [ta tb] [calls]\n"
                       "       kiln_bench_tool peak THREADS\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::string(argv[1]) == "gemm") {
    try {
      auto arg = [&](int i, int64_t dflt) { return argc > i ? std::stoll(argv[i]) : dflt; };
      return gemmTiming(arg(2, 0), arg(3, 0), arg(4, 0), arg(5, 0) != 0, arg(6, 0) != 0, static_cast<int>(arg(7, 1000)));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln_bench_tool: gemm: %s\n", e.what());
      return 1;
    }
  }
  if (argc == 3 && std::string(argv[1]) == "peak") {
    try {
      return peakTiming(std::stoi(argv[2]));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kiln_bench_tool: peak: %s\n", e.what());
      return 1;
    }
  }
  if (argc != 3) return usage();
  std::string cmd = argv[1], name = argv[2];
  try {
    if (cmd == "compile") return compileOnce(name);
    if (cmd == "interp") return interpCheck(name);
    if (cmd == "flops") return flops(name);
    return usage();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln_bench_tool: %s: %s\n", name.c_str(), e.what());
    return 1;
  }
}
