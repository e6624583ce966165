// Aliases in the memory plan: views (a reshape, stop_gradient or contiguous
// row slice sharing its operand's bytes) and concats assembled in place (each
// input's kernel writing its slot of the concat's buffer). Plan.cpp's top
// comment gives the rules that keep them correct; this chooses them.
#pragma once

#include <vector>

#include "lower/Plan.h"

namespace kiln::lower {

// Values whose bytes lie in another value's buffer, by value id, chosen
// module-wide since a value's buffer is the same in every function.
struct Aliases {
  std::vector<ir::ValueId> baseOf;    // a view's operand; -1 for other values
  std::vector<bool> assembled;        // concats whose inputs are all written in place
  std::vector<ir::ValueId> parentOf;  // the value whose buffer directly holds it (a view's operand,
                                      // a placed input's concat); -1
  std::vector<int64_t> parentAt;      // its byte offset there
  std::vector<ir::ValueId> rootOf;    // the value whose own buffer holds it (itself when it has its own)
  std::vector<int64_t> rootAt;        // its byte offset there
};

// Chooses views and, with `place`, assembled concats (none of either when
// !enabled); liveBy gives the values each function computes or reads, and
// p the persistent offsets and fusion marks planned so far.
Aliases chooseAliases(const ir::Graph& g, const ModulePlan& p, bool enabled, bool place,
                      const std::vector<std::vector<bool>>& liveBy);

}  // namespace kiln::lower
