// An MNIST MLP with batch normalization and dropout, trained with Adam and
// tested with its inference entry point (running statistics, no dropout).
// Links mnist_bn_dropout (the generated object) and libkiln_rt only; the
// training loop is the one every MNIST classifier example shares
// (../common/MnistClassifier.h): trainStep() trains, predict() is the
// inference-mode entry point model.cpp builds.
#include "MnistClassifier.h"
#include "mnist_bn_dropout.h"

int main(int argc, char** argv) {
  return kiln::example::runMnistClassifier<mnist_bn_dropout::Model>(
      argc, argv,
      {.name = "mnist_bn_dropout",
       .description = "Trains a 784-256-128-10 MLP, each hidden layer linear -> batch norm -> relu ->\n"
                      "dropout 0.25, with Adam (lr 1e-3, batch 64) on MNIST; tests in inference mode.\n",
       .epochs = 15,
       .quickEpochs = 4});
}
