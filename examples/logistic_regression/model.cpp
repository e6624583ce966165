// The logistic-regression generator: one linear layer from the 784 pixels to
// the 10 class scores, trained with softmax cross-entropy and plain SGD.
// Writes logistic_regression.o + logistic_regression.h at build time.
#include <kiln/kiln.h>

using namespace kiln;

int main(int argc, char** argv) {
  constexpr int64_t kBatch = 64;
  Graph g;
  Tensor x = g.input("x", {kBatch, 784});
  Tensor y = g.input("y", {kBatch}, DType::I32);
  Linear linear(g, "linear", 784, 10);
  Tensor logits = linear(x);
  Tensor loss = mean(softmaxCrossEntropy(logits, y));
  Module m(g);
  m.addFunction("predict", {x}, {{"logits", logits}, {"label", argmax(logits, 1)}});
  m.addTrainStep("trainStep", loss, SGD{.lr = 0.1});
  return aot::emit(m, "logistic_regression", argc, argv);
}
