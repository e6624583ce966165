// The tiny model of the AOT test, built identically by its generator and by
// the interpreter side of the comparison.
#pragma once

#include <kiln/kiln.h>

inline void buildTinyModel(kiln::Graph& g, kiln::Module& m) {
  using namespace kiln;
  Tensor x = g.input("x", {4, 6});
  Tensor y = g.input("y", {4}, DType::I32);
  Linear l1(g, "l1", 6, 5), l2(g, "l2", 5, 3);
  Tensor logits = l2(tanh(l1(x)));
  m.addFunction("predict", {x}, {{"logits", logits}});
  m.addTrainStep("trainStep", mean(softmaxCrossEntropy(logits, y)), Adam{.lr = 0.05});
}
