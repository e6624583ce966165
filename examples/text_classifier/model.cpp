// The text-classifier generator: an embedding bag (gather the word vectors
// of a text, average them) followed by a linear layer over the categories,
// fastText-style. Writes text_classifier.o + text_classifier.h.
#include <kiln/kiln.h>

#include "Config.h"

using namespace kiln;
using namespace textcls;

int main(int argc, char** argv) {
  Graph g;
  Tensor words = g.input("words", {kBatch, kLen}, DType::I32);  // word ids, kPad after the text
  Tensor invLen = g.input("inv_len", {kBatch});                 // 1 / number of words (1 if none)
  Tensor label = g.input("label", {kBatch}, DType::I32);
  Embedding embed(g, "embed", kVocab + 1, kDim, Init::normal(0, 0.1));  // row kPad = kVocab pads
  embed.paddingIdx = kPad;
  Linear out(g, "out", kDim, kClasses);

  Tensor bag = sum(embed(words), {1}) * unsqueeze(invLen, 1);  // [B, D]: mean of the text's word vectors
  // dropout on the bag while training: 2,300 texts are few for 500k weights
  Tensor logits = out(dropout(bag, kDropout, /*training=*/true));
  Tensor loss = mean(softmaxCrossEntropy(logits, label));
  Tensor testLogits = out(bag);

  Module m(g);
  m.addFunction("predict", {words, invLen}, {{"logits", testLogits}, {"label", argmax(testLogits, 1)}});
  m.addTrainStep("trainStep", loss, AdamW{.lr = kLearningRate, .weightDecay = kWeightDecay});
  return aot::emit(m, "text_classifier", argc, argv);
}
