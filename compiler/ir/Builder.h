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
  std::string kind = "zeros";  // zeros|constant|uniform|normal|xavier_uniform|he_uniform|he_normal
  double a = 0, b = 0;         // constant: a; uniform: [a,b); normal: mean a, std b
  static Init zeros() { return {}; }
  static Init constant(double v) { return {"constant", v, 0}; }
  static Init uniform(double lo, double hi) { return {"uniform", lo, hi}; }
  static Init normal(double mean, double stddev) { return {"normal", mean, stddev}; }
  static Init xavierUniform() { return {"xavier_uniform", 0, 0}; }
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
Tensor argmax(Tensor x, int64_t axis = -1, Loc loc = Loc::current());

// ---- layout ----
Tensor reshape(Tensor x, Shape shape, Loc loc = Loc::current());  // one dim may be -1
Tensor transpose(Tensor x, std::vector<int64_t> perm = {}, Loc loc = Loc::current());  // default: reverse
Tensor broadcastTo(Tensor x, Shape shape, Loc loc = Loc::current());

// ---- contractions, softmax, losses ----
Tensor matmul(Tensor a, Tensor b, bool transA = false, bool transB = false, Loc loc = Loc::current());
Tensor logSoftmax(Tensor x, int64_t axis = -1, Loc loc = Loc::current());
Tensor softmax(Tensor x, int64_t axis = -1, Loc loc = Loc::current());
Tensor oneHot(Tensor indices, int64_t depth, Loc loc = Loc::current());
// Per-example loss -log softmax(logits)[label]: logits f32[N,C], labels i32[N] -> f32[N].
Tensor softmaxCrossEntropy(Tensor logits, Tensor labels, Loc loc = Loc::current());

}  // namespace kiln
