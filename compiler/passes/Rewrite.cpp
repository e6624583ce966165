// Graph rebuilding shared by the rewriting passes.
#include "Rewrite.h"

namespace kiln::passes {

ir::Node Rebuilder::mapped(ir::ValueId v) const {
  ir::Node n = old_.node(v);
  for (ir::ValueId& o : n.operands) o = map(o);
  return n;
}

ir::ValueId Rebuilder::keep(ir::ValueId v) {
  ir::Node n = mapped(v);
  if (static_cast<ir::ValueId>(nodes_.size()) != v) changed_ = true;
  const std::vector<ir::ValueId>& was = old_.node(v).operands;
  for (size_t i = 0; i < was.size(); ++i) changed_ |= n.operands[i] != was[i];
  remap_[v] = static_cast<ir::ValueId>(nodes_.size());
  nodes_.push_back(std::move(n));
  return remap_[v];
}

ir::ValueId Rebuilder::emit(ir::Node n) {
  changed_ = true;
  nodes_.push_back(std::move(n));
  return static_cast<ir::ValueId>(nodes_.size() - 1);
}

void Rebuilder::replace(ir::ValueId v, ir::ValueId to) {
  changed_ = true;
  remap_[v] = to;
}

bool Rebuilder::finish(ir::Graph& g) {
  if (!changed_ && nodes_.size() == static_cast<size_t>(old_.size())) return false;
  g.renumber(std::move(nodes_), remap_);
  return true;
}

std::optional<double> constValue(const ir::Node& n) {
  if (n.op != ir::OpKind::Constant) return std::nullopt;
  const ir::AttrValue* a = n.attrs.find("value");
  if (!a) return std::nullopt;
  if (auto* d = std::get_if<double>(a)) return *d;
  if (auto* i = std::get_if<int64_t>(a)) return static_cast<double>(*i);
  return std::nullopt;
}

}  // namespace kiln::passes
