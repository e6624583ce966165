// The verifier: structural and type rules every graph must satisfy. It
// reports every problem, each naming the value and the rule broken.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <set>

#include "Shapes.h"
#include "Text.h"

namespace kiln::ir {

static void verifyFunction(const Graph& g, const Function& f, std::vector<std::string>& out) {
  auto bad = [&](ValueId v) { return v < 0 || v >= g.size(); };
  std::string where = fmt::format("function @{}", f.name);
  const size_t problemsBefore = out.size();
  std::set<ValueId> declared;
  for (ValueId v : f.inputs) {
    if (bad(v) || g.node(v).op != OpKind::Input) {
      out.push_back(fmt::format("{}: input {} is not an input value", where, describeValue(g, v)));
      continue;
    }
    if (!declared.insert(v).second)
      out.push_back(fmt::format("{}: input {} is declared twice", where, describeValue(g, v)));
  }
  std::set<std::string> outNames;
  for (const Output& o : f.outputs) {
    if (bad(o.value)) out.push_back(fmt::format("{}: output '{}' refers to missing value %{}", where, o.name, o.value));
    if (!outNames.insert(o.name).second) out.push_back(fmt::format("{}: output name '{}' used twice", where, o.name));
  }
  std::set<ValueId> targets;
  for (const Update& u : f.updates) {
    if (bad(u.target) || bad(u.value)) {
      out.push_back(fmt::format("{}: update %{} = %{} refers to a missing value", where, u.target, u.value));
      continue;
    }
    OpKind k = g.node(u.target).op;
    if (k != OpKind::Param && k != OpKind::State)
      out.push_back(fmt::format("{}: update target {} is not a param or state", where, describeValue(g, u.target)));
    if (g.type(u.target) != g.type(u.value))
      out.push_back(fmt::format("{}: update of {} has type {}, target is {}", where, describeValue(g, u.target),
                                typeStr(g.type(u.value)), typeStr(g.type(u.target))));
    if (!targets.insert(u.target).second)
      out.push_back(fmt::format("{}: {} is updated twice", where, describeValue(g, u.target)));
  }
  if (out.size() != problemsBefore) return;  // the liveness walk needs valid ids
  std::vector<bool> live = ancestors(g, functionRoots(f));
  for (ValueId v = 0; v < g.size(); ++v)
    if (live[v] && g.node(v).op == OpKind::Input && !declared.count(v))
      out.push_back(fmt::format("{}: reads input {} but does not declare it", where, describeValue(g, v)));
}

std::vector<std::string> verifyGraph(const Graph& g) {
  std::vector<std::string> out;
  std::set<std::string> sourceNames;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    std::string what = describeValue(g, v);
    if (!arityAccepts(n.op, n.operands.size())) {
      out.push_back(fmt::format("{}: takes {}, has {}", what, arityText(n.op), n.operands.size()));
      continue;
    }
    bool operandsOk = true;
    for (ValueId o : n.operands) {
      if (o < 0 || o >= v) {
        out.push_back(fmt::format("{}: operand %{} is not defined before it", what, o));
        operandsOk = false;
      }
    }
    if (!operandsOk) continue;
    if (isSource(n.op) && !sourceNames.insert(n.name).second)
      out.push_back(fmt::format("{}: name \"{}\" is used by another input, param or state", what, n.name));
    TypeResult r = inferType(g, n);
    if (!r.type) out.push_back(fmt::format("{}: {}", what, r.error));
    else if (*r.type != n.type)
      out.push_back(fmt::format("{}: has type {} but its rule gives {}", what, typeStr(n.type), typeStr(*r.type)));
  }
  std::set<std::string> fnNames;
  for (const Function& f : g.functions()) {
    if (!fnNames.insert(f.name).second) out.push_back(fmt::format("function @{} is defined twice", f.name));
    verifyFunction(g, f, out);
  }
  return out;
}

void verifyOrThrow(const Graph& g, std::string_view context) {
  auto problems = verifyGraph(g);
  if (problems.empty()) return;
  throw CompileError(fmt::format("{}: invalid graph:\n  {}", context, fmt::join(problems, "\n  ")));
}

}  // namespace kiln::ir
