// Logistic regression on MNIST: one linear layer and softmax cross-entropy,
// trained with SGD. Links logistic_regression (the generated object) and
// libkiln_rt only; the training loop is the one every MNIST classifier
// example shares (../common/MnistClassifier.h).
#include "MnistClassifier.h"
#include "logistic_regression.h"

int main(int argc, char** argv) {
  return kiln::example::runMnistClassifier<logistic_regression::Model>(
      argc, argv,
      {.name = "logistic_regression",
       .description = "Trains multinomial logistic regression (784 -> 10, softmax cross-entropy,\n"
                      "SGD lr 0.1, batch 64) on MNIST.\n",
       .epochs = 20,
       .quickEpochs = 5});
}
