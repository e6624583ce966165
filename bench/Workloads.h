// The benchmark workloads as kiln models: the same definitions as the PyTorch
// side (bench/torch_bench.py), built with the DSL. Shared by the AOT
// generators (bench/gen/), the compile-time and FLOP-count tool and the
// interpreter check, so every one of them sees the same graph.
#pragma once

#include <kiln/kiln.h>

#include "Inputs.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

using namespace kiln;

// Every kiln entry point the runner times is "trainStep" (output "loss"),
// except the sgemm models' "forward" (output "c").

// 1. MLP 784-128-10, batch 64, cross-entropy, Adam lr 1e-3.
inline void buildMlpB64(Graph& g, Module& m) {
  Tensor x = g.input("x", {64, 784});
  Tensor y = g.input("y", {64}, DType::I32);
  Linear l1(g, "l1", 784, 128), l2(g, "l2", 128, 10);
  Tensor loss = mean(softmaxCrossEntropy(l2(relu(l1(x))), y));
  m.addTrainStep("trainStep", loss, Adam{.lr = 1e-3});
}

// 2. MLP 784-512-512-10, batch 256, cross-entropy, SGD lr 0.01 momentum 0.9.
inline void buildMlpB256(Graph& g, Module& m) {
  Tensor x = g.input("x", {256, 784});
  Tensor y = g.input("y", {256}, DType::I32);
  Linear l1(g, "l1", 784, 512), l2(g, "l2", 512, 512), l3(g, "l3", 512, 10);
  Tensor loss = mean(softmaxCrossEntropy(l3(relu(l2(relu(l1(x))))), y));
  m.addTrainStep("trainStep", loss, SGD{.lr = 0.01, .momentum = 0.9});
}

// 3. LeNet-style CNN, batch 64: conv 5x5x32 pad 2, relu, maxpool 2,
// conv 5x5x64 pad 2, relu, maxpool 2, fc 3136->128, relu, fc 128->10;
// cross-entropy, Adam lr 1e-3.
inline void buildCnn(Graph& g, Module& m) {
  constexpr int64_t kB = 64;
  Tensor x = g.input("x", {kB, 1, 28, 28});
  Tensor y = g.input("y", {kB}, DType::I32);
  Conv2dOptions pad2{.pad = {2, 2}};
  Conv2d c1(g, "c1", 1, 32, 5, pad2), c2(g, "c2", 32, 64, 5, pad2);
  Linear f1(g, "f1", 64 * 7 * 7, 128), f2(g, "f2", 128, 10);
  MaxPool2d pool;
  Tensor h = pool(relu(c2(pool(relu(c1(x))))));  // [64, 64, 7, 7]
  Tensor loss = mean(softmaxCrossEntropy(f2(relu(f1(reshape(h, {kB, 64 * 7 * 7})))), y));
  m.addTrainStep("trainStep", loss, Adam{.lr = 1e-3});
}

// 4. Collaborative filtering: 943 users x 1682 items, 50 factors, a bias per
// user and per item (embeddings of width 1, as nn.Embedding(n, 1)),
// prediction sigmoid(u.v + bu + bi) * 5.5, MSE, Adam lr 1e-2 with weight
// decay 0.1 on every table, batch 1024. Tables start N(0, 1) as
// nn.Embedding's.
inline void buildCollab(Graph& g, Module& m) {
  constexpr int64_t kB = 1024, kUsers = 943, kItems = 1682, kFactors = 50;
  Tensor user = g.input("user", {kB}, DType::I32);
  Tensor item = g.input("item", {kB}, DType::I32);
  Tensor rating = g.input("rating", {kB});
  Embedding uf(g, "user_factors", kUsers, kFactors), itf(g, "item_factors", kItems, kFactors);
  Embedding ub(g, "user_bias", kUsers, 1), ib(g, "item_bias", kItems, 1);
  Tensor score = sum(uf(user) * itf(item), {1}) + reshape(ub(user), {kB}) + reshape(ib(item), {kB});
  Tensor loss = mean(mseLoss(sigmoidRange(score, 0.0, 5.5), rating));
  m.addTrainStep("trainStep", loss, Adam{.lr = 1e-2, .weightDecay = 0.1});
}

// 5. char-RNN: vocab 65, hidden 256, T = 64, batch 32, tanh, unrolled:
// h = tanh(Wxh[x_t] + h Whh + bh) with the input as a gather of Wxh's rows
// (embedding style), logits h Why + by, loss the mean over t of the
// cross-entropy; gradients clipped by value to [-1, 1]; Adam lr 1e-3.
// Wxh, Why ~ N(0, 0.01^2), Whh = I, biases 0; h starts at 0.
inline void buildCharRnn(Graph& g, Module& m) {
  constexpr int64_t kV = 65, kH = 256, kT = 64, kB = 32;
  Tensor xs = g.input("xs", {kB, kT}, DType::I32);
  Tensor ys = g.input("ys", {kB, kT}, DType::I32);
  Tensor wxh = g.param("wxh", {kV, kH}, Init::normal(0, 0.01));
  Tensor whh = g.param("whh", {kH, kH}, Init::identity());
  Tensor bh = g.param("bh", {kH}, Init::zeros());
  Tensor why = g.param("why", {kH, kV}, Init::normal(0, 0.01));
  Tensor by = g.param("by", {kV}, Init::zeros());
  std::vector<Tensor> x = timeSteps(xs), y = timeSteps(ys);
  Tensor h = g.constant(0.0, {kB, kH});
  Tensor total;
  for (int64_t t = 0; t < kT; ++t) {
    h = tanh(gather(wxh, x[t]) + matmul(h, whh) + bh);
    Tensor l = mean(softmaxCrossEntropy(matmul(h, why) + by, y[t]));
    total = t == 0 ? l : total + l;
  }
  TrainOptions clip;
  clip.clipValue = 1.0;
  m.addTrainStep("trainStep", total / static_cast<double>(kT), Adam{.lr = 1e-3}, clip);
}

// 6. seq2seq: embedding 65x64 (N(0, 1)); encoder h = tanh(We [emb(src_t), h])
// for 20 steps from h = 0; its final state ctx is fed into every one of 20
// decoder steps s = tanh(Wd [emb(tgt_t), s, ctx]) from s = 0; logits out(s);
// loss the mean over t of the cross-entropy against tgt_t; hidden 256,
// batch 32, Adam lr 1e-3.
inline void buildSeq2seq(Graph& g, Module& m) {
  constexpr int64_t kV = 65, kE = 64, kH = 256, kB = 32, kTe = 20, kTd = 20;
  Tensor src = g.input("src", {kB, kTe}, DType::I32);
  Tensor tgt = g.input("tgt", {kB, kTd}, DType::I32);
  Embedding emb(g, "emb", kV, kE);
  Linear we(g, "we", kE + kH, kH), wd(g, "wd", kE + kH + kH, kH), out(g, "out", kH, kV);
  std::vector<Tensor> srcSteps = timeSteps(src), tgtSteps = timeSteps(tgt);
  Tensor h = g.constant(0.0, {kB, kH});
  for (int64_t t = 0; t < kTe; ++t) h = tanh(we(concat({emb(srcSteps[t]), h}, 1)));
  Tensor ctx = h, s = g.constant(0.0, {kB, kH});
  Tensor total;
  for (int64_t t = 0; t < kTd; ++t) {
    s = tanh(wd(concat({emb(tgtSteps[t]), s, ctx}, 1)));
    Tensor l = mean(softmaxCrossEntropy(out(s), tgtSteps[t]));
    total = t == 0 ? l : total + l;
  }
  m.addTrainStep("trainStep", total / static_cast<double>(kTd), Adam{.lr = 1e-3});
}

// sgemm: c = a b for n x n f32 matrices, forward only.
inline void buildSgemm(Graph& g, Module& m, int64_t n) {
  Tensor a = g.input("a", {n, n});
  Tensor b = g.input("b", {n, n});
  m.addFunction("forward", {a, b}, {{"c", matmul(a, b)}});
}

inline const std::vector<std::string>& workloadNames() {
  static const std::vector<std::string> names = {"mlp_b64", "mlp_b256", "cnn", "collab", "char_rnn",
                                                 "seq2seq", "sgemm_256", "sgemm_1024"};
  return names;
}

// Builds workload `name` into g and m; throws std::invalid_argument if unknown.
inline void buildWorkload(std::string_view name, Graph& g, Module& m) {
  if (name == "mlp_b64") return buildMlpB64(g, m);
  if (name == "mlp_b256") return buildMlpB256(g, m);
  if (name == "cnn") return buildCnn(g, m);
  if (name == "collab") return buildCollab(g, m);
  if (name == "char_rnn") return buildCharRnn(g, m);
  if (name == "seq2seq") return buildSeq2seq(g, m);
  if (name == "sgemm_256") return buildSgemm(g, m, 256);
  if (name == "sgemm_1024") return buildSgemm(g, m, 1024);
  throw std::invalid_argument("unknown workload '" + std::string(name) + "'");
}

// The entry point a workload's benchmark times.
inline std::string timedFunction(std::string_view name) {
  return name.starts_with("sgemm") ? "forward" : "trainStep";
}

}  // namespace bench
