// Differential testing on random graphs: each graph from RandomGraph.h is
// JIT-compiled with the default options (every pass, fusion) and every output
// — forward values and autodiff gradients — is compared with the reference
// interpreter on the unoptimized graph; on smooth graphs the interpreter's
// gradients are also compared with central finite differences. Graphs are
// compiled in batches (one module, one entry point per graph), since a JIT
// compile has a fixed cost that a small graph would otherwise pay alone.
//
//   kiln_random_graphs [--count N] [--seed S] [--batch B] [--out DIR] [--max-steps K] [--inject-fault]
//   kiln_random_graphs --replay FILE.kir
//
// A failing graph is rebuilt alone and saved as DIR/random-graph-SEED.kir,
// with the seed and what differed in its header comments; `--replay FILE`
// reruns every check on it, and `kiln-opt FILE.kir` shows what the passes
// make of it. The exit status is the number of failing graphs (capped).
#include <kiln/kiln.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <sstream>

#include "RandomGraph.h"
#include "interp/Interpreter.h"
#include "ir/InitSpec.h"
#include "ir/Text.h"
#include "passes/Passes.h"

using namespace kiln;
using interp::HostTensor;

namespace {

constexpr uint64_t kInitSeed = 7;

struct Stats {
  int graphs = 0, failed = 0, fdChecked = 0, exactOutputs = 0, toleratedOutputs = 0, libmOutputs = 0;
  double worstFd = 0;  // largest |numeric - analytic| / tolerance seen
};

// Every source of function f filled: inputs from inputValues, params and
// state from init(kInitSeed).
std::map<ir::ValueId, HostTensor> sourcesFor(const ir::Graph& g, const ir::Function& f) {
  std::map<ir::ValueId, HostTensor> src;
  std::vector<bool> live = ir::ancestors(g, ir::functionRoots(f));
  for (ir::ValueId v : f.inputs) live[v] = true;  // declared but maybe unread
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (!live[v] || !ir::isSource(n.op)) continue;
    HostTensor t = HostTensor::zeros(n.type);
    if (n.op == ir::OpKind::Input) t.f = robust::inputValues(n.name, t.size());
    else ir::initSource(n, t.data(), kInitSeed);
    src[v] = std::move(t);
  }
  return src;
}

// Equal bits, or both NaN, or +0 and -0 (kiln treats the sign of zero as
// insignificant: simplify's x + 0 -> x keeps a -0 the add would have made +0).
bool sameValue(float a, float b) {
  return a == b || std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b));
}

bool injectFault = false;  // --inject-fault: proves a one-ulp difference is caught
int maxSteps = 8;          // --max-steps

// Ops lowered to libm calls (or LLVM intrinsics that become them). LLVM
// folds such calls on constant operands with the host's double-precision
// library and rewrites powf(x, 2 | -1 | 0.5) as x*x, 1/x, sqrt(x); glibc's
// float functions differ from those by an ulp now and then (powf(x, 0.5) !=
// sqrtf(x) for 0.06% of x in [0.25, 3.25)). The interpreter calls the float
// functions, so outputs downstream of these ops may differ in the last bits.
bool callsLibm(ir::OpKind op) {
  using K = ir::OpKind;
  switch (op) {
    case K::Exp: case K::Log: case K::Log1p: case K::Elu: case K::Tanh: case K::Sigmoid: case K::Softplus:
    case K::Erf: case K::Sin: case K::Cos: case K::Pow: case K::LogSoftmax:
      return true;
    default:
      return false;
  }
}

bool dependsOnLibm(const ir::Graph& g, ir::ValueId v) {
  std::vector<bool> anc = ir::ancestors(g, {v});
  for (ir::ValueId u = 0; u < g.size(); ++u)
    if (anc[u] && callsLibm(g.node(u).op)) return true;
  return false;
}

struct Check {
  std::vector<std::string> problems;  // beyond any tolerance
  std::vector<std::string> inexact;   // outputs off by a few ulps of their scale
};

// Compares one compiled result with the interpreter's: bit for bit, or for
// an f32 value downstream of libm calls within 1e-5 of its scale; other
// differences within that go to `inexact` for the caller to explain.
void compareValue(const std::string& what, const ir::Graph& g, ir::ValueId v, void* gotData, const HostTensor& w,
                  bool inject, Stats& st, Check& r) {
  if (w.type.dtype == DType::I32) {
    const int32_t* got = static_cast<const int32_t*>(gotData);
    for (int64_t k = 0; k < w.size(); ++k)
      if (got[k] != w.i[k]) {
        r.problems.push_back(fmt::format("{} element {}: compiled {} vs interpreter {}", what, k, got[k], w.i[k]));
        return;
      }
    ++st.exactOutputs;
    return;
  }
  float* got = static_cast<float*>(gotData);
  const bool libm = dependsOnLibm(g, v);
  float worst = 0, scale = 0;
  int64_t worstAt = -1;
  for (int64_t k = 0; k < w.size(); ++k) scale = std::max(scale, std::isfinite(w.f[k]) ? std::fabs(w.f[k]) : 0.0f);
  // the ulps a value may be off by compound through later ops: allow 1e-5
  // of the value's scale (and absolute 1e-5 near 0, for cancellation)
  const float tol = 1e-5f * std::max(scale, 1.0f);
  if (inject && w.size() > 0) {
    // one ulp where bits must agree, else just past the tolerance
    uint32_t bits;
    std::memcpy(&bits, got, 4);
    bits ^= 1;
    std::memcpy(got, &bits, 4);
    if (libm) got[0] = w.f[0] + 2 * tol;
  }
  for (int64_t k = 0; k < w.size(); ++k) {
    if (sameValue(got[k], w.f[k])) continue;
    float d = std::fabs(got[k] - w.f[k]);
    if (worstAt < 0 || !(d <= worst)) {
      worst = d;
      worstAt = k;
    }
  }
  if (worstAt < 0) {
    ++st.exactOutputs;
    return;
  }
  std::string msg = fmt::format("{} element {}: compiled {:.9g} vs interpreter {:.9g} (|diff| {:.3g})", what, worstAt,
                                got[worstAt], w.f[worstAt], worst);
  if (worst <= tol && libm) ++st.libmOutputs;
  else if (worst <= tol) r.inexact.push_back(msg);
  else r.problems.push_back(msg + fmt::format(" > {:.3g}", tol));
}

// Runs function f compiled and interpreted from the same inputs and the
// compiled module's current params and state, and compares every output and
// every update (the param or state buffer after the call).
Check checkFunction(const ir::Graph& g, const ir::Function& f, jit::CompiledModule& cm, Stats& st) {
  Check r;
  auto src = sourcesFor(g, f);
  for (auto& [v, t] : src) {
    const ir::Node& n = g.node(v);
    void* buf = t.type.dtype == DType::F32 ? static_cast<void*>(cm.f32(n.name)) : static_cast<void*>(cm.i32(n.name));
    size_t bytes = static_cast<size_t>(t.size()) * 4;
    if (n.op == ir::OpKind::Input) std::memcpy(buf, t.data(), bytes);
    else std::memcpy(t.data(), buf, bytes);  // state as the module has it now
  }
  std::vector<ir::ValueId> roots;
  for (const ir::Output& o : f.outputs) roots.push_back(o.value);
  for (const ir::Update& u : f.updates) roots.push_back(u.value);
  std::vector<HostTensor> want = interp::evaluate(g, roots, src);
  cm.run(f.name);
  for (size_t i = 0; i < f.outputs.size(); ++i) {
    const ir::Output& o = f.outputs[i];
    std::string buf = fmt::format("{}.{}", f.name, o.name);
    void* got = want[i].type.dtype == DType::F32 ? static_cast<void*>(cm.f32(buf)) : static_cast<void*>(cm.i32(buf));
    compareValue("output " + o.name, g, o.value, got, want[i], injectFault && i == 0, st, r);
  }
  for (size_t i = 0; i < f.updates.size(); ++i) {
    const ir::Update& u = f.updates[i];
    const std::string& name = g.node(u.target).name;
    const HostTensor& w = want[f.outputs.size() + i];
    void* got = w.type.dtype == DType::F32 ? static_cast<void*>(cm.f32(name)) : static_cast<void*>(cm.i32(name));
    compareValue("update of " + name, g, u.value, got, w, false, st, r);
  }
  return r;
}

// On a smooth graph: the interpreter's gradient of `loss_fd` wrt each data
// input, dotted with random directions, against central differences of the
// loss along them (Richardson-extrapolated, in double from f32 losses).
std::vector<std::string> checkFiniteDifferences(const ir::Graph& g, const ir::Function& f, Stats& st) {
  std::vector<std::string> problems;
  const ir::Output* loss = nullptr;
  for (const ir::Output& o : f.outputs)
    if (o.name == "loss_fd") loss = &o;
  if (!loss) return problems;
  ++st.fdChecked;
  auto src = sourcesFor(g, f);
  std::vector<ir::ValueId> roots{loss->value};
  std::vector<std::pair<ir::ValueId, std::string>> wrt;  // input, gradient output
  for (const ir::Output& o : f.outputs)
    if (o.name.starts_with("d.")) {
      ir::ValueId in = g.findSource(o.name.substr(2));
      if (in < 0) continue;
      roots.push_back(o.value);
      wrt.push_back({in, o.name});
    }
  std::vector<HostTensor> base = interp::evaluate(g, roots, src);
  auto lossAt = [&](ir::ValueId in, const std::vector<float>& dir, double h) {
    auto s = src;
    for (size_t k = 0; k < dir.size(); ++k) s[in].f[k] += static_cast<float>(h) * dir[k];
    return static_cast<double>(interp::evaluate(g, {loss->value}, s)[0].f[0]);
  };
  for (size_t i = 0; i < wrt.size(); ++i) {
    const HostTensor& gr = base[i + 1];
    if (!src.count(wrt[i].first)) {  // a param the function does not read: its gradient must be 0
      for (float x : gr.f)
        if (x != 0) {
          problems.push_back(fmt::format("{}: nonzero gradient {} wrt a param the loss does not read", wrt[i].second, x));
          break;
        }
      continue;
    }
    for (int d = 0; d < 2; ++d) {
      std::vector<float> dir = robust::inputValues(fmt::format("{}/dir{}", wrt[i].second, d), gr.size());
      double analytic = 0, mag = 0;
      for (int64_t k = 0; k < gr.size(); ++k) {
        analytic += static_cast<double>(gr.f[k]) * dir[k];
        mag += std::fabs(static_cast<double>(gr.f[k]) * dir[k]);
      }
      const double h = 1e-2;
      double d1 = (lossAt(wrt[i].first, dir, h) - lossAt(wrt[i].first, dir, -h)) / (2 * h);
      double d2 = (lossAt(wrt[i].first, dir, h / 2) - lossAt(wrt[i].first, dir, -h / 2)) / h;
      double numeric = (4 * d2 - d1) / 3;
      // f32 losses: rounding of |loss| divided by h dominates the error
      double tol = 5e-4 * mag + 5e-4 * std::fabs(analytic) + 5e-6 * (std::fabs(base[0].f[0]) + 1) / h;
      if (injectFault) analytic *= 1.02;  // a gradient 2% off must be caught
      st.worstFd = std::max(st.worstFd, std::fabs(numeric - analytic) / tol);
      if (!(std::fabs(numeric - analytic) <= tol))
        problems.push_back(fmt::format("{} along direction {}: autodiff {:.7g}, finite differences {:.7g} (tolerance {:.3g})",
                                       wrt[i].second, d, analytic, numeric, tol));
    }
  }
  return problems;
}

// Every check on one graph's entry points: @function compiled vs
// interpreted, finite differences when `fd`, then two steps of its training
// step @function_train if it has one (params and optimizer state updated in
// place, compared after each step).
Check checkModule(const ir::Graph& g, const std::string& function, jit::CompiledModule& cm, Stats& st, bool fd) {
  const ir::Function* f = g.findFunction(function);
  Check c = checkFunction(g, *f, cm, st);
  if (fd) {
    std::vector<std::string> q = checkFiniteDifferences(g, *f, st);
    c.problems.insert(c.problems.end(), q.begin(), q.end());
  }
  if (const ir::Function* t = g.findFunction(function + "_train"))
    for (int step = 1; step <= 2; ++step) {
      Check d = checkFunction(g, *t, cm, st);
      for (auto& p : d.problems) c.problems.push_back(fmt::format("@{} step {}: {}", t->name, step, p));
      for (auto& p : d.inexact) c.inexact.push_back(fmt::format("@{} step {}: {}", t->name, step, p));
    }
  return c;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : std::string(sep)) + x;
  return s;
}

// Graph `seed` built alone and checked, compiled with `passes` (empty = the
// default pipeline). Returns its problems, inexact outputs counting as
// problems; a compile error is one.
std::vector<std::string> checkAlone(uint64_t seed, const std::vector<std::string>& passes, Stats& st) {
  Graph g;
  Module m(g);
  std::string name = fmt::format("g{}", seed);
  robust::generate(g, m, seed, name, maxSteps);
  try {
    CompileOptions opts;
    opts.passes = passes;
    auto cm = jit::compile(m, opts);
    cm->init(kInitSeed);
    Check c = checkModule(g.ir(), name, *cm, st, true);
    c.problems.insert(c.problems.end(), c.inexact.begin(), c.inexact.end());
    return c.problems;
  } catch (const std::exception& e) {
    return {fmt::format("compile: {}", e.what())};
  }
}

// The default pipeline without simplify, whose sum(broadcast(x)) -> x * n
// is the one rewrite allowed to change rounding.
std::vector<std::string> pipelineWithoutSimplify() {
  std::vector<std::string> p;
  for (const std::string& s : passes::defaultPipeline())
    if (s != "simplify") p.push_back(s);
  return p;
}

// Saves graph `seed` (built alone) as DIR/random-graph-SEED.kir with what
// went wrong in its header, and says so on stderr.
void reportFailure(uint64_t seed, const std::string& why, const std::string& outDir, Stats& st) {
  ++st.failed;
  Graph g;
  Module m(g);
  robust::GeneratedGraph gg = robust::generate(g, m, seed, fmt::format("g{}", seed), maxSteps);
  Stats scratch;
  std::string alone = join(checkAlone(seed, {}, scratch), "\n#   ");
  if (alone.empty()) alone = "(passes when compiled alone: the failure needs its batch)";
  std::filesystem::create_directories(outDir);
  std::string path = (std::filesystem::path(outDir) / fmt::format("random-graph-{}.kir", seed)).string();
  std::ofstream out(path);
  out << fmt::format("# random graph seed {} --max-steps {} (ops: {})\n# in its batch: {}\n# alone:\n#   {}\n", seed, maxSteps,
                     join(gg.ops, ", "), why, alone)
      << ir::printGraph(g.ir());
  std::fprintf(stderr,
               "FAIL random graph seed %llu (ops: %s)\n  %s\n  reproducer: %s\n"
               "  rerun: kiln_random_graphs --replay %s   (or --seed %llu --count 1 --max-steps %d; kiln-opt %s)\n",
               static_cast<unsigned long long>(seed), join(gg.ops, ", ").c_str(), why.c_str(), path.c_str(), path.c_str(),
               static_cast<unsigned long long>(seed), maxSteps, path.c_str());
}

// Reruns every check on each function of a saved graph.
int replay(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) {
    std::fprintf(stderr, "%s: cannot read\n", path.c_str());
    return 2;
  }
  try {
    ir::Graph g = ir::parseGraph(ss.str(), path);
    auto cm = jit::compile(g);
    cm->init(kInitSeed);
    Stats st;
    int bad = 0;
    CompileOptions noSimplify;
    noSimplify.passes = pipelineWithoutSimplify();
    auto plain = jit::compile(g, noSimplify);
    plain->init(kInitSeed);
    for (const ir::Function& f : g.functions()) {
      if (f.name.ends_with("_train")) continue;  // checked with its graph's function
      Check c = checkModule(g, f.name, *cm, st, true);
      Stats scratch;
      if (!c.inexact.empty() && checkModule(g, f.name, *plain, scratch, false).inexact.empty()) c.inexact.clear();
      for (const auto& s : c.problems) std::fprintf(stderr, "@%s: %s\n", f.name.c_str(), s.c_str());
      for (const auto& s : c.inexact) std::fprintf(stderr, "@%s: %s (not explained by simplify)\n", f.name.c_str(), s.c_str());
      bad += !c.problems.empty() || !c.inexact.empty();
    }
    std::printf("%s: %zu functions, %d differ (%d outputs bit-exact, %d within tolerance after libm calls)\n", path.c_str(),
                g.functions().size(), bad, st.exactOutputs, st.libmOutputs);
    return bad ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int count = 1000, batch = 25;
  uint64_t first = 1;
  std::string outDir = ".";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--count") count = std::stoi(next());
    else if (a == "--seed") first = std::stoull(next());
    else if (a == "--batch") batch = std::max(1, std::stoi(next()));
    else if (a == "--out") outDir = next();
    else if (a == "--replay") return replay(next());
    else if (a == "--inject-fault") injectFault = true;
    else if (a == "--max-steps") maxSteps = std::stoi(next());
    else {
      std::fprintf(stderr, "usage: kiln_random_graphs [--count N] [--seed S] [--batch B] [--out DIR] [--max-steps K] [--inject-fault] | --replay FILE.kir\n");
      return 2;
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  Stats st;
  double compileMs = 0;
  std::map<std::string, int> opCounts;
  for (int done = 0; done < count; done += batch) {
    int n = std::min(batch, count - done);
    Graph g;
    Module m(g);
    std::vector<uint64_t> seeds;
    for (int k = 0; k < n; ++k) {
      uint64_t seed = first + static_cast<uint64_t>(done + k);
      seeds.push_back(seed);
      try {
        robust::GeneratedGraph gg = robust::generate(g, m, seed, fmt::format("g{}", seed), maxSteps);
        for (const std::string& op : gg.ops) ++opCounts[op];
      } catch (const std::exception& e) {  // the DSL refused a graph the generator meant to be valid
        std::fprintf(stderr, "FAIL random graph seed %llu: the generator built an invalid graph: %s\n",
                     static_cast<unsigned long long>(seed), e.what());
        ++st.failed;
        seeds.pop_back();
      }
    }
    st.graphs += n;
    std::unique_ptr<jit::CompiledModule> cm;
    auto c0 = std::chrono::steady_clock::now();
    try {
      cm = jit::compile(m);
    } catch (const std::exception& e) {
      // the graphs that fail alone, or the batch as a whole
      int before = st.failed;
      for (uint64_t seed : seeds)
        if (std::vector<std::string> p = checkAlone(seed, {}, st); !p.empty()) reportFailure(seed, join(p, "; "), outDir, st);
      if (st.failed == before) {
        std::fprintf(stderr, "FAIL the batch of seeds %llu..%llu does not compile, though each graph does alone: %s\n",
                     static_cast<unsigned long long>(seeds.front()), static_cast<unsigned long long>(seeds.back()), e.what());
        ++st.failed;
      }
      continue;
    }
    compileMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c0).count();
    if (std::getenv("KILN_RG_VERBOSE")) {
      const auto& cs = cm->compiled().stats;
      std::printf("batch at %d: %d ops -> %d, %lld kernels; passes %.0f ms, llvm opt %.0f ms, emit %.0f ms, total %.0f ms\n", done,
                  cs.opsBefore, cs.opsAfter, static_cast<long long>(cs.kernels), cs.passesMs, cs.llvmOptMs, cs.llvmEmitMs, cs.totalMs);
    }
    cm->init(kInitSeed);
    for (uint64_t seed : seeds) {
      Check c = checkModule(g.ir(), fmt::format("g{}", seed), *cm, st, true);
      if (c.problems.empty() && !c.inexact.empty()) {
        // explained only if the graph is bit-exact without simplify
        Stats scratch;
        if (checkAlone(seed, pipelineWithoutSimplify(), scratch).empty()) {
          st.toleratedOutputs += static_cast<int>(c.inexact.size());
          continue;
        }
        for (auto& s : c.inexact) c.problems.push_back(s + " (not explained by simplify: differs without it too)");
      }
      if (!c.problems.empty()) reportFailure(seed, join(c.problems, "; "), outDir, st);
    }
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("random graphs: %d built from seeds %llu..%llu, %d failed; %d gradient checks by finite differences; "
              "%d outputs bit-exact, %d within tolerance after libm calls, %d from simplify; worst FD error %.2f of its tolerance; %.1f s (%.1f s compiling)\n",
              st.graphs, static_cast<unsigned long long>(first), static_cast<unsigned long long>(first + count - 1), st.failed,
              st.fdChecked, st.exactOutputs, st.libmOutputs, st.toleratedOutputs, st.worstFd, ms / 1000, compileMs / 1000);
  std::string hist;
  for (const auto& [op, k] : opCounts) hist += fmt::format("{}{} {}", hist.empty() ? "" : ", ", op, k);
  std::printf("DSL calls drawn: %s\n", hist.c_str());
  return std::min(st.failed, 100);
}
