// The graph IR: SSA values in one vector, each produced by one node. Operands
// always refer to earlier nodes, so index order is a topological order.
// A graph also carries its entry points (functions) and their state updates.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "Op.h"
#include "Type.h"

namespace kiln::ir {

using ValueId = int32_t;

// An error in building, parsing or verifying a graph. The message is complete
// (it already names the file:line or value it is about).
struct CompileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Where the DSL call that built a node sits in the user's source.
struct SourceLoc {
  std::string file;  // base name only, so dumps do not depend on checkout paths
  int line = 0;
  bool valid() const { return line > 0; }
  std::string str() const;  // "model.cpp:14" or "" when unknown
};

using AttrValue = std::variant<int64_t, double, std::vector<int64_t>, std::string>;

// Attributes are a small key-sorted list so printing is deterministic.
class Attrs {
public:
  void set(std::string key, AttrValue v);
  bool erase(std::string_view key);  // false if absent
  bool has(std::string_view key) const;
  const AttrValue* find(std::string_view key) const;
  int64_t getInt(std::string_view key) const;
  double getFloat(std::string_view key) const;
  const std::vector<int64_t>& getInts(std::string_view key) const;
  const std::string& getString(std::string_view key) const;
  int64_t getInt(std::string_view key, int64_t def) const;
  const std::vector<std::pair<std::string, AttrValue>>& entries() const { return entries_; }
  bool operator==(const Attrs&) const = default;

private:
  std::vector<std::pair<std::string, AttrValue>> entries_;
};

struct Node {
  OpKind op = OpKind::Constant;
  TensorType type;
  std::vector<ValueId> operands;
  Attrs attrs;
  std::string name;  // inputs, params and state: the user-visible name
  SourceLoc loc;
};

struct Update {
  ValueId target;  // a param or state
  ValueId value;   // its new value, written when the call finishes
};

struct Output {
  std::string name;
  ValueId value;
};

// An entry point: reads the inputs it declares plus params and state,
// returns its outputs, and then writes its updates in place.
struct Function {
  std::string name;
  std::vector<ValueId> inputs;
  std::vector<Output> outputs;
  std::vector<Update> updates;
};

class Graph {
public:
  ValueId add(Node n);
  const Node& node(ValueId v) const { return nodes_.at(static_cast<size_t>(v)); }
  Node& node(ValueId v) { return nodes_.at(static_cast<size_t>(v)); }
  const TensorType& type(ValueId v) const { return node(v).type; }
  int32_t size() const { return static_cast<int32_t>(nodes_.size()); }
  const std::vector<Node>& nodes() const { return nodes_; }

  std::vector<Function>& functions() { return functions_; }
  const std::vector<Function>& functions() const { return functions_; }
  const Function* findFunction(std::string_view name) const;
  // The source node with this name (input, param or state), or -1.
  ValueId findSource(std::string_view name) const;

  // Replaces the node list wholesale (used by passes that renumber), mapping
  // function references through `remap` (old id -> new id, -1 = dropped).
  void renumber(std::vector<Node> nodes, const std::vector<ValueId>& remap);

private:
  std::vector<Node> nodes_;
  std::vector<Function> functions_;
};

// Values reachable backwards from `roots` (inclusive), as a mask by id.
std::vector<bool> ancestors(const Graph& g, const std::vector<ValueId>& roots);

// Every value a function needs: its outputs' and updates' ancestors.
std::vector<ValueId> functionRoots(const Function& f);

}  // namespace kiln::ir
