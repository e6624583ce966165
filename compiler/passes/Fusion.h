// Fusion: which values are computed inside their consumers' kernels
// (inlined through element generators) instead of getting a kernel and a
// buffer of their own.
//
// A kernel is a root value plus the tree of inlined values it evaluates per
// element. Roots whose loop can evaluate an operand at any index (elementwise
// maps, reductions, broadcasts, transposes, reshapes) inline operands that are
//   - index-only and free: constants, and broadcasts/transposes/reshapes of
//     free or materialized values, gathers (a table row by the index at
//     each position) and scatter_alongs with one index per slice (an
//     element is src's or 0, by idx), any number of times; or
//   - elementwise computations read by exactly this one consumer, when that
//     consumer evaluates each of their elements exactly once (a map, a
//     reduction, a transpose or reshape chain that ends in one) - never
//     through a broadcast, which would recompute them.
// A 2-D f32 matmul is inlined into a kernel too, as its GEMM's epilogue,
// when its one consumer is an elementwise map of its shape and so is every
// value from there up to the kernel's root (bias, activation, a gradient's
// other terms): the GEMM writes C into the root's buffer and each finished
// tile is overwritten by the root's tree, element by element, while it is
// hot in cache and on the thread that computed it. One matmul per kernel,
// and never in an update's value (an optimizer step over a gradient product
// keeps its in-place update and its loop with the other updates).
// Entry-point outputs and update values are always materialized. Inlining
// performs the same scalar operations in the same order as the separate
// kernels would, so fused results are bit-identical to unfused ones.
#pragma once

#include <vector>

#include "ir/Graph.h"

namespace kiln::passes {

// inlined[v]: v has no kernel or buffer; its consumers compute it. Only
// values with candidate[v] are considered (empty = every value).
std::vector<bool> chooseInlined(const ir::Graph& g, const std::vector<bool>& candidate = {});

// The attribute the `fuse` pass sets on the values it fuses (`fused = 1`);
// lowering honours it where the rules above still allow.
inline constexpr const char* kFusedAttr = "fused";
std::vector<bool> fusedMarks(const ir::Graph& g);

// The materialized values root's kernel reads (through its inlined
// operands), in first-use order, without duplicates.
std::vector<ir::ValueId> kernelInputs(const ir::Graph& g, ir::ValueId root, const std::vector<bool>& inlined);

// Whether a root of this op evaluates its operands through generators.
bool evaluatesOperandsByIndex(ir::OpKind op);

}  // namespace kiln::passes
