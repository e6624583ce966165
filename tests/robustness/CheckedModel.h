// The model of the checked-mode tests, built identically by the JIT test and
// the AOT generator: w * x through exp, trained to *maximize* the mean, so
// SGD grows w until exp overflows (on call 3 for the inputs of
// CheckedInputs.h, which works out where in plain float arithmetic).
#pragma once

#include <kiln/kiln.h>

#include "CheckedInputs.h"

namespace checked_model {

// Returns the line of the exp.
inline int build(kiln::Graph& g, kiln::Module& m) {
  using namespace kiln;
  Tensor x = g.input("x", {4});
  Tensor w = g.param("w", {4}, Init::constant(1.0));
  Tensor e = exp(w * x); const int expLine = __LINE__;
  m.addFunction("predict", {x}, {{"e", e}});
  m.addTrainStep("trainStep", -mean(e), SGD{.lr = 10.0});
  return expLine;
}

}  // namespace checked_model
