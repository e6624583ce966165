// The builder DSL: kiln::Graph and kiln::Tensor handles with the op
// functions users write models in. Autodiff rules are written with the same
// functions. Every op checks shapes and dtypes as it is built and reports
// errors with the caller's file:line.
#pragma once

#include <source_location>
#include <string>
#include <vector>

#include "Graph.h"

namespace kiln {

using ir::DType;
using ir::Shape;
using Error = ir::CompileError;
using Loc = std::source_location;

// How a parameter or state is filled by init(seed). Fan-in/out default to
// the first/last dimension.
struct Init {
  // zeros|constant|uniform|normal|truncated_normal|xavier_uniform|xavier_normal|he_uniform|he_normal|
  // identity|orthogonal|seed (i32 RNG key)
  std::string kind = "zeros";
  double a = 0, b = 0;  // constant: a; uniform: [a,b); normal, truncated_normal: mean a, std b; identity: a = gain
  static Init zeros() { return {}; }
  static Init constant(double v) { return {"constant", v, 0}; }
  static Init uniform(double lo, double hi) { return {"uniform", lo, hi}; }
  static Init normal(double mean, double stddev) { return {"normal", mean, stddev}; }
  // normal redrawn until within 2 std of the mean
  static Init truncatedNormal(double mean, double stddev) { return {"truncated_normal", mean, stddev}; }
  static Init xavierUniform() { return {"xavier_uniform", 0, 0}; }
  static Init xavierNormal() { return {"xavier_normal", 0, 0}; }
  // gain * I for a square (or the leading square of a 2-D) matrix
  static Init identity(double gain = 1.0) { return {"identity", gain, 0}; }
  // a random orthogonal matrix (QR of a Gaussian one) times gain
  static Init orthogonal(double gain = 1.0) { return {"orthogonal", gain, 0}; }
  static Init heUniform() { return {"he_uniform", 0, 0}; }
  static Init heNormal() { return {"he_normal", 0, 0}; }
};

class Graph;

// A handle to one value of a graph. Cheap to copy.
class Tensor {
public:
  Tensor() = default;
  Tensor(Graph* g, ir::ValueId id) : g_(g), id_(id) {}
  Graph& graph() const { return *g_; }
  ir::ValueId id() const { return id_; }
  bool valid() const { return g_ != nullptr; }
  const ir::TensorType& type() const;
  const Shape& shape() const { return type().shape; }
  DType dtype() const { return type().dtype; }
  int64_t rank() const { return type().rank(); }
  int64_t dim(int64_t i) const;  // negative counts from the end

private:
  Graph* g_ = nullptr;
  ir::ValueId id_ = -1;
};

// A tensor plus the source location of the expression that produced the
// conversion: lets operators (which cannot take default arguments) report
// the user's line.
struct TensorAt {
  Tensor t;
  Loc loc;
  TensorAt(Tensor t, Loc loc = Loc::current()) : t(t), loc(loc) {}
};

class Graph {
public:
  Graph() = default;
  Graph(const Graph&) = delete;  // tensors point at their graph
  Graph& operator=(const Graph&) = delete;

  Tensor input(std::string name, Shape shape, DType dtype = DType::F32, Loc loc = Loc::current());
  Tensor param(std::string name, Shape shape, Init init, Loc loc = Loc::current());
  Tensor state(std::string name, Shape shape, Init init = Init::zeros(), DType dtype = DType::F32,
               Loc loc = Loc::current());
  Tensor constant(double value, Shape shape = {}, DType dtype = DType::F32, Loc loc = Loc::current());

  // Builds a node, checks it with its shape rule, and returns its handle.
  // Errors name `loc` (or the location override, see below).
  Tensor build(ir::OpKind op, std::vector<Tensor> operands, ir::Attrs attrs, ir::TensorType declared, Loc loc);

  // Whether log(...) of a recognised unstable pattern builds the stable form
  // instead (log(softmax) -> logSoftmax, log(sigmoid) -> -softplus(-x),
  // log(sum(exp)) -> logSumExp, log(1+x) -> log1p; see ir/Stable.h). On by
  // default; autodiff then differentiates the stable forward graph.
  void setStableRewrites(bool on) { stable_ = on; }
  bool stableRewrites() const { return stable_; }

  // The RNG key every random op reads: state "rng.key" i32[2] = (seed bits
  // from init(seed), step). Created on first use; each training step adds
  // one to the step half, so every step draws fresh numbers.
  Tensor rngKey(Loc loc = Loc::current());
  // A new stream number for a random op (build order; deterministic).
  int64_t nextStream() { return nextStream_++; }

  // State updates that every training step applies besides the optimizer's
  // (running statistics of batch norm, the RNG step).
  struct StateUpdate {
    Tensor target, value;
  };
  void addStateUpdate(Tensor target, Tensor value, Loc loc = Loc::current());
  const std::vector<StateUpdate>& stateUpdates() const { return stateUpdates_; }

  ir::Graph& ir() { return ir_; }
  const ir::Graph& ir() const { return ir_; }
  Tensor tensor(ir::ValueId v) { return Tensor(this, v); }

  // While set, new nodes carry this location instead of the caller's: the
  // autodiff gives backward nodes the line of the forward op they belong to.
  void setLocOverride(ir::SourceLoc loc) { override_ = std::move(loc); }
  void clearLocOverride() { override_ = {}; }

  // The location new nodes built at `loc` will carry.
  ir::SourceLoc locOf(const Loc& loc) const;

private:
  ir::Graph ir_;
  ir::SourceLoc override_;
  ir::ValueId rngKey_ = -1;
  bool stable_ = true;
  int64_t nextStream_ = 1;
  std::vector<StateUpdate> stateUpdates_;
};

// ---- elementwise (numpy-style broadcasting; dtypes must match) ----
Tensor add(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor sub(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor mul(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor div(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor maximum(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor neg(Tensor x, Loc loc = Loc::current());
Tensor exp(Tensor x, Loc loc = Loc::current());
Tensor log(Tensor x, Loc loc = Loc::current());
Tensor sqrt(Tensor x, Loc loc = Loc::current());
Tensor relu(Tensor x, Loc loc = Loc::current());
Tensor tanh(Tensor x, Loc loc = Loc::current());
Tensor sigmoid(Tensor x, Loc loc = Loc::current());
Tensor step(Tensor x, Loc loc = Loc::current());  // x > 0 ? 1 : 0
Tensor minimum(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor pow(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor pow(Tensor a, double b, Loc loc = Loc::current());
Tensor log1p(Tensor x, Loc loc = Loc::current());
Tensor rsqrt(Tensor x, Loc loc = Loc::current());
Tensor abs(Tensor x, Loc loc = Loc::current());
Tensor sign(Tensor x, Loc loc = Loc::current());
Tensor leakyRelu(Tensor x, double alpha = 0.01, Loc loc = Loc::current());
Tensor elu(Tensor x, double alpha = 1.0, Loc loc = Loc::current());
Tensor softplus(Tensor x, Loc loc = Loc::current());  // ln(1+e^x), = x above 20
Tensor erf(Tensor x, Loc loc = Loc::current());
Tensor gelu(Tensor x, Loc loc = Loc::current());  // x * Phi(x), the exact (erf) form
Tensor sin(Tensor x, Loc loc = Loc::current());
Tensor cos(Tensor x, Loc loc = Loc::current());
Tensor square(Tensor x, Loc loc = Loc::current());
Tensor clamp(Tensor x, double lo, double hi, Loc loc = Loc::current());
// lo + (hi - lo) * sigmoid(x): squashes a score into (lo, hi).
Tensor sigmoidRange(Tensor x, double lo, double hi, Loc loc = Loc::current());
// Comparisons give f32 masks of 0 and 1 (operands f32 or i32, broadcast).
Tensor less(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor lessEqual(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor greater(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor greaterEqual(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor equal(Tensor a, Tensor b, Loc loc = Loc::current());
Tensor notEqual(Tensor a, Tensor b, Loc loc = Loc::current());
// cond != 0 ? a : b, elementwise with broadcasting; cond is an f32 mask.
Tensor where(Tensor cond, Tensor a, Tensor b, Loc loc = Loc::current());
Tensor cast(Tensor x, DType to, Loc loc = Loc::current());
// Cuts the gradient: the value of x, seen by autodiff as a constant.
Tensor stopGradient(Tensor x, Loc loc = Loc::current());

Tensor operator+(TensorAt a, Tensor b);
Tensor operator-(TensorAt a, Tensor b);
Tensor operator*(TensorAt a, Tensor b);
Tensor operator/(TensorAt a, Tensor b);
Tensor operator+(TensorAt a, double b);
Tensor operator-(TensorAt a, double b);
Tensor operator*(TensorAt a, double b);
Tensor operator/(TensorAt a, double b);
Tensor operator+(double a, TensorAt b);
Tensor operator-(double a, TensorAt b);
Tensor operator*(double a, TensorAt b);
Tensor operator/(double a, TensorAt b);
Tensor operator-(TensorAt x);

// ---- reductions (axes may be negative; empty = all axes) ----
Tensor sum(Tensor x, std::vector<int64_t> axes = {}, bool keepDims = false, Loc loc = Loc::current());
Tensor mean(Tensor x, std::vector<int64_t> axes = {}, bool keepDims = false, Loc loc = Loc::current());
Tensor reduceMax(Tensor x, std::vector<int64_t> axes = {}, bool keepDims = false, Loc loc = Loc::current());
Tensor reduceMin(Tensor x, std::vector<int64_t> axes = {}, bool keepDims = false, Loc loc = Loc::current());
Tensor argmax(Tensor x, int64_t axis = -1, Loc loc = Loc::current());
Tensor argmin(Tensor x, int64_t axis = -1, Loc loc = Loc::current());
// log(sum(exp(x))) over axes, computed stably (max subtracted first).
Tensor logSumExp(Tensor x, std::vector<int64_t> axes = {}, bool keepDims = false, Loc loc = Loc::current());
// Mean squared deviation over axes; unbiased divides by count-1.
Tensor variance(Tensor x, std::vector<int64_t> axes = {}, bool keepDims = false, bool unbiased = false,
                Loc loc = Loc::current());

// ---- layout ----
Tensor reshape(Tensor x, Shape shape, Loc loc = Loc::current());  // one dim may be -1
Tensor transpose(Tensor x, std::vector<int64_t> perm = {}, Loc loc = Loc::current());  // default: reverse
Tensor broadcastTo(Tensor x, Shape shape, Loc loc = Loc::current());
Tensor concat(const std::vector<Tensor>& xs, int64_t axis = 0, Loc loc = Loc::current());
// x[begin:end:stride] per dim; negative begin/end count from the end, and
// missing trailing dims are taken whole.
Tensor slice(Tensor x, std::vector<int64_t> begin, std::vector<int64_t> end, std::vector<int64_t> stride = {},
             Loc loc = Loc::current());
// x[.., start:start+len, ..] along one axis.
Tensor sliceAxis(Tensor x, int64_t axis, int64_t start, int64_t len, Loc loc = Loc::current());
// Zero padding per dim: lo before, hi after, interior between elements.
Tensor pad(Tensor x, std::vector<int64_t> lo, std::vector<int64_t> hi, std::vector<int64_t> interior = {},
           Loc loc = Loc::current());
// Splits along axis into pieces of the given sizes (which must add up).
std::vector<Tensor> split(Tensor x, std::vector<int64_t> sizes, int64_t axis = 0, Loc loc = Loc::current());
// Stacks equal-shaped tensors along a new axis.
Tensor stack(const std::vector<Tensor>& xs, int64_t axis = 0, Loc loc = Loc::current());
Tensor squeeze(Tensor x, std::vector<int64_t> axes = {}, Loc loc = Loc::current());  // empty: every size-1 dim
Tensor unsqueeze(Tensor x, int64_t axis, Loc loc = Loc::current());

// ---- contractions, softmax, losses ----
// op(a) op(b) over the last two dims; rank 3+ operands are batches with
// equal leading dims.
Tensor matmul(Tensor a, Tensor b, bool transA = false, bool transB = false, Loc loc = Loc::current());
Tensor logSoftmax(Tensor x, int64_t axis = -1, Loc loc = Loc::current());
Tensor softmax(Tensor x, int64_t axis = -1, Loc loc = Loc::current());
Tensor oneHot(Tensor indices, int64_t depth, Loc loc = Loc::current());

// ---- indexing (out-of-range indices read 0 and write nothing) ----
// table [V, ...] indexed by i32 idx of any shape -> idx.shape + table.shape[1:].
Tensor gather(Tensor table, Tensor idx, Loc loc = Loc::current());
// Zeros of shape [rows, src.shape[idx.rank():]...] with src added at idx.
Tensor scatterAdd(Tensor src, Tensor idx, int64_t rows, Loc loc = Loc::current());
// numpy take_along_axis: idx has x's rank and shape except along axis.
Tensor takeAlongAxis(Tensor x, Tensor idx, int64_t axis, Loc loc = Loc::current());
Tensor scatterAlongAxis(Tensor src, Tensor idx, int64_t axis, Shape shape, Loc loc = Loc::current());

// ---- convolution and pooling (NCHW) ----
struct Conv2dOptions {
  std::vector<int64_t> stride{1, 1}, pad{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};
// x f32[N,C,H,W], w f32[O,C/groups,KH,KW] -> f32[N,O,OH,OW] (no bias).
Tensor conv2d(Tensor x, Tensor w, const Conv2dOptions& o = {}, Loc loc = Loc::current());
// Window [kh,kw]; stride defaults to the window; pad at most half the window.
Tensor maxPool2d(Tensor x, std::vector<int64_t> kernel, std::vector<int64_t> stride = {},
                 std::vector<int64_t> pad = {0, 0}, Loc loc = Loc::current());
Tensor avgPool2d(Tensor x, std::vector<int64_t> kernel, std::vector<int64_t> stride = {},
                 std::vector<int64_t> pad = {0, 0}, Loc loc = Loc::current());

// ---- random numbers ----
// Uniform [0,1) or standard normal values, a pure function of the graph's
// RNG key (seed and step; see Graph::rngKey) and a per-op stream.
Tensor randomUniform(Graph& g, Shape shape, Loc loc = Loc::current());
Tensor randomNormal(Graph& g, Shape shape, Loc loc = Loc::current());
// Inverted dropout: zeroes each element with probability p and scales the
// rest by 1/(1-p) when training; the identity otherwise.
Tensor dropout(Tensor x, double p, bool training, Loc loc = Loc::current());

// ---- losses (per example; reduce with mean or sum) ----
// -log softmax(logits)[label]: logits f32[N,C], labels i32[N] -> f32[N].
Tensor softmaxCrossEntropy(Tensor logits, Tensor labels, Loc loc = Loc::current());
// -sum(p * log softmax(logits)) with target probabilities p f32[N,C] -> f32[N].
Tensor softmaxCrossEntropyProbs(Tensor logits, Tensor probs, Loc loc = Loc::current());
// Binary cross-entropy on logits, stable for any magnitude:
// max(x,0) - x*z + log(1 + e^-|x|), elementwise.
Tensor bceWithLogits(Tensor logits, Tensor targets, Loc loc = Loc::current());
Tensor mseLoss(Tensor pred, Tensor target, Loc loc = Loc::current());  // (p-t)^2 elementwise
Tensor l1Loss(Tensor pred, Tensor target, Loc loc = Loc::current());   // |p-t|
// Huber (smooth L1 with threshold delta): 0.5 d^2 if |d| <= delta, else delta(|d| - delta/2).
Tensor huberLoss(Tensor pred, Tensor target, double delta = 1.0, Loc loc = Loc::current());
// Skip-gram negative sampling: -log s(u.v) - sum_k log s(-u.n_k), with
// center u f32[B,D], context v f32[B,D], negatives f32[B,K,D] -> f32[B].
Tensor negativeSamplingLoss(Tensor center, Tensor context, Tensor negatives, Loc loc = Loc::current());
// Sampled softmax: softmax cross-entropy over the true class and S sampled
// classes only. hidden f32[B,D], weights f32[V,D], bias f32[V], labels
// i32[B], samples i32[B,S] -> f32[B].
Tensor sampledSoftmaxLoss(Tensor hidden, Tensor weights, Tensor bias, Tensor labels, Tensor samples,
                          Loc loc = Loc::current());

}  // namespace kiln
