// Trains the ahead-of-time compiled MNIST MLP. Links mnist_mlp (the
// generated object) and libkiln_rt only. The training loop every MNIST
// classifier example shares is in ../common/MnistClassifier.h: per epoch,
// trainStep() on each shuffled batch of 64 (rt::gatherBatch fills x() and
// y()), then predict() over the test set for the accuracy.
#include "MnistClassifier.h"
#include "mnist_mlp.h"

int main(int argc, char** argv) {
  return kiln::example::runMnistClassifier<mnist_mlp::Model>(
      argc, argv,
      {.name = "mnist_mlp",
       .description = "Trains a 784-128-10 MLP (relu, Adam lr 1e-3, batch 64) on MNIST.\n",
       .epochs = 10,
       .quickEpochs = 4});
}
