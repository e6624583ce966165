// The MNIST MLP generator: builds the model with kiln's DSL and writes
// mnist_mlp.o + mnist_mlp.h at build time (see kiln_add_model).
#include <kiln/kiln.h>

using namespace kiln;

int main(int argc, char** argv) {
  constexpr int64_t kBatch = 64;
  Graph g;
  Tensor x = g.input("x", {kBatch, 784});
  Tensor y = g.input("y", {kBatch}, DType::I32);
  Linear l1(g, "l1", 784, 128), l2(g, "l2", 128, 10);
  Tensor logits = l2(relu(l1(x)));
  Tensor loss = mean(softmaxCrossEntropy(logits, y));
  Module m(g);
  m.addFunction("predict", {x}, {{"logits", logits}, {"label", argmax(logits, 1)}});
  m.addTrainStep("trainStep", loss, Adam{.lr = 1e-3});
  return aot::emit(m, "mnist_mlp", argc, argv);
}
