// Helpers shared by the rewriting passes: rebuilding a graph in index order
// while replacing or inserting nodes, and reading splat constants.
#pragma once

#include <optional>
#include <vector>

#include "ir/Graph.h"

namespace kiln::passes {

// Builds a new node list from an old graph, one old value at a time in index
// order. Each old value is either kept (`keep`), mapped onto a value already
// in the new list (`replace`), or replaced by new nodes (`emit` then
// `replace`). Operands of emitted nodes are *new* ids. `finish` installs the
// new list; it returns false (and leaves the graph alone) when nothing
// changed. Because nodes are only appended, operands stay before their users.
class Rebuilder {
public:
  explicit Rebuilder(const ir::Graph& g) : old_(g), remap_(static_cast<size_t>(g.size()), -1) {}

  // The new id of old value v (v must already be handled).
  ir::ValueId map(ir::ValueId v) const { return remap_.at(static_cast<size_t>(v)); }
  // Old node v with its operands mapped to new ids (not yet added).
  ir::Node mapped(ir::ValueId v) const;
  // Keeps old node v (operands remapped); returns its new id.
  ir::ValueId keep(ir::ValueId v);
  // Appends a new node (operands already new ids); returns its id.
  ir::ValueId emit(ir::Node n);
  // Old value v is from now on the new value `to`.
  void replace(ir::ValueId v, ir::ValueId to);
  // A node already in the new list.
  const ir::Node& node(ir::ValueId newId) const { return nodes_.at(static_cast<size_t>(newId)); }

  bool finish(ir::Graph& g);
  void markChanged() { changed_ = true; }

private:
  const ir::Graph& old_;
  std::vector<ir::Node> nodes_;
  std::vector<ir::ValueId> remap_;
  bool changed_ = false;
};

// The value of a splat `const` node, or nullopt.
std::optional<double> constValue(const ir::Node& n);

}  // namespace kiln::passes
