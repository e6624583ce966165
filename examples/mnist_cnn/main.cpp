// Trains the ahead-of-time compiled MNIST CNN (conv-pool-conv-pool-fc-fc).
// Links mnist_cnn (the generated object) and libkiln_rt only; the training
// loop is the one every MNIST classifier example shares
// (../common/MnistClassifier.h). Prints the time of each epoch: this is the
// example whose speed kiln's conv kernels decide.
#include "MnistClassifier.h"
#include "mnist_cnn.h"

int main(int argc, char** argv) {
  return kiln::example::runMnistClassifier<mnist_cnn::Model>(
      argc, argv,
      {.name = "mnist_cnn",
       .description = "Trains conv5x5x32-maxpool-conv5x5x64-maxpool-fc128-fc10 (relu, Adam lr 1e-3,\n"
                      "batch 64) on MNIST. --quick: the first 2,000 training and 1,000 test\n"
                      "examples, 1 epoch.\n",
       .epochs = 5,
       .quickEpochs = 1,
       .quickTest = 1000,
       .timing = true});
}
