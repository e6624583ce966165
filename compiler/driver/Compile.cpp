// The compile pipeline as a short linear script; each step can be dumped.
#include "Compile.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "Cache.h"
#include "ir/Text.h"

namespace kiln::driver {

namespace fs = std::filesystem;

void writeFile(const std::string& dir, const std::string& name, std::string_view text) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw ir::CompileError(fmt::format("cannot create directory {}: {}", dir, ec.message()));
  std::string path = (fs::path(dir) / name).string();
  std::ofstream f(path, std::ios::binary);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!f) throw ir::CompileError(fmt::format("cannot write {}", path));
}

std::string formatBytes(int64_t bytes) {
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} bytes", bytes);
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  if (v == std::floor(v)) return fmt::format("{} {}", static_cast<int64_t>(v), units[u]);
  return fmt::format("{:.1f} {}", v, units[u]);
}

int64_t memoryLimit(const CompileOptions& opts) {
  if (opts.memoryLimitBytes >= 0) return opts.memoryLimitBytes;
  const char* env = std::getenv("KILN_MEMORY_LIMIT");
  if (!env || !*env) return CompileOptions::kDefaultMemoryLimit;
  std::string_view s(env);
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  int shift = -1;
  std::string_view unit = s.substr(digits);
  if (unit.empty()) shift = 0;
  else if (unit == "K" || unit == "KiB") shift = 10;
  else if (unit == "M" || unit == "MiB") shift = 20;
  else if (unit == "G" || unit == "GiB") shift = 30;
  else if (unit == "T" || unit == "TiB") shift = 40;
  int64_t n = 0;
  bool ok = digits > 0 && digits <= 15 && shift >= 0;
  for (size_t i = 0; ok && i < digits; ++i) n = n * 10 + (s[i] - '0');
  if (!ok || n > (int64_t(1) << (62 - shift)))
    throw ir::CompileError(fmt::format("KILN_MEMORY_LIMIT: '{}' is not a size (bytes, or a number followed by K, M, G or T)", s));
  return n << shift;
}

bool checkedMode(const CompileOptions& opts) {
  if (opts.checked) return true;
  const char* env = std::getenv("KILN_CHECKED");
  return env && std::string_view(env) == "1";
}

// graph.dot: values as vertices, operand edges, drawn with Boost.Graph.
static std::string graphDot(const ir::Graph& g) {
  using BG = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
  BG bg(static_cast<size_t>(g.size()));
  for (ir::ValueId v = 0; v < g.size(); ++v)
    for (ir::ValueId o : g.node(v).operands) boost::add_edge(static_cast<size_t>(o), static_cast<size_t>(v), bg);
  std::vector<std::string> labels;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    labels.push_back(fmt::format("%{} {}{}\\n{}", v, ir::opName(n.op), n.name.empty() ? "" : " " + n.name,
                                 ir::typeStr(n.type)));
  }
  std::ostringstream os;
  boost::write_graphviz(os, bg, boost::make_label_writer(labels.data()));
  return os.str();
}

// report.json: module totals, then per entry point the counts, bytes and
// pass records (the passes and compile time are the module's, repeated in
// each function so a function's entry stands on its own).
static std::string reportJson(const Compiled& c) {
  std::string passes;
  for (const auto& r : c.stats.passRecords)
    passes += fmt::format("{}{{\"name\": \"{}\", \"ms\": {:.3f}, \"changed\": {}, \"nodes_before\": {}, \"nodes_after\": {}}}",
                          passes.empty() ? "" : ", ", r.name, r.ms, r.changed, r.nodesBefore, r.nodesAfter);
  std::string fns;
  for (const FunctionStats& f : c.stats.functions)
    fns += fmt::format(
        "{}    \"{}\": {{\"ops_before\": {}, \"ops_after\": {}, \"kernels\": {}, \"arena_bytes\": {}, "
        "\"naive_bytes\": {}, \"persistent_bytes\": {}, \"compile_ms\": {:.3f},\n      \"passes\": [{}]}}",
        fns.empty() ? "" : ",\n", f.name, f.opsBefore, f.opsAfter, f.kernels, f.arenaBytes, f.naiveBytes,
        f.persistentBytes, c.stats.totalMs, passes);
  const lower::ModulePlan& p = c.plan;
  return fmt::format(
      "{{\n  \"ops_before\": {},\n  \"ops\": {},\n  \"kernels\": {},\n"
      "  \"buffer_bytes\": {},\n  \"persistent_bytes\": {},\n  \"temp_bytes\": {},\n"
      "  \"arena_bytes\": {},\n  \"naive_bytes\": {},\n  \"arena_strategy\": \"{}\",\n"
      "  \"arena_packing_bytes\": {},\n  \"arena_coloring_bytes\": {},\n  \"cpu\": \"{}\",\n"
      "  \"compile_ms\": {:.3f},\n  \"passes_ms\": {:.3f},\n  \"llvm_opt_ms\": {:.3f},\n  \"llvm_emit_ms\": {:.3f},\n"
      "  \"passes\": [{}],\n  \"functions\": {{\n{}\n  }}\n}}\n",
      c.stats.opsBefore, c.stats.opsAfter, c.stats.kernels, p.totalBytes, p.persistentBytes, p.tempBytes,
      p.tempBytes, p.naiveTempBytes, lower::arenaStrategyName(p.strategy), p.packingBytes, p.coloringBytes,
      c.code.cpu, c.stats.totalMs, c.stats.passesMs, c.stats.llvmOptMs, c.stats.llvmEmitMs, passes, fns);
}

// print(parse(print(g))) == print(g), or an internal error naming the first
// line that differs.
static void checkRoundTrip(const ir::Graph& g) {
  std::string text = ir::printGraph(g);
  std::string again = ir::printGraph(ir::parseGraph(text, "<round-trip>"));
  if (again == text) return;
  size_t at = 0;
  while (at < text.size() && at < again.size() && text[at] == again[at]) ++at;
  size_t lineStart = text.rfind('\n', at);
  lineStart = lineStart == std::string::npos ? 0 : lineStart + 1;
  throw ir::CompileError(fmt::format("internal: the printed graph does not parse back to itself, first difference in: {}",
                                     text.substr(lineStart, text.find('\n', at) - lineStart)));
}

// Non-source nodes each function needs (its kernels, one per op).
static int32_t opsNeeded(const ir::Graph& g, const ir::Function& f) {
  std::vector<bool> live = ir::ancestors(g, ir::functionRoots(f));
  int32_t n = 0;
  for (ir::ValueId v = 0; v < g.size(); ++v) n += live[v] && !ir::isSource(g.node(v).op);
  return n;
}

std::vector<FunctionStats> functionStats(const ir::Graph& before, const ir::Graph& after, const lower::ModulePlan& plan) {
  std::vector<FunctionStats> out;
  for (size_t i = 0; i < after.functions().size(); ++i) {
    const ir::Function& f = after.functions()[i];
    const lower::FunctionPlan& fp = plan.functions.at(i);
    FunctionStats s;
    s.name = f.name;
    const ir::Function* old = before.findFunction(f.name);
    s.opsBefore = old ? opsNeeded(before, *old) : 0;
    s.opsAfter = opsNeeded(after, f);
    s.kernels = static_cast<int64_t>(fp.kernels.size());
    s.arenaBytes = fp.arenaBytes;
    s.naiveBytes = fp.naiveBytes;
    s.persistentBytes = fp.persistentBytes;
    out.push_back(s);
  }
  return out;
}

Compiled compile(const ir::Graph& input, std::string_view prefix, const CompileOptions& opts,
                 const std::string& builtText) {
  auto t0 = std::chrono::steady_clock::now();
  Compiled c;
  c.dumpDir = opts.dumpDir;
  if (c.dumpDir.empty())
    if (const char* env = std::getenv("KILN_DUMP"); env && *env) c.dumpDir = env;
  const bool dump = !c.dumpDir.empty();
  // Debug builds, opts.verifyEach and KILN_VERIFY_EACH=1 (set by the test
  // suite) verify after every pass and check that the text form round-trips.
#ifndef NDEBUG
  const bool verifyEach = true;
#else
  const char* verifyEnv = std::getenv("KILN_VERIFY_EACH");
  const bool verifyEach = opts.verifyEach || (verifyEnv && std::string_view(verifyEnv) == "1");
#endif

  ir::verifyOrThrow(input, "compile");
  if (verifyEach) checkRoundTrip(input);
  if (dump) {
    // a pipeline shorter than the last run's must not leave its NN-pass.kir
    // files behind to be mistaken for this run's
    std::error_code ec;
    if (fs::is_directory(c.dumpDir, ec))
      for (const auto& e : fs::directory_iterator(c.dumpDir, ec)) {
        std::string name = e.path().filename().string();
        if (name.size() > 7 && std::isdigit(static_cast<unsigned char>(name[0])) &&
            std::isdigit(static_cast<unsigned char>(name[1])) && name[2] == '-' && name.ends_with(".kir"))
          fs::remove(e.path(), ec);
      }
    if (!builtText.empty()) writeFile(c.dumpDir, "00-built.kir", builtText);
    writeFile(c.dumpDir, "01-grad.kir", ir::printGraph(input));
  }
  c.graph = input;
  c.stats.opsBefore = input.size();

  int step = 2;
  std::vector<std::string> names = opts.passes.empty() ? passes::defaultPipeline() : opts.passes;
  c.stats.passRecords = passes::runPasses(c.graph, names, verifyEach, [&](const passes::PassRecord& r, const ir::Graph& g) {
    if (dump) writeFile(c.dumpDir, fmt::format("{:02}-{}.kir", step, r.name), ir::printGraph(g));
    ++step;
  });
  for (const auto& r : c.stats.passRecords) c.stats.passesMs += r.ms;
  c.stats.opsAfter = c.graph.size();

  c.plan = lower::planModule(c.graph, lower::PlanOptions{opts.fuse, checkedMode(opts)});
  // refuse now, with the figures, rather than fail to allocate at run time
  if (int64_t limit = memoryLimit(opts); limit > 0 && c.plan.totalBytes > limit)
    throw ir::CompileError(fmt::format(
        "compile: planned memory {} (persistent {}, arena {}{}) exceeds the limit {} "
        "(CompileOptions::memoryLimitBytes or KILN_MEMORY_LIMIT)",
        formatBytes(c.plan.totalBytes), formatBytes(c.plan.persistentBytes), formatBytes(c.plan.tempBytes),
        c.plan.scratchBytes > 0 ? ", scratch " + formatBytes(c.plan.scratchBytes) : std::string(), formatBytes(limit)));
  // distinct kernels: entry points share the kernels of values they share
  std::vector<bool> seen(static_cast<size_t>(c.graph.size()), false);
  for (const auto& f : c.plan.functions)
    for (const auto& k : f.kernels)
      if (!seen[k.value]) {
        seen[k.value] = true;
        ++c.stats.kernels;
      }
  c.stats.bufferBytes = c.plan.totalBytes;
  c.stats.functions = functionStats(input, c.graph, c.plan);
  if (dump) {
    writeFile(c.dumpDir, "kernels.txt", lower::printPlan(c.graph, c.plan));
    writeFile(c.dumpDir, "graph.dot", graphDot(c.graph));
  }

  // the compile cache (Cache.h): the object code depends on nothing but the
  // graph after the passes, the plan options (fusion, checked mode), the
  // prefix and the target
  CacheConfig cache;
  std::string cacheId;
  if (opts.cache == 1 && !dump && !opts.emitAssembly) cache = cacheConfig();
  if (cache.enabled) {
    cacheId = cacheKey({ir::printGraph(c.graph), fmt::format("fuse={} checked={}", opts.fuse, checkedMode(opts)), std::string(prefix),
                        codegen::targetDescription({opts.targetCpu})});
    if (std::optional<std::vector<char>> obj = cacheLoad(cache, cacheId)) {
      c.code.object = std::move(*obj);
      c.code.cpu = opts.targetCpu.empty() ? codegen::hostCpuName() : opts.targetCpu;
      c.stats.cacheHit = true;
    }
  }
  if (!c.stats.cacheHit) {
    c.code = codegen::generate(c.graph, c.plan, prefix, {opts.targetCpu}, dump || opts.emitAssembly);
    if (cache.enabled) c.stats.cacheStored = cacheStore(cache, cacheId, c.code.object);
  }
  c.stats.llvmOptMs = c.code.optimizeMs;
  c.stats.llvmEmitMs = c.code.emitMs;
  c.stats.totalMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (dump) {
    writeFile(c.dumpDir, "module.ll", c.code.llvmIR);
    writeFile(c.dumpDir, "module.opt.ll", c.code.llvmOptIR);
    writeFile(c.dumpDir, "module.s", c.code.assembly);
    writeFile(c.dumpDir, "report.json", reportJson(c));
  }
  return c;
}

}  // namespace kiln::driver
