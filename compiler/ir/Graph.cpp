// Graph containers and small queries.
#include "Graph.h"

#include <algorithm>
#include <fmt/format.h>

namespace kiln::ir {

std::string SourceLoc::str() const {
  return valid() ? fmt::format("{}:{}", file, line) : std::string();
}

void Attrs::set(std::string key, AttrValue v) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const auto& e, const std::string& k) { return e.first < k; });
  if (it != entries_.end() && it->first == key) {
    it->second = std::move(v);
    return;
  }
  entries_.insert(it, {std::move(key), std::move(v)});
}

bool Attrs::erase(std::string_view key) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.first == key; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

const AttrValue* Attrs::find(std::string_view key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return &v;
  return nullptr;
}

bool Attrs::has(std::string_view key) const { return find(key) != nullptr; }

template <typename T>
static const T& attrAs(const Attrs& a, std::string_view key, const char* what) {
  const AttrValue* v = a.find(key);
  if (!v) throw CompileError(fmt::format("missing attribute '{}'", key));
  const T* t = std::get_if<T>(v);
  if (!t) throw CompileError(fmt::format("attribute '{}' must be {}", key, what));
  return *t;
}

int64_t Attrs::getInt(std::string_view key) const { return attrAs<int64_t>(*this, key, "an integer"); }
int64_t Attrs::getInt(std::string_view key, int64_t def) const {
  return has(key) ? getInt(key) : def;
}
double Attrs::getFloat(std::string_view key) const {
  const AttrValue* v = find(key);
  if (v && std::holds_alternative<int64_t>(*v)) return static_cast<double>(std::get<int64_t>(*v));
  return attrAs<double>(*this, key, "a number");
}
const std::vector<int64_t>& Attrs::getInts(std::string_view key) const {
  return attrAs<std::vector<int64_t>>(*this, key, "an integer list");
}
const std::string& Attrs::getString(std::string_view key) const {
  return attrAs<std::string>(*this, key, "a string");
}

ValueId Graph::add(Node n) {
  nodes_.push_back(std::move(n));
  return static_cast<ValueId>(nodes_.size() - 1);
}

const Function* Graph::findFunction(std::string_view name) const {
  for (const Function& f : functions_)
    if (f.name == name) return &f;
  return nullptr;
}

ValueId Graph::findSource(std::string_view name) const {
  for (ValueId v = 0; v < size(); ++v)
    if (isSource(nodes_[v].op) && nodes_[v].name == name) return v;
  return -1;
}

void Graph::renumber(std::vector<Node> nodes, const std::vector<ValueId>& remap) {
  nodes_ = std::move(nodes);
  auto map = [&](ValueId& v) {
    v = remap.at(static_cast<size_t>(v));
    if (v < 0) throw CompileError("renumber: a function refers to a removed value");
  };
  for (Function& f : functions_) {
    for (ValueId& v : f.inputs) map(v);
    for (Output& o : f.outputs) map(o.value);
    for (Update& u : f.updates) {
      map(u.target);
      map(u.value);
    }
  }
}

std::vector<bool> ancestors(const Graph& g, const std::vector<ValueId>& roots) {
  std::vector<bool> live(static_cast<size_t>(g.size()), false);
  for (ValueId r : roots) live[r] = true;
  for (ValueId v = g.size() - 1; v >= 0; --v) {
    if (!live[v]) continue;
    for (ValueId o : g.node(v).operands) live[o] = true;
  }
  return live;
}

std::vector<ValueId> functionRoots(const Function& f) {
  std::vector<ValueId> roots;
  for (const Output& o : f.outputs) roots.push_back(o.value);
  for (const Update& u : f.updates) {
    roots.push_back(u.target);
    roots.push_back(u.value);
  }
  return roots;
}

}  // namespace kiln::ir
