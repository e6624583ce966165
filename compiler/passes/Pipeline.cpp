// The pass registry (from Passes.def) and the pass runner.
#include <chrono>
#include <fmt/format.h>

#include "Passes.h"
#include "ir/Text.h"

namespace kiln::passes {

const std::vector<PassInfo>& allPasses() {
  static const std::vector<PassInfo> passes = {
#define KILN_PASS(Fn, Name) {Name, &Fn},
#include "Passes.def"
  };
  return passes;
}

const PassInfo* findPass(std::string_view name) {
  for (const PassInfo& p : allPasses())
    if (p.name == name) return &p;
  return nullptr;
}

// Short and linear on purpose: one line per step, each logged by runPasses
// (PassRecord) and dumped by the driver as NN-<pass>.kir.
std::vector<std::string> defaultPipeline() {
  return {
      "dce",       // drop what no entry point needs, so later passes see less
      "cse",       // one value per distinct computation (e.g. Adam's per-param constants)
      "fold",      // constant subgraphs -> splat consts (broadcast(const) included)
      "simplify",  // algebraic identities over the folded constants
      "stable",    // numerically stable forms of log(softmax), log(sigmoid), log(sum(exp)), log(1+x)
      "cse",       // simplify can make ops equal (matmul(transpose(a), b) becomes matmul(a, b, ta))
      "dce",       // drop what cse/fold/simplify left unused
      "batch",     // an unrolled loop's small matmuls -> a few large ones (sums joined along K, shared weights stacked)
      "stack",     // an unrolled loop's per-step row-wise ops (bias, logsoftmax, loss) -> one op over the stacked rows
      "schedule",  // kernel order with a lower peak of live temporaries
      "fuse",      // mark elementwise producers their consumers' kernels compute
  };
}

std::vector<PassRecord> runPasses(ir::Graph& g, const std::vector<std::string>& names, bool verifyEach,
                                  const std::function<void(const PassRecord&, const ir::Graph&)>& after) {
  std::vector<PassRecord> records;
  for (const std::string& name : names) {
    const PassInfo* p = findPass(name);
    if (!p) {
      std::string known;
      for (const PassInfo& q : allPasses()) known += (known.empty() ? "" : ", ") + std::string(q.name);
      throw ir::CompileError(fmt::format("unknown pass '{}' (known: {})", name, known));
    }
    PassRecord r;
    r.name = name;
    r.nodesBefore = g.size();
    auto t0 = std::chrono::steady_clock::now();
    r.changed = p->fn(g);
    r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    r.nodesAfter = g.size();
    if (verifyEach) ir::verifyOrThrow(g, fmt::format("after pass '{}'", name));
    if (after) after(r, g);
    records.push_back(r);
  }
  return records;
}

}  // namespace kiln::passes
