// The MNIST CNN generator: conv5x5x32 - maxpool - conv5x5x64 - maxpool -
// fc128 - fc10 (relu), Adam lr 1e-3, batch 64 (PyTorch's classic MNIST
// network). Writes mnist_cnn.o + mnist_cnn.h at build time (see
// kiln_add_model). The gan example links this model too and loads a
// checkpoint written by `mnist_cnn --save` to classify generated digits.
#include <kiln/kiln.h>

using namespace kiln;

int main(int argc, char** argv) {
  constexpr int64_t kBatch = 64;
  Graph g;
  Tensor x = g.input("x", {kBatch, 784});  // pixels in [0, 1], row-major 28x28
  Tensor y = g.input("y", {kBatch}, DType::I32);
  Conv2d c1(g, "c1", 1, 32, 5), c2(g, "c2", 32, 64, 5);
  MaxPool2d pool;  // 2x2, stride 2
  Linear f1(g, "f1", 64 * 4 * 4, 128), f2(g, "f2", 128, 10);

  Tensor h = reshape(x, {kBatch, 1, 28, 28});
  h = pool(relu(c1(h)));  // [64,32,12,12]
  h = pool(relu(c2(h)));  // [64,64,4,4]
  Tensor logits = f2(relu(f1(reshape(h, {kBatch, 64 * 4 * 4}))));
  Tensor loss = mean(softmaxCrossEntropy(logits, y));

  Module m(g);
  m.addFunction("predict", {x},
                {{"logits", logits}, {"probs", softmax(logits, 1)}, {"label", argmax(logits, 1)}});
  m.addTrainStep("trainStep", loss, Adam{.lr = 1e-3});
  return aot::emit(m, "mnist_cnn", argc, argv);
}
