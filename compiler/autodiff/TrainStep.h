// The training step as graph ops: forward, backward and the optimizer
// update in one function that writes params and optimizer state in place.
#pragma once

#include <string>
#include <variant>

#include "ir/Builder.h"

namespace kiln {

// p -= lr * g, or with momentum mu: buf = mu*buf + g; p -= lr*buf
// (PyTorch's SGD formulation, dampening 0).
struct SGD {
  double lr = 0.01;
  double momentum = 0.0;
};

// Adam (Kingma & Ba) as PyTorch computes it:
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
struct Adam {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

using Optimizer = std::variant<SGD, Adam>;

// Differentiates `loss` with respect to every param it depends on, builds the
// update, and registers function `name` (inputs: every input the loss reads;
// output "loss"; updates: params and optimizer state).
void addTrainStep(Graph& g, std::string name, Tensor loss, const Optimizer& opt, Loc loc = Loc::current());

}  // namespace kiln
