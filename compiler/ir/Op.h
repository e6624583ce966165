// Op kinds and their static properties, all generated from Ops.def.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::ir {

enum class OpKind : uint8_t {
#define KILN_OP(Kind, Text, Arity, Flags, Shape, Grad, Family, Doc) Kind,
#include "Ops.def"
};

// Number of rows in Ops.def; bump it when adding an op so every consumer that
// asserts on it is revisited.
inline constexpr int kOpCount = 0
#define KILN_OP(Kind, Text, Arity, Flags, Shape, Grad, Family, Doc) +1
#include "Ops.def"
    ;
static_assert(kOpCount == 64, "Ops.def changed: update kOpCount and review every switch");

namespace OpFlag {
enum : uint32_t {
  None = 0,
  Source = 1u << 0,       // no operands; value supplied from outside a call
  Elementwise = 1u << 1,  // result[i] depends only on operands[i]
  Commutative = 1u << 2,  // binary and order-independent
  Reduction = 1u << 3,    // reduces over the `axes`/`axis` attribute
  Layout = 1u << 4,       // moves data without arithmetic
};
}

// How the interpreter and the lowering execute an op.
enum class FamilyKind : uint8_t {
  Source, Fill, Map, Reduce, ArgReduce, Copy, Transpose, Broadcast, Concat, Slice, Pad, MatMul,
  LogSoftmax, OneHot, Gather, ScatterAdd, TakeAlong, ScatterAlong, Conv2d, Conv2dBwdInput,
  Conv2dBwdFilter, MaxPool2d, MaxPool2dGrad, AvgPool2d, AvgPool2dGrad, Random,
};

std::string_view opName(OpKind op);
std::optional<OpKind> opFromName(std::string_view name);
int opArity(OpKind op);  // -1: variadic (one or more)
std::string_view opDoc(OpKind op);
uint32_t opFlags(OpKind op);
FamilyKind opFamily(OpKind op);

// Whether `op` accepts `n` operands, and how to say what it takes.
inline bool arityAccepts(OpKind op, size_t n) {
  int a = opArity(op);
  return a < 0 ? n >= 1 : n == static_cast<size_t>(a);
}
std::string arityText(OpKind op);  // "2 operand(s)", "one or more operands"

inline bool isSource(OpKind op) { return opFlags(op) & OpFlag::Source; }
inline bool isElementwise(OpKind op) { return opFlags(op) & OpFlag::Elementwise; }
inline bool isCommutative(OpKind op) { return opFlags(op) & OpFlag::Commutative; }
inline bool isReduction(OpKind op) { return opFlags(op) & OpFlag::Reduction; }
inline bool isLayout(OpKind op) { return opFlags(op) & OpFlag::Layout; }

}  // namespace kiln::ir
