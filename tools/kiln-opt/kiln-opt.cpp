// kiln-opt: reads .kir text, runs passes, prints the result or a later stage.
//   kiln-opt FILE.kir|- [--passes=a,b] [--emit=graph|kernels|llvm|asm]
//            [--print-after-all] [--stats]
// --stats prints to stderr, per pass, whether it changed the graph, its time
// and node counts, then per entry point its op counts before/after the passes,
// kernels and planned bytes (arena, no-reuse, persistent).
// --emit=llvm|asm compile the graph after --passes, running dce once more so
// dead values get no buffers.
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <sstream>

#include "driver/Compile.h"
#include "ir/Text.h"
#include "lower/Plan.h"
#include "passes/Passes.h"

using namespace kiln;

static std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int main(int argc, char** argv) {
  std::string file, emit = "graph";
  std::vector<std::string> passNames;
  bool stats = false, printAfterAll = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.starts_with("--passes=")) passNames = splitList(a.substr(9));
    else if (a.starts_with("--emit=")) emit = a.substr(7);
    else if (a == "--stats") stats = true;
    else if (a == "--print-after-all") printAfterAll = true;
    else if (a == "--help" || a == "-h") {
      std::printf("usage: kiln-opt FILE.kir|- [--passes=a,b,c] [--emit=graph|kernels|llvm|asm] [--print-after-all] [--stats]\n");
      return 0;
    } else if (a.starts_with("--")) {
      std::fprintf(stderr, "kiln-opt: unknown option '%s'\n", a.c_str());
      return 2;
    } else file = a;
  }
  if (file.empty()) {
    std::fprintf(stderr, "kiln-opt: no input file (use - for stdin)\n");
    return 2;
  }
  if (emit != "graph" && emit != "kernels" && emit != "llvm" && emit != "asm") {
    std::fprintf(stderr, "kiln-opt: unknown --emit=%s (graph, kernels, llvm or asm)\n", emit.c_str());
    return 2;
  }
  std::stringstream text;
  if (file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream f(file);
    if (!f) {
      std::fprintf(stderr, "kiln-opt: cannot open %s\n", file.c_str());
      return 1;
    }
    text << f.rdbuf();
  }
  try {
    ir::Graph g = ir::parseGraph(text.str(), file == "-" ? "<stdin>" : file);
    const ir::Graph input = g;
    auto records = passes::runPasses(g, passNames, true, [&](const passes::PassRecord& r, const ir::Graph& after) {
      if (printAfterAll) std::printf("// after %s\n%s", r.name.c_str(), ir::printGraph(after).c_str());
    });
    if (stats) {
      for (const auto& r : records)
        std::fprintf(stderr, "pass %-12s %s %8.3f ms  nodes %d -> %d\n", r.name.c_str(), r.changed ? "changed" : "same   ",
                     r.ms, r.nodesBefore, r.nodesAfter);
      // per entry point: ops it needs before/after the passes, and its plan
      lower::ModulePlan plan = lower::planModule(g);
      for (const driver::FunctionStats& f : driver::functionStats(input, g, plan))
        std::fprintf(stderr, "function %-10s ops %d -> %d  kernels %lld  arena %lld  naive %lld  persistent %lld bytes\n",
                     f.name.c_str(), f.opsBefore, f.opsAfter, static_cast<long long>(f.kernels),
                     static_cast<long long>(f.arenaBytes), static_cast<long long>(f.naiveBytes),
                     static_cast<long long>(f.persistentBytes));
    }
    if (emit == "graph") {
      std::fputs(ir::printGraph(g).c_str(), stdout);
    } else if (emit == "kernels") {
      std::fputs(lower::printPlan(g, lower::planModule(g)).c_str(), stdout);
    } else {
      CompileOptions opts;
      opts.passes = {"dce"};
      opts.emitAssembly = emit == "asm";
      driver::Compiled c = driver::compile(g, "kiln", opts);
      std::fputs(emit == "llvm" ? c.code.llvmOptIR.c_str() : c.code.assembly.c_str(), stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
