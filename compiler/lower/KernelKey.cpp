// Structural kernel keys (KernelKey.h).
#include "KernelKey.h"

#include <algorithm>
#include <fmt/format.h>

#include "ir/Text.h"
#include "passes/Fusion.h"

namespace kiln::lower {

namespace {

// attribute values exactly: floats as hexadecimal, strings with their length
void appendAttrs(std::string& s, const ir::Attrs& attrs) {
  s += '{';
  for (const auto& [name, v] : attrs.entries()) {
    s += name;
    s += '=';
    if (auto* i = std::get_if<int64_t>(&v)) s += fmt::format("i{}", *i);
    else if (auto* d = std::get_if<double>(&v)) s += fmt::format("f{:a}", *d);
    else if (auto* l = std::get_if<std::vector<int64_t>>(&v)) s += fmt::format("[{}]", fmt::join(*l, ","));
    else {
      const std::string& str = std::get<std::string>(v);
      s += fmt::format("s{}:{}", str.size(), str);
    }
    s += ';';
  }
  s += '}';
}

void appendNode(std::string& s, const ir::Node& n) {
  s += ir::opName(n.op);
  appendAttrs(s, n.attrs);
  s += ':';
  s += ir::typeStr(n.type);
}

// The fused tree under `v` in codegen's order (operands left to right);
// a value read from a buffer is `$i:type`, i its position in the inputs.
void appendTree(std::string& s, const ir::Graph& g, const std::vector<bool>& inlined, const Kernel& k, ir::ValueId v) {
  const ir::Node& n = g.node(v);
  if (!inlined[v]) {
    auto it = std::find(k.inputs.begin(), k.inputs.end(), v);
    s += fmt::format("${}:{}", it - k.inputs.begin(), ir::typeStr(n.type));
    return;
  }
  appendNode(s, n);
  s += '(';
  for (ir::ValueId o : n.operands) {
    appendTree(s, g, inlined, k, o);
    s += ',';
  }
  s += ')';
}

}  // namespace

std::string kernelKey(const ir::Graph& g, const std::vector<bool>& inlined, const Kernel& k) {
  const ir::Node& n = g.node(k.value);
  std::string s = fmt::format("scratch={} inputs={} inplace={} ", k.scratchBytes, k.inputs.size(), k.inPlaceInput);
  appendNode(s, n);
  s += '(';
  if (passes::evaluatesOperandsByIndex(n.op)) {
    for (ir::ValueId o : n.operands) {
      appendTree(s, g, inlined, k, o);
      s += ',';
    }
  } else {
    for (ir::ValueId o : n.operands) s += ir::typeStr(g.type(o)) + ",";
  }
  s += ')';
  return s;
}

}  // namespace kiln::lower
