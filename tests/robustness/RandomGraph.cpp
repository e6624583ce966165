// The random graph generator (see RandomGraph.h). Each step picks a DSL op
// whose operand requirements can be met from the values built so far,
// creating fresh inputs of fitting shapes where it needs a partner.
#include "RandomGraph.h"

#include <kiln/rt/Random.h>

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <functional>

namespace kiln::robust {

namespace {

// A small deterministic PRNG (SplitMix64); std:: distributions differ
// between standard libraries, so none are used.
class Rng {
public:
  explicit Rng(uint64_t seed) : s_(rt::mix64(seed ^ 0x6b696c6e72616e64ull)) {}
  uint64_t next() { return rt::mix64(s_ += 0x9E3779B97F4A7C15ull); }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  int64_t range(int64_t lo, int64_t hi) { return lo + below(hi - lo + 1); }  // inclusive
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<size_t>(below(static_cast<int64_t>(v.size())))]; }

private:
  uint64_t s_;
};

// Bounds of every element of a value.
struct Iv {
  double lo = -1, hi = 1;
  double mag() const { return std::max(std::fabs(lo), std::fabs(hi)); }
};

Iv corners(Iv a, Iv b, double (*f)(double, double)) {
  double v[4] = {f(a.lo, b.lo), f(a.lo, b.hi), f(a.hi, b.lo), f(a.hi, b.hi)};
  return {*std::min_element(v, v + 4), *std::max_element(v, v + 4)};
}
Iv unite(Iv a, Iv b) { return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)}; }
Iv withZero(Iv a) { return unite(a, {0, 0}); }

struct Val {
  Tensor t;
  Iv iv;
};

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}


class Gen {
public:
  Gen(Graph& g, uint64_t seed, std::string prefix, int maxSteps)
      : g_(g), rng_(seed), prefix_(std::move(prefix)), maxSteps_(maxSteps) {
    smooth_ = rng_.chance(0.4);
    // some graphs have longer rows, so vectorized loops and their
    // remainders are exercised too (a vector is 8 or 16 floats)
    big_ = rng_.chance(0.2);
    // and some are trained: params, and a training step @PREFIX_train
    train_ = rng_.chance(0.2);
    maxElems_ = big_ ? 1200 : 96;
  }

  GeneratedGraph run(Module& m);

private:
  // ---- values ----
  // A data value: an input, or on a training graph sometimes a param.
  Val input(const Shape& s) {
    if (train_ && (params_.empty() || rng_.chance(0.3))) {
      Tensor p = g_.param(fmt::format("{}_p{}", prefix_, params_.size()), s, Init::uniform(-1, 1));
      params_.push_back(p);
      return {p, {-1, 1}};
    }
    Tensor t = g_.input(fmt::format("{}_x{}", prefix_, inputs_.size()), s);
    inputs_.push_back(t);
    return {t, {-1, 1}};
  }
  void push(Tensor t, Iv iv, const char* what) {
    ops_.push_back(what);
    pool_.push_back({t, iv});
  }
  const Val& pickVal() {
    if (rng_.chance(0.6)) return pool_.back();
    return rng_.pick(pool_);
  }
  Shape randShape(int64_t minRank = 0, int64_t maxRank = 4) {
    Shape s;
    int64_t rank = rng_.range(minRank, maxRank);
    for (int64_t i = 0; i < rank; ++i) s.push_back(rng_.range(1, big_ ? (rank >= 3 ? 9 : 37) : (rank >= 3 ? 3 : 5)));
    return s;
  }
  // Scales a value into [-1, 1] when it could exceed `limit`.
  Val tame(Val v, double limit = 8) {
    if (v.iv.mag() <= limit) return v;
    if (!smooth_ && rng_.chance(0.2)) return {clamp(v.t, -2.0, 2.0), {std::max(v.iv.lo, -2.0), std::min(v.iv.hi, 2.0)}};
    if (rng_.chance(0.3)) return {tanh(v.t), {-1, 1}};
    double c = 1.0 / v.iv.mag();
    return {v.t * c, {v.iv.lo * c, v.iv.hi * c}};
  }
  // A value >= 0.25 made from v (for log, sqrt, rsqrt, div, pow).
  Val positive(Val v) {
    if (v.iv.lo >= 0.25 && v.iv.hi <= 16) return v;
    v = tame(v, 4);
    switch (rng_.below(smooth_ ? 4 : 6)) {
      case 0: return {square(v.t) + 0.5, {0.5, v.iv.mag() * v.iv.mag() + 0.5}};
      case 1: return {exp(v.t), {std::exp(v.iv.lo), std::exp(v.iv.hi)}};
      case 2: return {softplus(v.t) + 0.25, {0.25, std::log1p(std::exp(v.iv.hi)) + 0.25}};
      case 3: return {sigmoid(v.t) + 0.5, {0.5, 1.5}};
      case 4: return {abs(v.t) + 0.25, {0.25, v.iv.mag() + 0.25}};
      default: return {relu(v.t) + 0.25, {0.25, std::max(v.iv.hi, 0.0) + 0.25}};
    }
  }
  // A partner for a binary op with a: a shape broadcast-compatible with a's.
  Val partner(const Val& a) {
    Shape s = a.t.shape();
    if (rng_.chance(0.15)) {
      double c = rng_.uniform(-1, 1);
      return {g_.constant(c), {c, c}};
    }
    for (int tries = 0; tries < 3 && rng_.chance(0.5); ++tries) {
      const Val& p = rng_.pick(pool_);
      if (p.t.shape() == s) return p;
    }
    Shape b;
    size_t drop = s.empty() || !rng_.chance(0.3) ? 0 : static_cast<size_t>(rng_.range(0, static_cast<int64_t>(s.size())));
    for (size_t i = drop; i < s.size(); ++i) {
      if (s[i] == 1) b.push_back(rng_.chance(0.5) ? rng_.range(1, 3) : 1);
      else b.push_back(rng_.chance(0.7) ? s[i] : 1);
    }
    Shape out = s;  // numpy broadcast of s and b
    for (size_t i = 0; i < b.size(); ++i) {
      int64_t& o = out[out.size() - b.size() + i];
      o = std::max(o, b[i]);
    }
    if (numel(out) > maxElems_) b.assign(b.size(), 1);
    return input(b);
  }
  // A value of a's shape: an earlier one or a new input.
  Val samePartner(const Val& a) {
    for (int tries = 0; tries < 3 && rng_.chance(0.5); ++tries) {
      const Val& p = rng_.pick(pool_);
      if (p.t.shape() == a.t.shape() && p.t.id() != a.t.id()) return tame(p, 4);
    }
    return input(a.t.shape());
  }
  // i32 indices in [0, n) of shape `s`: argmax over the last axis of a
  // fresh input [s..., n].
  Tensor indices(Shape s, int64_t n) {
    Shape z = s;
    z.push_back(n);
    Tensor x = g_.input(fmt::format("{}_i{}", prefix_, indexInputs_.size()), z);
    indexInputs_.push_back(x);
    return rng_.chance(0.5) ? argmax(x, -1) : argmin(x, static_cast<int64_t>(s.size()));
  }
  // A random factorisation of n into `rank` dims.
  Shape factor(int64_t n, int64_t rank) {
    Shape s(static_cast<size_t>(rank), 1);
    if (rank == 0) return s;
    for (int64_t p = 2; n > 1; ++p)
      while (n % p == 0) {
        s[static_cast<size_t>(rng_.below(rank))] *= p;
        n /= p;
      }
    return s;
  }
  Val asRank4(const Val& v) {
    if (v.t.rank() == 4) return v;
    return {reshape(v.t, factor(v.t.shape().empty() ? 1 : numel(v.t.shape()), 4)), v.iv};
  }
  std::vector<int64_t> randomAxes(int64_t rank) {
    std::vector<int64_t> axes;
    if (rng_.chance(0.15)) return axes;  // all
    for (int64_t i = 0; i < rank; ++i)
      if (rng_.chance(0.5)) axes.push_back(rng_.chance(0.3) ? i - rank : i);
    if (axes.empty() && rank > 0) axes.push_back(rng_.below(rank));
    return axes;
  }
  int64_t reducedCount(const Shape& s, const std::vector<int64_t>& axes) {
    if (axes.empty()) return numel(s);
    int64_t n = 1;
    for (int64_t a : axes) n *= s[static_cast<size_t>(a < 0 ? a + static_cast<int64_t>(s.size()) : a)];
    return n;
  }

  // ---- ops; each returns false when it does not apply to the picked value
  bool unary(const Val& v0);
  bool binary(const Val& a);
  bool compareWhere(const Val& a);
  bool reduction(const Val& v);
  bool layout(const Val& v);
  bool combine(const Val& v);  // concat, stack, split
  bool matmulOp(const Val& v);
  bool softmaxOp(const Val& v);
  bool indexing(const Val& v);
  bool convPool(const Val& v);
  bool integer(const Val& v);
  bool lossOp(const Val& v);
  bool randomOp(const Val& v);

  Graph& g_;
  Rng rng_;
  std::string prefix_;
  int maxSteps_;
  bool smooth_ = false;
  bool big_ = false;
  bool train_ = false;
  std::vector<Tensor> params_;  // on training graphs
  int64_t maxElems_ = 96;
  std::vector<Tensor> inputs_;       // f32 data: gradients are taken wrt these
  std::vector<Tensor> indexInputs_;  // argmax'ed into indices: no gradient, not perturbed
  std::vector<Val> pool_;
  std::vector<std::string> ops_;
};

bool Gen::unary(const Val& v0) {
  Val v = tame(v0);
  Tensor x = v.t;
  Iv iv = v.iv;
  auto mono = [&](Tensor t, double (*f)(double), const char* n) { push(t, {f(iv.lo), f(iv.hi)}, n); };
  int k = static_cast<int>(rng_.below(smooth_ ? 15 : 23));
  switch (k) {
    case 0: push(neg(x), {-iv.hi, -iv.lo}, "neg"); return true;
    case 1: { Val s = tame(v, 4); push(exp(s.t), {std::exp(s.iv.lo), std::exp(s.iv.hi)}, "exp"); return true; }
    case 2: { Val p = positive(v); push(log(p.t), {std::log(p.iv.lo), std::log(p.iv.hi)}, "log"); return true; }
    case 3: { Val p = positive(v); push(sqrt(p.t), {std::sqrt(p.iv.lo), std::sqrt(p.iv.hi)}, "sqrt"); return true; }
    case 4: { Val p = positive(v); push(rsqrt(p.t), {1 / std::sqrt(p.iv.hi), 1 / std::sqrt(p.iv.lo)}, "rsqrt"); return true; }
    case 5: { Val p = positive(v); push(log1p(p.t), {std::log1p(p.iv.lo), std::log1p(p.iv.hi)}, "log1p"); return true; }
    case 6: mono(tanh(x), [](double d) { return std::tanh(d); }, "tanh"); return true;
    case 7: mono(sigmoid(x), [](double d) { return 1 / (1 + std::exp(-d)); }, "sigmoid"); return true;
    case 8: mono(softplus(x), [](double d) { return std::log1p(std::exp(d)); }, "softplus"); return true;
    case 9: mono(erf(x), [](double d) { return std::erf(d); }, "erf"); return true;
    case 10: push(gelu(x), {-0.2, std::max(iv.hi, 0.0) + 0.01}, "gelu"); return true;
    case 11: push(rng_.chance(0.5) ? sin(x) : cos(x), {-1, 1}, "sin/cos"); return true;
    case 12: push(square(x), {iv.lo > 0 ? iv.lo * iv.lo : iv.hi < 0 ? iv.hi * iv.hi : 0, iv.mag() * iv.mag()}, "square"); return true;
    case 13: {
      Val p = positive(v);
      double e = rng_.pick(std::vector<double>{0.5, 2.0, 3.0, -1.0, 1.5});
      Iv r = corners(p.iv, {e, e}, [](double a, double b) { return std::pow(a, b); });
      push(pow(p.t, e), r, "pow(x, c)");
      return true;
    }
    case 14: {
      double lo = rng_.uniform(-1, 0), hi = lo + rng_.uniform(0.5, 2);
      push(sigmoidRange(x, lo, hi), {lo, hi}, "sigmoidRange");
      return true;
    }
    // not smooth
    case 15: push(abs(x), {iv.lo > 0 ? iv.lo : iv.hi < 0 ? -iv.hi : 0, iv.mag()}, "abs"); return true;
    case 16: push(relu(x), {std::max(iv.lo, 0.0), std::max(iv.hi, 0.0)}, "relu"); return true;
    case 17: push(leakyRelu(x, 0.1), {std::min(iv.lo, 0.1 * iv.lo), iv.hi}, "leakyRelu"); return true;
    case 18: push(elu(x, 0.7), {std::min(iv.lo, 0.7 * (std::exp(iv.lo) - 1)), iv.hi}, "elu"); return true;
    case 19: push(rng_.chance(0.5) ? sign(x) : step(x), {-1, 1}, "sign/step"); return true;
    case 20: {
      double lo = rng_.uniform(-1, 0.2), hi = lo + rng_.uniform(0.1, 1);
      push(clamp(x, lo, hi), {lo, hi}, "clamp");
      return true;
    }
    case 21: push(stopGradient(x), iv, "stopGradient"); return true;
    default: {
      double p = rng_.uniform(0.1, 0.6);
      push(dropout(x, p, true), {std::min(iv.lo / (1 - p), 0.0), std::max(iv.hi / (1 - p), 0.0)}, "dropout");
      return true;
    }
  }
}

bool Gen::binary(const Val& a0) {
  Val a = tame(a0), b = tame(partner(a));
  if (rng_.chance(0.4)) std::swap(a, b);
  int k = static_cast<int>(rng_.below(smooth_ ? 5 : 7));
  switch (k) {
    case 0: push(add(a.t, b.t), {a.iv.lo + b.iv.lo, a.iv.hi + b.iv.hi}, "add"); return true;
    case 1: push(sub(a.t, b.t), {a.iv.lo - b.iv.hi, a.iv.hi - b.iv.lo}, "sub"); return true;
    case 2: push(mul(a.t, b.t), corners(a.iv, b.iv, [](double x, double y) { return x * y; }), "mul"); return true;
    case 3: {
      Val d = positive(b);
      if (rng_.chance(0.3)) d = {neg(d.t), {-d.iv.hi, -d.iv.lo}};
      push(div(a.t, d.t), corners(a.iv, d.iv, [](double x, double y) { return x / y; }), "div");
      return true;
    }
    case 4: {
      Val p = positive(a), e = tame(b, 2);
      push(pow(p.t, e.t), corners(p.iv, e.iv, [](double x, double y) { return std::pow(x, y); }), "pow");
      return true;
    }
    case 5: push(maximum(a.t, b.t), {std::max(a.iv.lo, b.iv.lo), std::max(a.iv.hi, b.iv.hi)}, "maximum"); return true;
    default: push(minimum(a.t, b.t), {std::min(a.iv.lo, b.iv.lo), std::min(a.iv.hi, b.iv.hi)}, "minimum"); return true;
  }
}

bool Gen::compareWhere(const Val& a0) {
  if (smooth_) return false;
  Val a = a0, b = partner(a);
  using Cmp = Tensor (*)(Tensor, Tensor, Loc);
  static const Cmp cmps[] = {less, lessEqual, greater, greaterEqual, equal, notEqual};
  Tensor mask = cmps[rng_.below(6)](a.t, b.t, Loc::current());
  if (rng_.chance(0.3)) {
    push(mask, {0, 1}, "compare");
    return true;
  }
  Val c = samePartner(a);  // a's shape broadcasts with the mask's
  Tensor w = where(mask, a.t, c.t);
  push(w, unite(a.iv, c.iv), "compare+where");
  return true;
}

bool Gen::reduction(const Val& v) {
  Shape s = v.t.shape();
  std::vector<int64_t> axes = randomAxes(static_cast<int64_t>(s.size()));
  bool keep = rng_.chance(0.4);
  double n = static_cast<double>(reducedCount(s, axes));
  switch (rng_.below(smooth_ ? 4 : 6)) {
    case 0: push(sum(v.t, axes, keep), {v.iv.lo * n, v.iv.hi * n}, "sum"); return true;
    case 1: push(mean(v.t, axes, keep), v.iv, "mean"); return true;
    case 2: {
      Val t = tame(v);
      push(logSumExp(t.t, axes, keep), {t.iv.lo, t.iv.hi + std::log(n)}, "logSumExp");
      return true;
    }
    case 3: {
      bool unbiased = n > 1 && rng_.chance(0.5);
      double w = v.iv.hi - v.iv.lo;
      push(variance(v.t, axes, keep, unbiased), {0, w * w * (unbiased ? n / (n - 1) : 1.0)}, "variance");
      return true;
    }
    case 4: push(rng_.chance(0.5) ? reduceMax(v.t, axes, keep) : reduceMin(v.t, axes, keep), v.iv, "reduceMax/Min"); return true;
    default: {
      if (s.empty()) return false;
      int64_t axis = rng_.below(static_cast<int64_t>(s.size()));
      Tensor i = rng_.chance(0.5) ? argmax(v.t, axis) : argmin(v.t, axis);
      push(cast(i, DType::F32), {0, static_cast<double>(s[static_cast<size_t>(axis)] - 1)}, "argmax/min");
      return true;
    }
  }
}

bool Gen::layout(const Val& v) {
  Shape s = v.t.shape();
  int64_t r = static_cast<int64_t>(s.size());
  switch (rng_.below(8)) {
    case 0: {
      Shape to = factor(numel(s), rng_.range(numel(s) > 1 ? 1 : 0, 4));
      if (!to.empty() && rng_.chance(0.3)) to[static_cast<size_t>(rng_.below(static_cast<int64_t>(to.size())))] = -1;
      push(reshape(v.t, to), v.iv, "reshape");
      return true;
    }
    case 1: {
      if (r == 0) return false;
      std::vector<int64_t> perm(static_cast<size_t>(r));
      for (int64_t i = 0; i < r; ++i) perm[static_cast<size_t>(i)] = i;
      for (int64_t i = r - 1; i > 0; --i) std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(rng_.below(i + 1))]);
      push(rng_.chance(0.2) ? transpose(v.t) : transpose(v.t, perm), v.iv, "transpose");
      return true;
    }
    case 2: {
      if (r == 0) return false;
      std::vector<int64_t> b, e, st;
      for (int64_t d : s) {
        int64_t lo = rng_.below(d), hi = rng_.range(lo + 1, d);
        int64_t stride = rng_.range(1, 2);
        b.push_back(rng_.chance(0.3) ? lo - d : lo);
        e.push_back(rng_.chance(0.3) ? hi - d : hi);
        st.push_back(stride);
      }
      // hi - d is 0 when hi == d, which would mean index 0, not the end
      for (size_t i = 0; i < e.size(); ++i)
        if (e[i] == 0) e[i] = s[i];
      push(slice(v.t, b, e, st), v.iv, "slice");
      return true;
    }
    case 3: {
      if (r == 0) return false;
      int64_t axis = rng_.below(r), d = s[static_cast<size_t>(axis)];
      int64_t start = rng_.below(d), len = rng_.range(1, d - start);
      push(sliceAxis(v.t, axis, start, len), v.iv, "sliceAxis");
      return true;
    }
    case 4: {
      if (r == 0) return false;
      std::vector<int64_t> lo, hi, in;
      Shape out;
      for (int64_t d : s) {
        lo.push_back(rng_.range(0, 1));
        hi.push_back(rng_.range(0, 1));
        in.push_back(d > 1 && rng_.chance(0.2) ? 1 : 0);
        out.push_back(d + lo.back() + hi.back() + (d - 1) * in.back());
      }
      if (numel(out) > maxElems_ * 2) return false;
      push(pad(v.t, lo, hi, in), withZero(v.iv), "pad");
      return true;
    }
    case 5: {
      Shape to = s;
      to.insert(to.begin(), rng_.range(1, 3));
      for (int64_t& d : to)
        if (d == 1 && rng_.chance(0.5)) d = 2;
      if (numel(to) > maxElems_) return false;
      push(broadcastTo(v.t, to), v.iv, "broadcastTo");
      return true;
    }
    case 6: push(unsqueeze(v.t, rng_.range(-r - 1, r)), v.iv, "unsqueeze"); return true;
    default: {
      if (std::find(s.begin(), s.end(), 1) == s.end()) return false;
      push(squeeze(v.t), v.iv, "squeeze");
      return true;
    }
  }
}

bool Gen::combine(const Val& v) {
  Shape s = v.t.shape();
  int64_t r = static_cast<int64_t>(s.size());
  if (r == 0) return false;
  int64_t axis = rng_.below(r);
  switch (rng_.below(3)) {
    case 0: {
      Shape o = s;
      o[static_cast<size_t>(axis)] = rng_.range(1, 3);
      Val b = input(o);
      std::vector<Tensor> xs{v.t, b.t};
      if (rng_.chance(0.3)) xs.push_back(v.t);  // the same value twice
      if (rng_.chance(0.5)) std::swap(xs[0], xs[1]);
      push(concat(xs, rng_.chance(0.3) ? axis - r : axis), unite(v.iv, b.iv), "concat");
      return true;
    }
    case 1: {
      if (numel(s) * 2 > maxElems_) return false;
      Val b = partner(v);
      if (b.t.shape() != s) b = input(s);
      push(stack({v.t, b.t}, rng_.range(0, r)), unite(v.iv, b.iv), "stack");
      return true;
    }
    default: {
      int64_t d = s[static_cast<size_t>(axis)];
      if (d < 2) return false;
      int64_t first = rng_.range(1, d - 1);
      std::vector<Tensor> parts = split(v.t, {first, d - first}, axis);
      push(parts[static_cast<size_t>(rng_.below(2))], v.iv, "split");
      return true;
    }
  }
}

bool Gen::matmulOp(const Val& v0) {
  Val v = tame(v0, 2);
  Shape s = v.t.shape();
  Tensor a = v.t;
  if (s.size() < 2) {
    Shape to = factor(numel(s), 2);
    a = reshape(a, to);
    s = to;
  }
  if (s.size() > 3) return false;
  int64_t r = static_cast<int64_t>(s.size());
  int64_t n = rng_.range(1, 4);
  Shape bs(s.begin(), s.end() - 2);  // batch dims must be equal
  if (rng_.chance(0.4)) {  // x as the right operand: op(c) [n, k] times x [k, m]
    bool tc = rng_.chance(0.5);
    int64_t k = s[static_cast<size_t>(r - 2)];
    bs.push_back(tc ? k : n);
    bs.push_back(tc ? n : k);
    Val c = input(bs);
    double bound = static_cast<double>(k) * v.iv.mag();
    push(matmul(c.t, a, tc, false), {-bound, bound}, "matmul(c, x)");
    return true;
  }
  bool ta = rng_.chance(0.3), tb = rng_.chance(0.3);
  int64_t k = s[static_cast<size_t>(r - (ta ? 2 : 1))];
  bs.push_back(tb ? n : k);
  bs.push_back(tb ? k : n);
  Val b = input(bs);
  double bound = static_cast<double>(k) * v.iv.mag();
  push(matmul(a, b.t, ta, tb), {-bound, bound}, r == 3 ? "batched matmul" : "matmul");
  return true;
}

bool Gen::softmaxOp(const Val& v0) {
  Val v = tame(v0);
  int64_t r = v.t.rank();
  if (r == 0) return false;
  int64_t axis = rng_.range(-r, r - 1);
  double n = static_cast<double>(v.t.dim(axis));
  if (rng_.chance(0.5)) push(logSoftmax(v.t, axis), {v.iv.lo - v.iv.hi - std::log(n), 0}, "logSoftmax");
  else push(softmax(v.t, axis), {0, 1}, "softmax");
  return true;
}

bool Gen::indexing(const Val& v) {
  Shape s = v.t.shape();
  int64_t r = static_cast<int64_t>(s.size());
  if (r == 0) return false;
  switch (rng_.below(4)) {
    case 0: {  // gather rows of v
      Shape is = randShape(0, 2);
      if (numel(is) * numel(s) / s[0] > maxElems_) return false;
      push(gather(v.t, indices(is, s[0])), v.iv, "gather");
      return true;
    }
    case 1: {  // take along a random axis
      int64_t axis = rng_.below(r);
      Shape is = s;
      is[static_cast<size_t>(axis)] = rng_.range(1, 4);
      if (numel(is) > maxElems_) return false;
      push(takeAlongAxis(v.t, indices(is, s[static_cast<size_t>(axis)]), rng_.chance(0.3) ? axis - r : axis), v.iv,
           "takeAlongAxis");
      return true;
    }
    case 2: {  // scatter v's leading dims into `rows` rows
      int64_t lead = rng_.range(1, r);
      Shape is(s.begin(), s.begin() + lead);
      int64_t rows = rng_.range(1, 5);
      double cnt = static_cast<double>(numel(is));
      push(scatterAdd(v.t, indices(is, rows), rows), {std::min(0.0, v.iv.lo * cnt), std::max(0.0, v.iv.hi * cnt)},
           "scatterAdd");
      return true;
    }
    default: {
      int64_t axis = rng_.below(r);
      Shape to = s;
      to[static_cast<size_t>(axis)] = rng_.range(1, 4);
      if (numel(to) > maxElems_) return false;
      double cnt = static_cast<double>(s[static_cast<size_t>(axis)]);
      push(scatterAlongAxis(v.t, indices(s, to[static_cast<size_t>(axis)]), axis, to),
           {std::min(0.0, v.iv.lo * cnt), std::max(0.0, v.iv.hi * cnt)}, "scatterAlongAxis");
      return true;
    }
  }
}

bool Gen::convPool(const Val& v0) {
  Val v = asRank4(tame(v0, 2));
  Shape s = v.t.shape();
  int64_t c = s[1], h = s[2], w = s[3];
  if (rng_.chance(0.5)) {
    Conv2dOptions o;
    for (int i = 0; i < 2; ++i) {
      o.stride[i] = rng_.range(1, 2);
      o.pad[i] = rng_.range(0, 1);
      o.dilation[i] = rng_.chance(0.2) ? 2 : 1;
    }
    std::vector<int64_t> divisors;
    for (int64_t d = 1; d <= c; ++d)
      if (c % d == 0) divisors.push_back(d);
    o.groups = rng_.pick(divisors);
    int64_t out = o.groups * rng_.range(1, 2);
    int64_t kh = rng_.range(1, 3), kw = rng_.range(1, 3);
    // shrink the window until it fits the padded input
    while (kh > 1 && (kh - 1) * o.dilation[0] + 1 > h + 2 * o.pad[0]) --kh;
    while (kw > 1 && (kw - 1) * o.dilation[1] + 1 > w + 2 * o.pad[1]) --kw;
    if ((kh - 1) * o.dilation[0] + 1 > h + 2 * o.pad[0] || (kw - 1) * o.dilation[1] + 1 > w + 2 * o.pad[1]) return false;
    int64_t oh = (h + 2 * o.pad[0] - (kh - 1) * o.dilation[0] - 1) / o.stride[0] + 1;
    int64_t ow = (w + 2 * o.pad[1] - (kw - 1) * o.dilation[1] - 1) / o.stride[1] + 1;
    if (s[0] * out * oh * ow > maxElems_ * 2) return false;
    Val f = input({out, c / o.groups, kh, kw});
    double bound = static_cast<double>(c / o.groups * kh * kw) * v.iv.mag();
    push(conv2d(v.t, f.t, o), {-bound, bound}, "conv2d");
    return true;
  }
  int64_t kh = rng_.range(1, std::min<int64_t>(3, h)), kw = rng_.range(1, std::min<int64_t>(3, w));
  std::vector<int64_t> stride{rng_.range(1, 2), rng_.range(1, 2)};
  std::vector<int64_t> padding{rng_.range(0, kh / 2), rng_.range(0, kw / 2)};
  if (!smooth_ && rng_.chance(0.5)) push(maxPool2d(v.t, {kh, kw}, stride, padding), v.iv, "maxPool2d");
  else push(avgPool2d(v.t, {kh, kw}, stride, padding), withZero(v.iv), "avgPool2d");
  return true;
}

bool Gen::integer(const Val& v0) {
  if (smooth_) return false;
  Val v = tame(v0, 2), b = tame(partner(v), 2);
  Tensor i = cast(v.t * 5.0, DType::I32), j = cast(b.t * 3.0, DType::I32);
  Tensor r;
  switch (rng_.below(5)) {
    case 0: r = add(i, j); break;
    case 1: r = sub(i, j); break;
    case 2: r = mul(i, j); break;
    case 3: r = abs(neg(i)); break;
    default: push(greater(i, j), {0, 1}, "i32 compare"); return true;
  }
  push(cast(r, DType::F32), {-32, 32}, "i32 arithmetic");
  return true;
}

bool Gen::lossOp(const Val& v0) {
  Val v = tame(v0, 4);
  Shape s = v.t.shape();
  switch (rng_.below(smooth_ ? 3 : 5)) {
    case 0: {
      if (s.size() != 2) return false;
      Tensor labels = indices({s[0]}, s[1]);
      push(softmaxCrossEntropy(v.t, labels), {0, v.iv.hi - v.iv.lo + std::log(static_cast<double>(s[1]))}, "softmaxCrossEntropy");
      return true;
    }
    case 1: {
      Val t = input(s);
      push(bceWithLogits(v.t, sigmoid(t.t)), {0, v.iv.mag() + 1}, "bceWithLogits");
      return true;
    }
    case 2: {
      Val t = samePartner(v);
      double m = v.iv.mag() + t.iv.mag();
      push(mseLoss(v.t, t.t), {0, m * m}, "mseLoss");
      return true;
    }
    case 3: {
      Val t = samePartner(v);
      push(l1Loss(v.t, t.t), {0, v.iv.mag() + t.iv.mag()}, "l1Loss");
      return true;
    }
    default: {
      Val t = samePartner(v);
      double m = v.iv.mag() + t.iv.mag();
      push(huberLoss(v.t, t.t, rng_.uniform(0.2, 1.5)), {0, m * m}, "huberLoss");
      return true;
    }
  }
}

bool Gen::randomOp(const Val& v) {
  if (smooth_) return false;
  if (rng_.chance(0.5)) push(v.t * randomUniform(g_, v.t.shape()), withZero(v.iv), "randomUniform");
  else push(v.t + 0.1 * randomNormal(g_, v.t.shape()), {v.iv.lo - 0.7, v.iv.hi + 0.7}, "randomNormal");
  return true;
}

GeneratedGraph Gen::run(Module& m) {
  pool_.push_back(input(big_ ? randShape(1, 3) : randShape(0, 4)));
  if (rng_.chance(0.5)) pool_.push_back(input(randShape(1, 3)));
  int64_t steps = rng_.range(2, std::max(2, maxSteps_));
  // weights: elementwise and layout ops are the bulk of real models
  static const std::vector<int> kinds{0, 0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  for (int64_t i = 0; i < steps; ++i) {
    for (int tries = 0; tries < 20; ++tries) {
      Val v = pickVal();
      bool ok = false;
      switch (rng_.pick(kinds)) {
        case 0: ok = unary(v); break;
        case 1: ok = binary(v); break;
        case 2: ok = compareWhere(v); break;
        case 3: ok = reduction(v); break;
        case 4: ok = layout(v); break;
        case 5: ok = combine(v); break;
        case 6: ok = matmulOp(v); break;
        case 7: ok = softmaxOp(v); break;
        case 8: ok = indexing(v); break;
        case 9: ok = convPool(v); break;
        case 10: ok = integer(v); break;
        case 11: ok = lossOp(v); break;
        default: ok = randomOp(v); break;
      }
      if (ok) break;
    }
  }
  Tensor y = pool_.back().t;
  std::vector<std::pair<std::string, Tensor>> outs{{"y", y}};
  if (pool_.size() > 3 && rng_.chance(0.4)) outs.push_back({"e0", pool_[pool_.size() / 2].t});
  Tensor w = g_.input(fmt::format("{}_w", prefix_), y.shape());
  Tensor loss = sum(tame(pool_.back()).t * w);
  // an L2 term, so every param of a training graph reaches the loss
  for (const Tensor& p : params_) loss = loss + 0.01 * sum(square(p));
  outs.push_back({smooth_ ? "loss_fd" : "loss", loss});
  // gradients on every smooth graph and a quarter of the others (compile
  // time is per kernel, and a backward pass doubles the kernels)
  std::vector<Tensor> wrt;
  if (smooth_ || rng_.chance(0.25)) {
    wrt = inputs_;
    wrt.insert(wrt.end(), params_.begin(), params_.end());
  }
  std::vector<Tensor> grads = wrt.empty() ? std::vector<Tensor>{} : grad(loss, wrt);
  for (size_t i = 0; i < wrt.size(); ++i) outs.push_back({fmt::format("d.{}", g_.ir().node(wrt[i].id()).name), grads[i]});
  std::vector<Tensor> ins = inputs_;
  ins.insert(ins.end(), indexInputs_.begin(), indexInputs_.end());
  ins.push_back(w);
  m.addFunction(prefix_, ins, outs);
  if (train_) {
    Optimizer opt = SGD{.lr = 0.05, .momentum = 0.9};
    switch (rng_.below(4)) {
      case 0: opt = Adam{.lr = 0.01}; break;
      case 1: opt = AdamW{.lr = 0.01, .amsgrad = true}; break;
      case 2: opt = RMSprop{.lr = 0.01, .centered = true}; break;
      default: break;
    }
    TrainOptions to;
    if (rng_.chance(0.3)) to.clipNorm = 0.5;
    m.addTrainStep(prefix_ + "_train", loss, opt, to);
    ops_.push_back("trainStep");
  }
  return {prefix_, smooth_, ops_};
}

}  // namespace

GeneratedGraph generate(Graph& g, Module& m, uint64_t seed, const std::string& prefix, int maxSteps) {
  return Gen(g, seed, prefix, maxSteps).run(m);
}

std::vector<float> inputValues(const std::string& name, int64_t count) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name picks the stream
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  std::vector<float> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) v[static_cast<size_t>(i)] = 2 * rt::uniform01(0x6b696c6e, h, static_cast<uint64_t>(i)) - 1;
  return v;
}

}  // namespace kiln::robust
