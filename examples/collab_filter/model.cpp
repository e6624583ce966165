// The collaborative-filtering generator: dot product of user and item
// embeddings plus a bias per user and per item, squashed into the rating range
// with sigmoidRange(0, 5.5), trained on squared error with Adam and weight
// decay. Writes collab_filter.o + collab_filter.h at build time.
#include <kiln/kiln.h>

#include "Config.h"

using namespace kiln;
using namespace collab;

int main(int argc, char** argv) {
  Graph g;
  Tensor user = g.input("user", {kBatch}, DType::I32);
  Tensor item = g.input("item", {kBatch}, DType::I32);
  Tensor rating = g.input("rating", {kBatch});
  // small random factors so the first dot products are near 0 and the
  // biases learn the mean first
  Embedding userFactors(g, "user_factors", kUsers, kFactors, Init::normal(0, 0.01));
  Embedding itemFactors(g, "item_factors", kItems, kFactors, Init::normal(0, 0.01));
  Tensor userBias = g.param("user_bias", {kUsers}, Init::zeros());
  Tensor itemBias = g.param("item_bias", {kItems}, Init::zeros());

  Tensor u = userFactors(user), v = itemFactors(item);  // [B, F]
  Tensor pred = sigmoidRange(sum(u * v, {1}) + gather(userBias, user) + gather(itemBias, item), 0.0, 5.5);
  // weight decay on the factors each rating uses (Funk's SVD regularization):
  // a user or item with more ratings gets more data and more decay alike
  Tensor loss = mean(mseLoss(pred, rating)) + kFactorDecay * mean(sum(u * u + v * v, {1}));

  Module m(g);
  m.addFunction("predict", {user, item}, {{"rating", pred}});
  m.addTrainStep("trainStep", loss, Adam{.lr = kLearningRate, .weightDecay = kWeightDecay});
  return aot::emit(m, "collab_filter", argc, argv);
}
