// cse: merges ops that compute the same thing — same op, same operands (in a
// canonical order for commutative ops), equal attributes and equal type — so
// each is computed once. Sources are never merged: two inputs or params with
// equal types are different values. The first occurrence (lowest id) wins,
// keeping its location; later ones are mapped onto it.
#include <cstring>
#include <map>
#include <tuple>

#include "Passes.h"
#include "Rewrite.h"

namespace kiln::passes {
namespace {

// Attributes compare as a printed-free tuple: std::variant orders by index,
// then value, which is a total order for ints, strings and lists. Doubles are
// compared by bit pattern so that 0.0 and -0.0 (or two NaNs) are told apart
// exactly as the kernels would tell them apart.
struct Key {
  ir::OpKind op;
  std::vector<ir::ValueId> operands;
  std::vector<std::pair<std::string, std::variant<int64_t, uint64_t, std::vector<int64_t>, std::string>>> attrs;
  ir::TensorType type;

  auto tie() const { return std::tie(op, operands, attrs, type.dtype, type.shape); }
  bool operator<(const Key& o) const { return tie() < o.tie(); }
};

Key keyOf(const ir::Node& n) {
  Key k{n.op, n.operands, {}, n.type};
  // a op b == b op a: order the operands so both spellings give one key
  if (ir::isCommutative(n.op) && k.operands.size() == 2 && k.operands[1] < k.operands[0])
    std::swap(k.operands[0], k.operands[1]);
  for (const auto& [name, v] : n.attrs.entries()) {
    if (auto* d = std::get_if<double>(&v)) {
      uint64_t bits;
      static_assert(sizeof bits == sizeof *d);
      std::memcpy(&bits, d, sizeof bits);
      k.attrs.push_back({name, bits});
    } else if (auto* i = std::get_if<int64_t>(&v)) {
      k.attrs.push_back({name, *i});
    } else if (auto* l = std::get_if<std::vector<int64_t>>(&v)) {
      k.attrs.push_back({name, *l});
    } else {
      k.attrs.push_back({name, std::get<std::string>(v)});
    }
  }
  return k;
}

}  // namespace

bool runCSE(ir::Graph& g) {
  Rebuilder rb(g);
  std::map<Key, ir::ValueId> seen;  // key (new operand ids) -> new id
  for (ir::ValueId v = 0; v < g.size(); ++v) {
    if (ir::isSource(g.node(v).op)) {
      rb.keep(v);
      continue;
    }
    Key k = keyOf(rb.mapped(v));
    auto it = seen.find(k);
    if (it != seen.end()) {
      rb.replace(v, it->second);
      continue;
    }
    seen.emplace(std::move(k), rb.keep(v));
  }
  return rb.finish(g);
}

}  // namespace kiln::passes
