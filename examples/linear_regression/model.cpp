// The linear-regression generator: three copies of y = w x + b, one per
// optimizer (plain SGD, SGD with momentum, Adam), each with its own training
// step entry point, so main.cpp can train them side by side on the same
// batches. Writes linear_regression.o + linear_regression.h at build time.
#include <kiln/kiln.h>

using namespace kiln;

int main(int argc, char** argv) {
  constexpr int64_t kBatch = 50;
  Graph g;
  Tensor x = g.input("x", {kBatch, 1});
  Tensor y = g.input("y", {kBatch, 1});
  Linear sgd(g, "sgd", 1, 1), momentum(g, "momentum", 1, 1), adam(g, "adam", 1, 1);
  auto mse = [&](const Linear& l) { return mean(mseLoss(l(x), y)); };
  Tensor sgdLoss = mse(sgd), momentumLoss = mse(momentum), adamLoss = mse(adam);
  Module m(g);
  // Each step updates only the params its own loss reads. All three decay
  // their lr by 0.998 a step (0.96 an epoch of 20 steps), so the noise of
  // the minibatch gradients dies down and the fits settle. SGD's lr is near
  // its stability limit (2 / the largest curvature, about 0.029 here).
  TrainOptions decay;
  decay.schedule = ExponentialLR{.gamma = 0.998};
  m.addTrainStep("trainSgd", sgdLoss, SGD{.lr = 0.025}, decay);
  m.addTrainStep("trainMomentum", momentumLoss, SGD{.lr = 0.01, .momentum = 0.9}, decay);
  m.addTrainStep("trainAdam", adamLoss, Adam{.lr = 1.0}, decay);
  return aot::emit(m, "linear_regression", argc, argv);
}
