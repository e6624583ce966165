// dce: removes values no entry point needs. Inputs, params and state stay:
// they are the module's interface even when unused.
#include "Passes.h"

namespace kiln::passes {

bool runDCE(ir::Graph& g) {
  std::vector<ir::ValueId> roots;
  for (const ir::Function& f : g.functions())
    for (ir::ValueId v : ir::functionRoots(f)) roots.push_back(v);
  for (ir::ValueId v = 0; v < g.size(); ++v)
    if (ir::isSource(g.node(v).op)) roots.push_back(v);
  std::vector<bool> live = ir::ancestors(g, roots);
  bool changed = false;
  for (bool l : live) changed |= !l;
  if (!changed) return false;
  std::vector<ir::Node> kept;
  std::vector<ir::ValueId> remap(static_cast<size_t>(g.size()), -1);
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    if (!live[v]) continue;
    ir::Node n = g.node(v);
    for (ir::ValueId& o : n.operands) o = remap[o];
    remap[v] = static_cast<ir::ValueId>(kept.size());
    kept.push_back(std::move(n));
  }
  g.renumber(std::move(kept), remap);
  return true;
}

}  // namespace kiln::passes
