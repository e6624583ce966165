// The word-vector generator: skip-gram with negative sampling (word2vec).
// Each word has an input vector (used as the center) and an output vector
// (used as context or negative sample); the loss pulls a center toward its
// real contexts and away from K words drawn from the unigram^0.75
// distribution. Writes word_vectors.o + word_vectors.h.
#include <kiln/kiln.h>

#include "Config.h"

using namespace kiln;
using namespace wordvec;

int main(int argc, char** argv) {
  Graph g;
  Tensor center = g.input("center", {kBatch}, DType::I32);
  Tensor context = g.input("context", {kBatch}, DType::I32);
  Tensor negatives = g.input("negatives", {kBatch, kNegatives}, DType::I32);
  // word2vec's initialization: small uniform input vectors, zero output vectors
  Embedding in(g, "in", kVocab, kDim, Init::uniform(-0.5 / kDim, 0.5 / kDim));
  Embedding out(g, "out", kVocab, kDim, Init::zeros());

  // Adam, not word2vec's per-pair SGD: one step sums many pairs, and plain
  // SGD on the summed loss (lr 0.025) let every vector drift into one common
  // direction (random pairs at cosine 0.85 after 3 epochs)
  Tensor loss = mean(negativeSamplingLoss(in(center), out(context), out(negatives)));

  Module m(g);
  m.addTrainStep("trainStep", loss, Adam{.lr = kLearningRate});
  return aot::emit(m, "word_vectors", argc, argv);
}
