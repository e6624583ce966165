// The MNIST GAN generator: an MLP generator G (z[64] -> 256 -> 512 -> 1024
// -> 784, batch norm and relu on the hidden layers, tanh out) and
// discriminator D (784 -> 512 -> 256 -> 1, leaky relu 0.2 and dropout 0.3),
// trained with bceWithLogits and Adam (lr 1e-3 decayed to 0 on a cosine over
// the full run, beta1 0.5) as two training steps over the same params: dStep
// updates D with G frozen, gStep updates G with D frozen (the non-saturating
// loss -log D(G(z))). Noise z comes from the runtime's RNG as an input, so the
// application picks fresh or fixed noise per call. Images are [0,1] pixels
// outside the graph and [-1,1] inside it. G's batch norm always uses the
// batch's statistics, in `sample` too (as GAN code usually does): 64 noise
// vectors are a batch like any training one, and the application's average
// of G's params (main.cpp) then needs no running statistics of its own.
#include <kiln/kiln.h>

using namespace kiln;

int main(int argc, char** argv) {
  constexpr int64_t kBatch = 64, kNoise = 64, kPixels = 784;
  constexpr double kSlope = 0.2;  // leaky relu
  Graph g;
  Tensor x = g.input("x", {kBatch, kPixels});  // real images, pixels in [0, 1]
  Tensor z = g.input("z", {kBatch, kNoise});   // N(0, 1) noise
  Linear g1(g, "g1", kNoise, 256), g2(g, "g2", 256, 512), g3(g, "g3", 512, 1024),
      g4(g, "g4", 1024, kPixels);
  Linear d1(g, "d1", kPixels, 512), d2(g, "d2", 512, 256), d3(g, "d3", 256, 1);
  BatchNorm gbn1(g, "gbn1", 256), gbn2(g, "gbn2", 512), gbn3(g, "gbn3", 1024);
  Dropout drop{0.3};

  auto generator = [&](Tensor noise) {
    Tensor h = relu(gbn1(g1(noise), true));
    h = relu(gbn2(g2(h), true));
    return tanh(g4(relu(gbn3(g3(h), true))));
  };
  auto discriminator = [&](Tensor image, bool training) {  // logits [B,1]
    Tensor h = drop(leakyRelu(d1(image), kSlope), training);
    return d3(drop(leakyRelu(d2(h), kSlope), training));
  };

  Tensor fake = generator(z);
  Tensor realLogits = discriminator(x * 2.0 - 1.0, true);
  Tensor fakeLogits = discriminator(fake, true);
  Tensor ones = g.constant(1.0, {kBatch, 1}), zeros = g.constant(0.0, {kBatch, 1});
  Tensor dLoss = mean(bceWithLogits(realLogits, ones)) + mean(bceWithLogits(fakeLogits, zeros));
  Tensor gLoss = mean(bceWithLogits(fakeLogits, ones));

  Module m(g);
  Adam adam{.lr = 1e-3, .beta1 = 0.5};
  m.addFunction("sample", {z}, {{"images", (fake + 1.0) * 0.5}});
  m.addFunction("discriminate", {x}, {{"realProb", sigmoid(discriminator(x * 2.0 - 1.0, false))}});
  TrainOptions freezeG, freezeD;
  freezeG.frozen = {g1.weight, g1.bias, g2.weight, g2.bias, g3.weight, g3.bias, g4.weight, g4.bias,
                    gbn1.gamma, gbn1.beta, gbn2.gamma, gbn2.beta, gbn3.gamma, gbn3.beta};
  freezeD.frozen = {d1.weight, d1.bias, d2.weight, d2.bias, d3.weight, d3.bias};
  // The lr decays to 0 on a cosine over the full run, 100 epochs of 125 steps
  // (a shorter run stops early on the curve; a longer one climbs back up).
  freezeG.schedule = freezeD.schedule = CosineAnnealingLR{.tMax = 12500, .etaMin = 0.0};
  m.addTrainStep("dStep", dLoss, adam, freezeG);
  m.addTrainStep("gStep", gLoss, adam, freezeD);
  return aot::emit(m, "gan", argc, argv);
}
