// Structural keys of kernels: two kernels with the same key compile to the
// same function body and differ only in the buffers they are called with,
// so codegen emits one LLVM function per key (an unrolled recurrence's T
// steps then share their kernels).
#pragma once

#include <string>

#include "lower/Plan.h"

namespace kiln::lower {

// Everything the emitted body depends on, and nothing else (no value ids):
// the root's op, attributes and type; for ops that index their operands
// themselves each operand's type in order; for generator roots the fused
// tree as codegen walks it, with every buffer it reads named by its
// position in Kernel::inputs (its first-visit order, the same for every
// instance of the tree); and the scratch bytes.
std::string kernelKey(const ir::Graph& g, const std::vector<bool>& inlined, const Kernel& k);

}  // namespace kiln::lower
