// The training step built from DSL ops, so it is optimized and compiled with
// the rest of the graph: settings are checked, gradients taken for the
// trained params, accumulated and clipped, the lr scheduled, and each
// optimizer's update written as new values for params and state.
//
// A step with gradient accumulation is still one static graph: every call
// computes the whole update, and a 0/1 mask from a call counter in state
// selects (where) per target the new value on every k-th call and the old one
// otherwise.
#include "TrainStep.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <fmt/format.h>

#include "Grad.h"
#include "ir/Text.h"

namespace kiln {

using ir::OpKind;
using ir::ValueId;

namespace {

// The state updates of the function, in order. While `apply` is set each
// update becomes target' = apply ? value : target.
struct Pending {
  std::vector<ir::Update> updates;
  Tensor apply;  // 0/1 mask
  void set(Tensor target, Tensor value) {
    if (apply.valid()) value = where(apply, value, target);
    setAlways(target, value);
  }
  void setAlways(Tensor target, Tensor value) { updates.push_back({target.id(), value.id()}); }
};

// One trained param: its gradient after accumulation and clipping, and the
// settings of its group.
struct Item {
  Tensor p, grad;
  std::string name;
  Tensor lr;  // scheduled lr, f32 scalar
  double weightDecay = 0;
};

// What every optimizer update needs.
struct Step {
  Graph& g;
  const std::string& fn;
  Pending& out;
  Tensor t;      // updates applied before this one (f32 scalar)
  Tensor tNext;  // t + 1, the 1-based number of this update

  Tensor paramState(const Item& it, const char* what, Init init = Init::zeros()) {
    return g.state(fmt::format("{}.{}.{}", fn, it.name, what), it.p.shape(), init);
  }
  Tensor stepState(const char* what, Init init = Init::zeros()) {
    return g.state(fmt::format("{}.{}", fn, what), {}, init);
  }
};

// min(a, b) for a constant b
Tensor minOf(Tensor a, double b) { return minimum(a, a.graph().constant(b)); }
// State that decays geometrically (momentum buffers, Adam's moments,
// RMSprop's averages) is read as 0 once its magnitude is below the smallest
// normal float (FLT_MIN, 1.2e-38). Without it, a weight whose gradient
// stops (an input pixel that is rarely nonzero) has its state decay into
// subnormals and stay there: 0.9 times the smallest subnormal rounds back to
// it, so every step pays the CPU's slow path for subnormal arithmetic on
// those elements. MNIST's MLP with Adam trained 2.5x slower from its 7th
// epoch on (about 750 steps: 0.9^750 takes 1e-4 below FLT_MIN). The flush
// is applied where the old state is read (a state buffer read twice costs
// nothing, where the new value read twice would need a buffer of its own),
// so a decaying element is subnormal for at most one step. The values
// flushed change a weight by less than lr * 1e-38 / eps per step.
Tensor flushSubnormal(Tensor x) {
  Graph& g = x.graph();
  return where(less(abs(x), g.constant(static_cast<double>(std::numeric_limits<float>::min()))), g.constant(0.0), x);
}

// g + wd*p, the coupled (L2) weight decay
Tensor withL2(const Item& it) { return it.weightDecay == 0.0 ? it.grad : it.grad + it.weightDecay * it.p; }

// ---- the optimizers (formulas in TrainStep.h) ----

void update(Step& s, const SGD& o, std::vector<Item>& items) {
  Tensor first;  // 1 on the first update: PyTorch starts the buffer at g, undamped
  if (o.momentum != 0.0 && o.dampening != 0.0) first = lessEqual(s.t, s.g.constant(0.0));
  for (Item& it : items) {
    Tensor d = withL2(it);
    if (o.momentum != 0.0) {
      Tensor buf = s.paramState(it, "momentum");
      Tensor buf1 = o.momentum * flushSubnormal(buf) + (1.0 - o.dampening) * d;  // buf = mu*buf + (1-dampening)*g
      if (first.valid()) buf1 = where(first, d, buf1);
      s.out.set(buf, buf1);
      d = o.nesterov ? d + o.momentum * buf1 : buf1;  // nesterov: g + mu*buf
    }
    s.out.set(it.p, it.p - it.lr * d);  // p -= lr*g
  }
}

void update(Step& s, const Adagrad& o, std::vector<Item>& items) {
  for (Item& it : items) {
    Tensor d = withL2(it);
    Tensor clr = it.lr;
    if (o.lrDecay != 0.0) clr = it.lr / (1.0 + s.t * o.lrDecay);  // lr / (1 + (t-1)*lrDecay)
    Tensor sum = s.paramState(it, "adagrad_sum", Init::constant(o.initialAccumulatorValue));
    Tensor sum1 = sum + d * d;  // sum += g*g
    s.out.set(sum, sum1);
    s.out.set(it.p, it.p - clr * (d / (sqrt(sum1) + o.eps)));  // p -= clr * g/(sqrt(sum)+eps)
  }
}

void update(Step& s, const RMSprop& o, std::vector<Item>& items) {
  for (Item& it : items) {
    Tensor d = withL2(it);
    Tensor sq = s.paramState(it, "rms_sq");
    Tensor sq1 = o.alpha * flushSubnormal(sq) + (1.0 - o.alpha) * (d * d);  // sq = alpha*sq + (1-alpha)*g*g
    s.out.set(sq, sq1);
    Tensor avg;
    if (o.centered) {
      Tensor ga = s.paramState(it, "rms_grad_avg");
      Tensor ga1 = o.alpha * flushSubnormal(ga) + (1.0 - o.alpha) * d;  // ga = alpha*ga + (1-alpha)*g
      s.out.set(ga, ga1);
      avg = sqrt(sq1 - ga1 * ga1) + o.eps;  // sqrt(sq - ga^2) + eps
    } else {
      avg = sqrt(sq1) + o.eps;
    }
    if (o.momentum > 0.0) {
      Tensor buf = s.paramState(it, "momentum");
      Tensor buf1 = o.momentum * flushSubnormal(buf) + d / avg;  // buf = mu*buf + g/avg
      s.out.set(buf, buf1);
      s.out.set(it.p, it.p - it.lr * buf1);
    } else {
      s.out.set(it.p, it.p - it.lr * (d / avg));
    }
  }
}

// Adam and AdamW; `decoupled` = AdamW's p *= 1 - lr*wd instead of g += wd*p.
void adamUpdate(Step& s, double b1, double b2, double eps, bool amsgrad, bool decoupled, std::vector<Item>& items) {
  // bias corrections c = 1 - b^t by c = c + (1-b)*(1-c) from c = 0
  Tensor bc1 = s.stepState("adam_bc1"), bc2 = s.stepState("adam_bc2");
  Tensor bc1New = bc1 + (1.0 - b1) * (1.0 - bc1);
  Tensor bc2New = bc2 + (1.0 - b2) * (1.0 - bc2);
  s.out.set(bc1, bc1New);
  s.out.set(bc2, bc2New);
  Tensor sqrtBc2 = sqrt(bc2New);
  for (Item& it : items) {
    Tensor d = decoupled ? it.grad : withL2(it);
    Tensor m = s.paramState(it, "adam_m");
    Tensor v = s.paramState(it, "adam_v");
    Tensor m1 = b1 * flushSubnormal(m) + (1.0 - b1) * d;        // m = b1*m + (1-b1)*g
    Tensor v1 = b2 * flushSubnormal(v) + (1.0 - b2) * (d * d);  // v = b2*v + (1-b2)*g*g
    s.out.set(m, m1);
    s.out.set(v, v1);
    if (amsgrad) {
      Tensor vmax = s.paramState(it, "adam_vmax");
      v1 = maximum(vmax, v1);  // vmax = max(vmax, v)
      s.out.set(vmax, v1);
    }
    Tensor denom = sqrt(v1) / sqrtBc2 + eps;  // sqrt(v)/sqrt(1-b2^t) + eps
    Tensor stepSize = it.lr / bc1New;         // lr/(1-b1^t)
    Tensor p = it.p;
    if (decoupled && it.weightDecay != 0.0) p = p * (1.0 - it.lr * it.weightDecay);  // p *= 1 - lr*wd
    s.out.set(it.p, p - stepSize * (m1 / denom));
  }
}

void update(Step& s, const Adam& o, std::vector<Item>& items) {
  adamUpdate(s, o.beta1, o.beta2, o.eps, o.amsgrad, false, items);
}
void update(Step& s, const AdamW& o, std::vector<Item>& items) {
  adamUpdate(s, o.beta1, o.beta2, o.eps, o.amsgrad, true, items);
}

// ---- settings checks ----

struct Checker {
  const Graph& g;
  const std::string& fn;
  [[noreturn]] void fail(const Loc& where, const std::string& msg) const {
    throw Error(fmt::format("{}: addTrainStep @{}: {}", g.locOf(where).str(), fn, msg));
  }
  void nonNegative(const Loc& where, const char* what, double v) const {
    if (!(v >= 0.0)) fail(where, fmt::format("{} must be >= 0, got {}", what, v));
  }
  void unitInterval(const Loc& where, const char* what, double v) const {
    if (!(v >= 0.0 && v < 1.0)) fail(where, fmt::format("{} must be in [0, 1), got {}", what, v));
  }
};

void checkOptimizer(const Checker& c, const Loc& loc, const Optimizer& opt) {
  if (const auto* o = std::get_if<SGD>(&opt)) {
    c.nonNegative(loc, "SGD lr", o->lr);
    c.nonNegative(loc, "SGD momentum", o->momentum);
    c.nonNegative(loc, "SGD weightDecay", o->weightDecay);
    if (o->nesterov && (o->momentum <= 0.0 || o->dampening != 0.0))
      c.fail(loc, "SGD nesterov needs momentum > 0 and dampening 0");
  } else if (const auto* o = std::get_if<Adagrad>(&opt)) {
    c.nonNegative(loc, "Adagrad lr", o->lr);
    c.nonNegative(loc, "Adagrad lrDecay", o->lrDecay);
    c.nonNegative(loc, "Adagrad weightDecay", o->weightDecay);
    c.nonNegative(loc, "Adagrad initialAccumulatorValue", o->initialAccumulatorValue);
    c.nonNegative(loc, "Adagrad eps", o->eps);
  } else if (const auto* o = std::get_if<RMSprop>(&opt)) {
    c.nonNegative(loc, "RMSprop lr", o->lr);
    c.nonNegative(loc, "RMSprop alpha", o->alpha);
    c.nonNegative(loc, "RMSprop eps", o->eps);
    c.nonNegative(loc, "RMSprop momentum", o->momentum);
    c.nonNegative(loc, "RMSprop weightDecay", o->weightDecay);
  } else {
    auto adam = [&](const char* n, double lr, double b1, double b2, double eps, double wd) {
      c.nonNegative(loc, fmt::format("{} lr", n).c_str(), lr);
      c.unitInterval(loc, fmt::format("{} beta1", n).c_str(), b1);
      c.unitInterval(loc, fmt::format("{} beta2", n).c_str(), b2);
      c.nonNegative(loc, fmt::format("{} eps", n).c_str(), eps);
      c.nonNegative(loc, fmt::format("{} weightDecay", n).c_str(), wd);
    };
    if (const auto* o = std::get_if<Adam>(&opt)) adam("Adam", o->lr, o->beta1, o->beta2, o->eps, o->weightDecay);
    if (const auto* o = std::get_if<AdamW>(&opt)) adam("AdamW", o->lr, o->beta1, o->beta2, o->eps, o->weightDecay);
  }
}

void checkOptions(const Checker& c, const TrainOptions& o) {
  if (o.clipValue && !(*o.clipValue > 0.0)) c.fail(o.loc, fmt::format("clipValue must be > 0, got {}", *o.clipValue));
  if (o.clipNorm && !(*o.clipNorm > 0.0)) c.fail(o.loc, fmt::format("clipNorm must be > 0, got {}", *o.clipNorm));
  if (o.accumulate < 1) c.fail(o.loc, fmt::format("accumulate must be >= 1, got {}", o.accumulate));
  if (const auto* s = std::get_if<StepLR>(&o.schedule)) {
    if (s->stepSize < 1) c.fail(o.loc, fmt::format("StepLR stepSize must be >= 1, got {}", s->stepSize));
    if (!(s->gamma > 0.0)) c.fail(o.loc, fmt::format("StepLR gamma must be > 0, got {}", s->gamma));
  } else if (const auto* s = std::get_if<ExponentialLR>(&o.schedule)) {
    if (!(s->gamma > 0.0)) c.fail(o.loc, fmt::format("ExponentialLR gamma must be > 0, got {}", s->gamma));
  } else if (const auto* s = std::get_if<CosineAnnealingLR>(&o.schedule)) {
    if (s->tMax < 1) c.fail(o.loc, fmt::format("CosineAnnealingLR tMax must be >= 1, got {}", s->tMax));
    c.nonNegative(o.loc, "CosineAnnealingLR etaMin", s->etaMin);
  }
  if (o.warmup) {
    if (o.warmup->steps < 1) c.fail(o.loc, fmt::format("LinearWarmup steps must be >= 1, got {}", o.warmup->steps));
    if (!(o.warmup->startFactor > 0.0 && o.warmup->startFactor <= 1.0))
      c.fail(o.loc, fmt::format("LinearWarmup startFactor must be in (0, 1], got {}", o.warmup->startFactor));
  }
  for (const ParamGroup& grp : o.groups) {
    if (grp.lr) c.nonNegative(grp.loc, "group lr", *grp.lr);
    if (grp.weightDecay) c.nonNegative(grp.loc, "group weightDecay", *grp.weightDecay);
  }
}

std::string paramName(const Graph& g, const Tensor& t) { return g.ir().node(t.id()).name; }

// Checks that `t` is a param of this graph; `what` names its role.
void checkIsParam(const Checker& c, const Graph& g, const Loc& loc, const Tensor& t, const std::string& what) {
  if (!t.valid() || &t.graph() != &g) c.fail(loc, fmt::format("{} is not a tensor of this graph", what));
  const ir::Node& n = g.ir().node(t.id());
  if (n.op != OpKind::Param)
    c.fail(loc, fmt::format("{} is {}, not a param", what, ir::describeValue(g.ir(), t.id())));
}

// ---- the learning rate ----

// The lr of update number i = t (0-based) for a base lr:
// warmup * (floor + (base - floor) * factor), each part absent when unused.
struct ScheduledLr {
  Tensor factor;      // StepLR, ExponentialLR, or cosine's (1 + cos(pi*i/tMax))/2
  double floor = 0;   // cosine's etaMin
  Tensor warmup;      // LinearWarmup's factor
  bool scheduled() const { return factor.valid() || warmup.valid(); }
  Tensor of(Graph& g, double base) const {
    Tensor lr;
    if (!factor.valid()) lr = g.constant(base);
    else if (floor == 0.0) lr = factor * base;
    else lr = floor + factor * (base - floor);
    return warmup.valid() ? warmup * lr : lr;
  }
};

ScheduledLr makeSchedule(Step& s, const TrainOptions& o) {
  ScheduledLr r;
  if (const auto* sl = std::get_if<StepLR>(&o.schedule)) {
    // gamma^floor(i/stepSize), kept as a factor and a phase 0..stepSize-1 in
    // state: factor *= gamma when the phase wraps
    Tensor phase = s.stepState("lr_phase");
    Tensor factor = s.stepState("lr_factor", Init::constant(1.0));
    Tensor phase1 = phase + 1.0;
    Tensor wrap = greaterEqual(phase1, s.g.constant(static_cast<double>(sl->stepSize)));
    s.out.set(phase, where(wrap, s.g.constant(0.0), phase1));
    s.out.set(factor, where(wrap, factor * sl->gamma, factor));
    r.factor = factor;
  } else if (const auto* el = std::get_if<ExponentialLR>(&o.schedule)) {
    r.factor = exp(s.t * std::log(el->gamma));  // gamma^i
  } else if (const auto* cl = std::get_if<CosineAnnealingLR>(&o.schedule)) {
    // (1 + cos(pi*i/tMax))/2, periodic in i with period 2*tMax as torch's is
    r.factor = 0.5 + 0.5 * cos(s.t * (std::numbers::pi / static_cast<double>(cl->tMax)));
    r.floor = cl->etaMin;
  }
  if (o.warmup) {
    // s + (1-s) * min(i, steps)/steps
    double n = static_cast<double>(o.warmup->steps);
    r.warmup = o.warmup->startFactor + minOf(s.t, n) * ((1.0 - o.warmup->startFactor) / n);
  }
  return r;
}

double lrOf(const Optimizer& opt) {
  return std::visit([](const auto& o) { return o.lr; }, opt);
}
double weightDecayOf(const Optimizer& opt) {
  return std::visit([](const auto& o) { return o.weightDecay; }, opt);
}

// Which group each value is in (by value id): -1 none, -2 frozen.
std::vector<int> assignGroups(const Checker& check, const Graph& g, const TrainOptions& options) {
  std::vector<int> groupOf(g.ir().size(), -1);
  for (const Tensor& t : options.frozen) {
    checkIsParam(check, g, options.loc, t, "a frozen tensor");
    groupOf[t.id()] = -2;
  }
  for (size_t gi = 0; gi < options.groups.size(); ++gi) {
    const ParamGroup& grp = options.groups[gi];
    for (const Tensor& t : grp.params) {
      checkIsParam(check, g, grp.loc, t, fmt::format("a tensor of group {}", gi));
      int& slot = groupOf[t.id()];
      if (slot == -2) check.fail(grp.loc, fmt::format("param '{}' is frozen and also in group {}", paramName(g, t), gi));
      if (slot == static_cast<int>(gi))
        check.fail(grp.loc, fmt::format("param '{}' is listed twice in group {}", paramName(g, t), gi));
      if (slot >= 0)
        check.fail(grp.loc, fmt::format("param '{}' is in group {} and group {}", paramName(g, t), slot, gi));
      slot = static_cast<int>(gi);
    }
  }
  return groupOf;
}

// Gradient accumulation: the mean of k micro-batch gradients, applied on
// every k-th call; from here on every masked update keeps its old value on
// the other calls.
void accumulate(Step& s, int64_t calls, std::vector<Item>& items) {
  double k = static_cast<double>(calls);
  Tensor micro = s.stepState("micro");
  Tensor count = micro + 1.0;
  Tensor apply = greaterEqual(count, s.g.constant(k));
  Tensor zero = s.g.constant(0.0);
  s.out.setAlways(micro, where(apply, zero, count));
  for (Item& it : items) {
    Tensor acc = s.paramState(it, "grad_acc");
    Tensor total = acc + it.grad;
    s.out.setAlways(acc, where(apply, zero, total));
    it.grad = total * (1.0 / k);
  }
  s.out.apply = apply;
}

// Clipping by value, then by global norm; returns the norm (or an invalid
// tensor without clipNorm).
Tensor clip(Graph& g, const TrainOptions& options, std::vector<Item>& items) {
  if (options.clipValue) {
    double c = *options.clipValue;
    for (Item& it : items) it.grad = clamp(it.grad, -c, c);
  }
  if (!options.clipNorm) return {};
  Tensor sq;
  for (const Item& it : items) {
    Tensor part = sum(it.grad * it.grad);
    sq = sq.valid() ? sq + part : part;
  }
  Tensor norm = sqrt(sq);  // sqrt(sum over params of sum(g^2))
  Tensor coef = minOf(*options.clipNorm / (norm + 1e-6), 1.0);  // min(1, max/(norm+1e-6))
  for (Item& it : items) it.grad = it.grad * coef;
  return norm;
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

void addTrainStep(Graph& g, std::string name, Tensor loss, const Optimizer& opt, const TrainOptions& options,
                  Loc loc) {
  ir::Graph& ir = g.ir();
  Checker check{g, name};
  if (ir.findFunction(name)) check.fail(loc, fmt::format("function @{} already exists", name));
  checkOptimizer(check, loc, opt);
  checkOptions(check, options);
  std::vector<int> groupOf = assignGroups(check, g, options);

  std::vector<bool> needed = ir::ancestors(ir, {loss.id()});
  std::vector<Tensor> params, inputs;
  bool anyFrozen = false;
  for (ValueId v = 0; v <= loss.id(); ++v) {
    if (!needed[v]) continue;
    if (ir.node(v).op == OpKind::Param) {
      if (groupOf[v] == -2) anyFrozen = true;
      else params.push_back(g.tensor(v));
    }
    if (ir.node(v).op == OpKind::Input) inputs.push_back(g.tensor(v));
  }
  if (params.empty())
    check.fail(loc, anyFrozen ? "every param the loss depends on is frozen, so there is nothing to train"
                              : "the loss depends on no param, so there is nothing to train");
  // the frozen params are not in wrt, so grad builds nothing only they need
  std::vector<Tensor> grads = grad(loss, params, loc);

  // optimizer nodes carry the line of the addTrainStep call
  g.setLocOverride(g.locOf(loc));
  ir::Function f;
  f.name = name;
  f.outputs.push_back({"loss", loss.id()});
  Pending pending;
  Tensor t = g.state(fmt::format("{}.t", name), {});
  Step s{g, name, pending, t, t + 1.0};
  std::vector<Item> items;
  for (size_t i = 0; i < params.size(); ++i) items.push_back({params[i], grads[i], paramName(g, params[i]), {}, 0.0});

  if (options.accumulate > 1) accumulate(s, options.accumulate, items);
  pending.set(t, s.tNext);
  if (Tensor norm = clip(g, options, items); norm.valid()) f.outputs.push_back({"grad_norm", norm.id()});

  ScheduledLr schedule = makeSchedule(s, options);
  double baseLr = lrOf(opt), baseWd = weightDecayOf(opt);
  Tensor defaultLr = schedule.of(g, baseLr);
  for (Item& it : items) {
    int gi = groupOf[it.p.id()];
    const ParamGroup* grp = gi >= 0 ? &options.groups[gi] : nullptr;
    it.lr = grp && grp->lr ? schedule.of(g, *grp->lr) : defaultLr;
    it.weightDecay = grp && grp->weightDecay ? *grp->weightDecay : baseWd;
  }
  if (schedule.scheduled()) f.outputs.push_back({"lr", defaultLr.id()});

  std::visit([&](const auto& o) { update(s, o, items); }, opt);
  g.clearLocOverride();

  for (const Tensor& in : inputs) f.inputs.push_back(in.id());
  f.updates = std::move(pending.updates);
  addGraphStateUpdates(g, f, needed);
  ir.functions().push_back(std::move(f));
}

}  // namespace kiln
