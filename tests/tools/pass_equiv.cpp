// pass_equiv FILE.kir...: for each graph, runs the default pipeline one pass
// at a time and checks that the interpreter gives every function's outputs
// and update values the same before and after each pass, on random sources
// (positive f32 values, so log and sqrt stay finite; i32 values in [0, 3), so
// labels and indices are in range for every example model). Bit-exact
// except after the passes that may round differently (simplify's
// sum-of-broadcast, stable's rewrites, batch's joined sums; see
// docs/passes.md), which get a relative tolerance; each pass is compared
// with the graph before it. Used by tests/check-dumps.sh on every example's dump.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "interp/Interpreter.h"
#include "ir/Text.h"
#include "kiln/rt/Random.h"
#include "passes/Passes.h"

using namespace kiln;
using interp::HostTensor;

namespace {

using NamedSources = std::map<std::string, HostTensor>;

NamedSources randomSources(const ir::Graph& g) {
  NamedSources out;
  uint64_t stream = 1;
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (!ir::isSource(n.op)) continue;
    HostTensor t = HostTensor::zeros(n.type);
    for (int64_t i = 0; i < t.size(); ++i) {
      float u = rt::uniform01(7, stream, static_cast<uint64_t>(i));
      if (n.type.dtype == ir::DType::F32) t.f[i] = 0.25f + 1.75f * u;
      else t.i[i] = static_cast<int32_t>(u * 3.0f);
    }
    ++stream;
    out[n.name] = t;
  }
  return out;
}

std::vector<HostTensor> evaluateAll(const ir::Graph& g, const NamedSources& s) {
  std::map<ir::ValueId, HostTensor> bound;
  for (const auto& [name, t] : s) {
    ir::ValueId v = g.findSource(name);
    if (v >= 0) bound[v] = t;
  }
  std::vector<ir::ValueId> roots;
  for (const ir::Function& f : g.functions()) {
    for (const ir::Output& o : f.outputs) roots.push_back(o.value);
    for (const ir::Update& u : f.updates) roots.push_back(u.value);
  }
  return interp::evaluate(g, roots, bound);
}

bool close(float got, float want, bool exact) {
  if (std::memcmp(&got, &want, sizeof got) == 0 || (std::isnan(got) && std::isnan(want))) return true;
  return !exact && std::fabs(got - want) <= 1e-6f + 1e-4f * std::fabs(want);
}

// Empty when equal, else what differs.
std::string compare(const std::vector<HostTensor>& got, const std::vector<HostTensor>& want, bool exact) {
  if (got.size() != want.size()) return fmt::format("{} results instead of {}", got.size(), want.size());
  for (size_t r = 0; r < want.size(); ++r) {
    if (got[r].i != want[r].i) return fmt::format("result {}: i32 values differ", r);
    for (size_t k = 0; k < want[r].f.size(); ++k)
      if (!close(got[r].f[k], want[r].f[k], exact))
        return fmt::format("result {} element {}: {} instead of {}", r, k, got[r].f[k], want[r].f[k]);
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  int failures = 0;
  for (int a = 1; a < argc; ++a) {
    try {
      std::ifstream in(argv[a]);
      std::stringstream ss;
      ss << in.rdbuf();
      ir::Graph g = ir::parseGraph(ss.str(), argv[a]);
      NamedSources src = randomSources(g);
      std::vector<HostTensor> want = evaluateAll(g, src);
      std::string text = ir::printGraph(g);
      for (const std::string& pass : passes::defaultPipeline()) {
        passes::runPasses(g, {pass}, true);
        // a graph that prints the same computes the same: skip the
        // interpreter (the slow part on the large models)
        std::string after = ir::printGraph(g);
        if (after == text) continue;
        text = std::move(after);
        bool exact = pass != "simplify" && pass != "stable" && pass != "batch";
        std::vector<HostTensor> got = evaluateAll(g, src);
        std::string diff = compare(got, want, exact);
        if (!diff.empty()) {
          std::fprintf(stderr, "pass_equiv: %s: after %s: %s\n", argv[a], pass.c_str(), diff.c_str());
          ++failures;
          break;
        }
        want = std::move(got);  // each pass against the graph before it
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pass_equiv: %s: %s\n", argv[a], e.what());
      ++failures;
    }
  }
  return failures ? 1 : 0;
}
