// Helpers shared by the rewriting passes: rebuilding a graph in index order
// while replacing or inserting nodes (Rebuilder), editing a graph by appending
// nodes and redirecting values, then sorting (Editor), and reading splat
// constants.
#pragma once

#include <map>
#include <optional>
#include <utility>
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

// A graph being rewritten: the committed graph's nodes plus appended ones,
// and replacements (old value -> its new value). `commit` sorts, drops what
// no entry point needs, and installs the result. New nodes are placed by a
// topological sort that keeps the old order where it can (each new node
// right after its latest operand). Used by the batch and stack passes.
class Editor {
public:
  explicit Editor(const ir::Graph& g);

  const ir::Node& node(ir::ValueId v) const { return nodes_.at(static_cast<size_t>(v)); }

  // Appends n (its operands resolved); returns its id.
  ir::ValueId add(ir::Node n);
  // An existing node equal to n (op, type, resolved operands, attributes) if
  // there is one, else n appended: so a rewrite adds no duplicate that cse
  // would later merge.
  ir::ValueId findOrAdd(ir::Node n);
  void replace(ir::ValueId old, ir::ValueId by) { repl_.at(static_cast<size_t>(old)) = resolve(by); }

  // The concat of `ops` along `axis` (reusing an equal one), located at loc.
  ir::ValueId concat(std::vector<ir::ValueId> ops, int64_t axis, const ir::SourceLoc& loc);
  // Indices i0 .. i1 of v's axis `axis` (a slice, every other dim whole), located at loc.
  ir::ValueId along(ir::ValueId v, size_t axis, int64_t i0, int64_t i1, const ir::SourceLoc& loc);
  // Rows r0 .. r1 of v (along axis 0).
  ir::ValueId rows(ir::ValueId v, int64_t r0, int64_t r1, const ir::SourceLoc& loc) { return along(v, 0, r0, r1, loc); }
  // Columns c0 .. c1 of v (along axis 1).
  ir::ValueId columns(ir::ValueId v, int64_t c0, int64_t c1, const ir::SourceLoc& loc) {
    return along(v, 1, c0, c1, loc);
  }
  // acc + term (term itself when there is no acc yet, acc < 0), of type t.
  ir::ValueId sum(ir::ValueId acc, ir::ValueId term, const ir::TensorType& t, const ir::SourceLoc& loc);

  // The operand order of an existing concat along `axis` of exactly the
  // values `ops` (each once), if there is one.
  std::optional<std::vector<ir::ValueId>> concatOrder(std::vector<ir::ValueId> ops, int64_t axis) const;

  bool commit(ir::Graph& g);

  ir::ValueId resolve(ir::ValueId v) const {
    while (repl_[v] != v) v = repl_[v];
    return v;
  }

private:
  void rememberConcat(ir::ValueId v);

  const ir::Graph& g_;
  ir::ValueId base_;
  std::vector<ir::Node> nodes_;
  std::vector<ir::ValueId> repl_;
  std::vector<int64_t> rank_;  // sort key: old id (-1 for sources), or a new node's latest operand
  std::map<std::pair<int64_t, std::vector<ir::ValueId>>, ir::ValueId> exact_, bySet_;
};

// The value of a splat `const` node, or nullopt.
std::optional<double> constValue(const ir::Node& n);

}  // namespace kiln::passes
