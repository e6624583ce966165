// Optimizer updates built from DSL ops, so they are optimized and compiled
// with the rest of the step.
#include "TrainStep.h"

#include <algorithm>

#include <cmath>
#include <fmt/format.h>

#include "Grad.h"
#include "ir/Text.h"

namespace kiln {

using ir::OpKind;
using ir::ValueId;

namespace {

struct Pending {
  std::vector<ir::Update> updates;
  void set(Tensor target, Tensor value) { updates.push_back({target.id(), value.id()}); }
};

void sgdUpdate(Graph& g, const SGD& o, const std::string& fn, Tensor p, Tensor dp, Pending& out) {
  if (o.momentum == 0.0) {
    out.set(p, p - o.lr * dp);  // p -= lr * g
    return;
  }
  std::string pname = g.ir().node(p.id()).name;
  Tensor buf = g.state(fmt::format("{}.{}.momentum", fn, pname), p.shape());
  Tensor buf1 = o.momentum * buf + dp;  // buf = mu*buf + g
  out.set(buf, buf1);
  out.set(p, p - o.lr * buf1);  // p -= lr*buf
}

}  // namespace

// The graph's own state updates (batch-norm running statistics, the RNG
// step) that belong to this step: those whose target the loss reads, or
// whose value shares computation with the loss, provided every input they
// read is an input of the step.
static void addGraphStateUpdates(Graph& g, ir::Function& f, const std::vector<bool>& lossAncestors) {
  const ir::Graph& ir = g.ir();
  for (const Graph::StateUpdate& u : g.stateUpdates()) {
    ValueId target = u.target.id();
    std::vector<bool> anc = ir::ancestors(ir, {u.value.id()});
    bool shares = target < static_cast<ValueId>(lossAncestors.size()) && lossAncestors[target];
    bool inputsOk = true;
    for (ValueId v = 0; v < static_cast<ValueId>(anc.size()); ++v) {
      if (!anc[v]) continue;
      const ir::Node& n = ir.node(v);
      if (n.op == OpKind::Input && std::find(f.inputs.begin(), f.inputs.end(), v) == f.inputs.end()) inputsOk = false;
      if (!ir::isSource(n.op) && n.op != OpKind::Constant && v < static_cast<ValueId>(lossAncestors.size()) &&
          lossAncestors[v])
        shares = true;
    }
    if (!shares || !inputsOk) continue;
    bool taken = false;
    for (const ir::Update& x : f.updates) taken = taken || x.target == target;
    if (!taken) f.updates.push_back({target, u.value.id()});
  }
}

void addTrainStep(Graph& g, std::string name, Tensor loss, const Optimizer& opt, Loc loc) {
  ir::Graph& ir = g.ir();
  if (ir.findFunction(name))
    throw Error(fmt::format("{}: addTrainStep: function @{} already exists", g.locOf(loc).str(), name));
  std::vector<bool> needed = ir::ancestors(ir, {loss.id()});
  std::vector<Tensor> params, inputs;
  for (ValueId v = 0; v <= loss.id(); ++v) {
    if (!needed[v]) continue;
    if (ir.node(v).op == OpKind::Param) params.push_back(g.tensor(v));
    if (ir.node(v).op == OpKind::Input) inputs.push_back(g.tensor(v));
  }
  if (params.empty())
    throw Error(fmt::format("{}: addTrainStep: the loss depends on no param, so there is nothing to train",
                            g.locOf(loc).str()));
  std::vector<Tensor> grads = grad(loss, params, loc);

  // optimizer nodes carry the line of the addTrainStep call
  g.setLocOverride(g.locOf(loc));
  Pending pending;
  if (const auto* sgd = std::get_if<SGD>(&opt)) {
    for (size_t i = 0; i < params.size(); ++i) sgdUpdate(g, *sgd, name, params[i], grads[i], pending);
  } else {
    const Adam& o = std::get<Adam>(opt);
    // bias corrections from the step counter: b^t = exp(t * log b)
    Tensor t = g.state(fmt::format("{}.t", name), {});
    Tensor t1 = t + 1.0;
    pending.set(t, t1);
    Tensor bc1 = 1.0 - exp(t1 * std::log(o.beta1));
    Tensor bc2 = 1.0 - exp(t1 * std::log(o.beta2));
    Tensor stepSize = o.lr / bc1;
    Tensor sqrtBc2 = sqrt(bc2);
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor p = params[i], dp = grads[i];
      std::string pname = ir.node(p.id()).name;
      Tensor m = g.state(fmt::format("{}.{}.adam_m", name, pname), p.shape());
      Tensor v = g.state(fmt::format("{}.{}.adam_v", name, pname), p.shape());
      Tensor m1 = o.beta1 * m + (1.0 - o.beta1) * dp;
      Tensor v1 = o.beta2 * v + (1.0 - o.beta2) * (dp * dp);
      Tensor denom = sqrt(v1) / sqrtBc2 + o.eps;
      pending.set(m, m1);
      pending.set(v, v1);
      pending.set(p, p - stepSize * (m1 / denom));
    }
  }

  g.clearLocOverride();

  ir::Function f;
  f.name = std::move(name);
  for (const Tensor& in : inputs) f.inputs.push_back(in.id());
  f.outputs.push_back({"loss", loss.id()});
  f.updates = std::move(pending.updates);
  addGraphStateUpdates(g, f, needed);
  ir.functions().push_back(std::move(f));
}

}  // namespace kiln
