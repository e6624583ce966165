// The model of the checkpoint tests, built identically by its AOT generator
// and by the JIT resume test: three layers trained with Adam, so a
// checkpoint holds params, both Adam moments and the step counter.
#pragma once

#include <kiln/kiln.h>

inline void buildRobustModel(kiln::Graph& g, kiln::Module& m) {
  using namespace kiln;
  Tensor x = g.input("x", {8, 32});
  Tensor y = g.input("y", {8}, DType::I32);
  Linear l1(g, "l1", 32, 256), l2(g, "l2", 256, 256), l3(g, "l3", 256, 10);
  Tensor logits = l3(tanh(l2(tanh(l1(x)))));
  m.addFunction("predict", {x}, {{"logits", logits}});
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(logits, y)), Adam{.lr = 0.01});
}
