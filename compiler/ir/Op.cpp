// Op property tables generated from Ops.def.
#include "Op.h"

#include <array>

namespace kiln::ir {
namespace {

struct OpInfo {
  std::string_view name;
  int arity;
  uint32_t flags;
  FamilyKind family;
  std::string_view doc;
};

using namespace OpFlag;
constexpr std::array<OpInfo, kOpCount> kOpInfo = {{
#define KILN_OP(Kind, Text, Arity, Flags, Shape, Grad, Family, Doc) \
  {Text, Arity, Flags, FamilyKind::Family, Doc},
#include "Ops.def"
}};

}  // namespace

std::string_view opName(OpKind op) { return kOpInfo[static_cast<int>(op)].name; }
int opArity(OpKind op) { return kOpInfo[static_cast<int>(op)].arity; }
uint32_t opFlags(OpKind op) { return kOpInfo[static_cast<int>(op)].flags; }
FamilyKind opFamily(OpKind op) { return kOpInfo[static_cast<int>(op)].family; }
std::string_view opDoc(OpKind op) { return kOpInfo[static_cast<int>(op)].doc; }

std::string arityText(OpKind op) {
  int a = opArity(op);
  return a < 0 ? std::string("one or more operands") : std::to_string(a) + " operand(s)";
}

std::optional<OpKind> opFromName(std::string_view name) {
  for (int i = 0; i < kOpCount; ++i)
    if (kOpInfo[i].name == name) return static_cast<OpKind>(i);
  return std::nullopt;
}

}  // namespace kiln::ir
