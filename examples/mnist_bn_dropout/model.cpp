// The MNIST generator with batch normalization and dropout: a 784-256-128-10
// MLP, each hidden layer linear -> batch norm -> relu -> dropout. The
// network is built twice over the same params: in training mode for the
// training step (batch statistics, which also update the running statistics,
// and dropout on) and in inference mode for `predict` (running statistics,
// dropout off). Writes mnist_bn_dropout.o + mnist_bn_dropout.h at build time.
#include <kiln/kiln.h>

using namespace kiln;

int main(int argc, char** argv) {
  constexpr int64_t kBatch = 64;
  Graph g;
  Tensor x = g.input("x", {kBatch, 784});
  Tensor y = g.input("y", {kBatch}, DType::I32);
  // No bias before a batch norm: its beta plays that part.
  Linear l1(g, "l1", 784, 256, /*bias=*/false), l2(g, "l2", 256, 128, /*bias=*/false), l3(g, "l3", 128, 10);
  BatchNorm bn1(g, "bn1", 256), bn2(g, "bn2", 128);
  Dropout drop{.p = 0.25};
  auto forward = [&](bool training) {
    Tensor h = drop(relu(bn1(l1(x), training)), training);
    h = drop(relu(bn2(l2(h), training)), training);
    return l3(h);
  };
  Tensor logits = forward(/*training=*/true);
  Tensor loss = mean(softmaxCrossEntropy(logits, y));
  Tensor evalLogits = forward(/*training=*/false);
  Module m(g);
  m.addFunction("predict", {x}, {{"logits", evalLogits}, {"label", argmax(evalLogits, 1)}});
  m.addTrainStep("trainStep", loss, Adam{.lr = 1e-3});
  return aot::emit(m, "mnist_bn_dropout", argc, argv);
}
