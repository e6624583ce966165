// The training step as graph ops: forward, backward, gradient accumulation
// and clipping, the learning-rate schedule and the optimizer update in one
// function that writes params and optimizer state in place.
//
// Every optimizer computes what PyTorch 1.13's torch.optim computes, with the
// same defaults (SGD has no default lr in PyTorch; kiln's is 0.01). The
// formulas are written beside each struct; docs/optimizers.md has them all.
// Notation: g = gradient, p = param, t = 1-based step number of the update.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ir/Builder.h"

namespace kiln {

// torch.optim.SGD:
//   g += wd*p
//   momentum mu != 0: buf = g at t = 1, else buf = mu*buf + (1-dampening)*g
//                     g = nesterov ? g + mu*buf : buf
//   p -= lr*g
struct SGD {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weightDecay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0
};

// torch.optim.Adagrad:
//   g += wd*p; clr = lr / (1 + (t-1)*lrDecay)
//   sum += g*g   (sum starts at initialAccumulatorValue)
//   p -= clr * g / (sqrt(sum) + eps)
struct Adagrad {
  double lr = 0.01;
  double lrDecay = 0.0;
  double weightDecay = 0.0;
  double initialAccumulatorValue = 0.0;
  double eps = 1e-10;
};

// torch.optim.RMSprop:
//   g += wd*p
//   sq = alpha*sq + (1-alpha)*g*g
//   centered: ga = alpha*ga + (1-alpha)*g; avg = sqrt(sq - ga*ga) + eps
//   else:     avg = sqrt(sq) + eps
//   momentum mu > 0: buf = mu*buf + g/avg; p -= lr*buf
//   else:            p -= lr * g/avg
struct RMSprop {
  double lr = 0.01;
  double alpha = 0.99;
  double eps = 1e-8;
  double weightDecay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

// torch.optim.Adam (Kingma & Ba):
//   g += wd*p
//   m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g
//   amsgrad: vmax = max(vmax, v), and vmax replaces v below
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// The bias corrections c = 1-b^t are kept in state as c = c + (1-b)*(1-c):
// exact in the limit and accurate to a few ulps in f32 at every t, where
// 1 - exp(t*log b) in f32 cancels (1.9e-5 relative for b = 0.999, 1.7e-4 for
// b = 0.9999).
struct Adam {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 0.0;
  bool amsgrad = false;
};

// torch.optim.AdamW (Loshchilov & Hutter): decoupled weight decay
//   p *= 1 - lr*wd, then Adam's update without the g += wd*p term.
struct AdamW {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 1e-2;
  bool amsgrad = false;
};

using Optimizer = std::variant<SGD, Adagrad, RMSprop, Adam, AdamW>;

// ---- learning-rate schedules ----
// i = number of updates applied before this one (0 for the first), kept in
// state as "<fn>.t". Each multiplies a group's base lr by a factor, the
// value torch.optim.lr_scheduler gives when scheduler.step() follows every
// optimizer.step().

struct ConstantLR {};
// StepLR: factor = gamma^floor(i / stepSize)
struct StepLR {
  int64_t stepSize = 1;
  double gamma = 0.1;
};
// ExponentialLR: factor = gamma^i
struct ExponentialLR {
  double gamma = 0.9;
};
// CosineAnnealingLR: lr = etaMin + (base - etaMin) * (1 + cos(pi*i/tMax)) / 2
// (periodic past tMax, as torch's is).
struct CosineAnnealingLR {
  int64_t tMax = 1;
  double etaMin = 0.0;
};
using Schedule = std::variant<ConstantLR, StepLR, ExponentialLR, CosineAnnealingLR>;

// LinearLR warmup (end factor 1): factor = s + (1-s) * min(i, steps)/steps.
// It multiplies the scheduled lr: TrainOptions{.schedule = S, .warmup = W} is
// torch's ChainedScheduler([LinearLR(W), S]) (for cosine, when etaMin = 0).
struct LinearWarmup {
  int64_t steps = 5;
  double startFactor = 1.0 / 3.0;
};

// Params with their own lr and/or weight decay (unset = the optimizer's).
// Every param is in at most one group; params in no group use the
// optimizer's settings.
struct ParamGroup {
  std::vector<Tensor> params;
  std::optional<double> lr;
  std::optional<double> weightDecay;
  Loc loc = Loc::current();  // where the group was written, for diagnostics
};

// Everything about the step besides the optimizer. The order of work in one
// call: gradients -> accumulate (mean of `accumulate` micro-batches) ->
// clip by value -> clip by global norm -> weight decay + optimizer update
// with the scheduled lr.
struct TrainOptions {
  // Clamp every gradient element to [-clipValue, clipValue]
  // (torch.nn.utils.clip_grad_value_).
  std::optional<double> clipValue;
  // Scale all gradients by min(1, clipNorm / (norm + 1e-6)) where norm is
  // the 2-norm of all trained gradients together
  // (torch.nn.utils.clip_grad_norm_).
  std::optional<double> clipNorm;
  Schedule schedule = ConstantLR{};
  std::optional<LinearWarmup> warmup;
  std::vector<ParamGroup> groups;
  // Params that are not trained; the gradient computations only they need
  // are not built.
  std::vector<Tensor> frozen;
  // Accumulate gradients over this many calls and update on every k-th with
  // their mean; in between params and optimizer state stay unchanged.
  int64_t accumulate = 1;
  Loc loc = Loc::current();  // where the options were written, for diagnostics
};

// Differentiates `loss` with respect to every param it depends on (minus the
// frozen ones), builds the update, and registers function `name` (inputs:
// every input the loss reads; output "loss"; updates: params and state).
// State is named "<name>.<param>.<what>" per param ("trainStep.l1.w.adam_m")
// and "<name>.<what>" per step ("trainStep.t").
void addTrainStep(Graph& g, std::string name, Tensor loss, const Optimizer& opt, const TrainOptions& options = {},
                  Loc loc = Loc::current());

}  // namespace kiln
