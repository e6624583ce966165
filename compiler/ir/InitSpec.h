// How init(seed) fills a param or state: shared by the interpreter, the JIT
// wrapper and the generated AOT header so all three produce the same bits.
#pragma once

#include <kiln/rt/Init.h>

#include "Graph.h"

namespace kiln::ir {

struct InitSpec {
  rt::InitKind kind = rt::InitKind::Zeros;
  float a = 0, b = 0;
  int64_t fanIn = 1, fanOut = 1;
  uint64_t stream = 0;  // derived from the name, so adding a param elsewhere changes nothing
};

InitSpec initSpecOf(const Node& n);

// Fills `data` (n.type.numElements() elements; i32 values are zero-filled).
void initSource(const Node& n, void* data, uint64_t seed);

}  // namespace kiln::ir
