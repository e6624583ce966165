// The interpreter's per-op kernels (Kernels.cpp), and the scalar semantics
// the code generator must reproduce.
#pragma once

#include <cstdint>
#include <vector>

#include "Interpreter.h"

namespace kiln::interp {

// Evaluates node `v` given the values of its operands in `env`.
HostTensor evalNode(const ir::Graph& g, ir::ValueId v, const std::vector<HostTensor>& env);

// Scalar semantics of the elementwise ops (b is ignored by unary ops).
float scalarF(const ir::Node& n, float a, float b);
int32_t scalarI(const ir::Node& n, int32_t a, int32_t b);
// f32 -> i32: truncation toward 0, saturating, NaN -> 0 (LLVM fptosi.sat).
int32_t castToI32(float x);
// The 64-bit seed of a `random` op's i32[2] key (lo, hi).
uint64_t randomSeedOf(int32_t lo, int32_t hi);

}  // namespace kiln::interp
