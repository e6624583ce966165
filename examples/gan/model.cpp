// The MNIST GAN generator: an MLP generator G (z[64] -> 256 -> 784, leaky
// relu, tanh) and discriminator D (784 -> 256 -> 1, leaky relu), trained with
// bceWithLogits and Adam (lr 2e-4, beta1 0.5) as two training steps over the
// same params: dStep updates D with G frozen, gStep updates G with D frozen
// (the non-saturating loss -log D(G(z))). Noise z comes from the runtime's
// RNG as an input, so the application picks fresh or fixed noise per call.
// Images are [0,1] pixels outside the graph and [-1,1] inside it.
#include <kiln/kiln.h>

using namespace kiln;

int main(int argc, char** argv) {
  constexpr int64_t kBatch = 64, kNoise = 64, kPixels = 784;
  constexpr double kSlope = 0.2;  // leaky relu
  Graph g;
  Tensor x = g.input("x", {kBatch, kPixels});  // real images, pixels in [0, 1]
  Tensor z = g.input("z", {kBatch, kNoise});   // N(0, 1) noise
  Linear g1(g, "g1", kNoise, 256), g2(g, "g2", 256, kPixels);
  Linear d1(g, "d1", kPixels, 256), d2(g, "d2", 256, 1);

  auto generator = [&](Tensor noise) {
    return tanh(g2(leakyRelu(g1(noise), kSlope)));
  };
  auto discriminator = [&](Tensor image) {  // logits [B,1]
    return d2(leakyRelu(d1(image), kSlope));
  };

  Tensor fake = generator(z);
  Tensor realLogits = discriminator(x * 2.0 - 1.0);
  Tensor fakeLogits = discriminator(fake);
  Tensor ones = g.constant(1.0, {kBatch, 1}), zeros = g.constant(0.0, {kBatch, 1});
  Tensor dLoss = mean(bceWithLogits(realLogits, ones)) + mean(bceWithLogits(fakeLogits, zeros));
  Tensor gLoss = mean(bceWithLogits(fakeLogits, ones));

  Module m(g);
  Adam adam{.lr = 2e-4, .beta1 = 0.5};
  m.addFunction("sample", {z}, {{"images", (fake + 1.0) * 0.5}});
  m.addFunction("discriminate", {x}, {{"realProb", sigmoid(realLogits)}});
  TrainOptions freezeG, freezeD;
  freezeG.frozen = {g1.weight, g1.bias, g2.weight, g2.bias};
  freezeD.frozen = {d1.weight, d1.bias, d2.weight, d2.bias};
  m.addTrainStep("dStep", dLoss, adam, freezeG);
  m.addTrainStep("gStep", gLoss, adam, freezeD);
  return aot::emit(m, "gan", argc, argv);
}
