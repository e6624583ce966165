// Printing graphs as .kir text.
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "Text.h"

namespace kiln::ir {

std::string formatFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

static std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

static std::string attrStr(const AttrValue& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return fmt::format("{}", *i);
  if (auto* d = std::get_if<double>(&v)) return formatFloat(*d);
  if (auto* l = std::get_if<std::vector<int64_t>>(&v)) return fmt::format("[{}]", fmt::join(*l, ", "));
  return quote(std::get<std::string>(v));
}

std::string printNode(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  std::string s = fmt::format("%{} = {}", v, opName(n.op));
  if (!n.name.empty()) s += " " + quote(n.name);
  for (size_t i = 0; i < n.operands.size(); ++i) s += fmt::format("{} %{}", i ? "," : "", n.operands[i]);
  if (!n.attrs.entries().empty()) {
    s += " {";
    bool first = true;
    for (const auto& [k, val] : n.attrs.entries()) {
      s += fmt::format("{}{} = {}", first ? "" : ", ", k, attrStr(val));
      first = false;
    }
    s += "}";
  }
  s += " : " + typeStr(n.type);
  if (n.loc.valid()) s += fmt::format(" loc({})", quote(n.loc.str()));
  return s;
}

std::string describeValue(const Graph& g, ValueId v) {
  if (v < 0 || v >= g.size()) return fmt::format("%{}", v);
  const Node& n = g.node(v);
  std::string s = fmt::format("%{} ({}", v, opName(n.op));
  if (!n.name.empty()) s += " " + quote(n.name);
  if (n.loc.valid()) s += " at " + n.loc.str();
  return s + ")";
}

std::string printGraph(const Graph& g) {
  std::string out;
  for (ValueId v = 0; v < g.size(); ++v) out += printNode(g, v) + "\n";
  for (const Function& f : g.functions()) {
    std::vector<std::string> ins, outs, upds;
    for (ValueId v : f.inputs) ins.push_back(fmt::format("%{}", v));
    for (const Output& o : f.outputs) outs.push_back(fmt::format("{} = %{}", o.name, o.value));
    for (const Update& u : f.updates) upds.push_back(fmt::format("%{} = %{}", u.target, u.value));
    out += fmt::format("func @{}({}) -> ({})", f.name, fmt::join(ins, ", "), fmt::join(outs, ", "));
    if (!upds.empty()) out += fmt::format(" updates ({})", fmt::join(upds, ", "));
    out += "\n";
  }
  return out;
}

}  // namespace kiln::ir
