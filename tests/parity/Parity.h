// The vocabulary of the PyTorch parity cases: a case builds a small graph
// with the DSL and returns its outputs; kiln_parity_dump fills its sources,
// computes outputs and gradients with kiln and writes them for check.py.
#pragma once

#include <kiln/kiln.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

namespace kiln::parity {

// How a source is filled: f32 uniform in [lo, hi), or i32 labels uniform in
// [0, classes) when classes > 0.
struct Range {
  float lo = -1.0f, hi = 1.0f;
  int32_t classes = 0;
};

// Makes a case's leaves and records the range each is filled from. Sources a
// case makes otherwise (the params of a Linear) keep their init(seed) values.
class Leaves {
public:
  explicit Leaves(Graph& g) : g_(g) {}
  // An f32 input named in0, in1, ...
  Tensor operator()(Shape s, float lo = -1.0f, float hi = 1.0f, Loc loc = Loc::current());
  // An i32 input of labels in [0, classes).
  Tensor labels(Shape s, int32_t classes, Loc loc = Loc::current());
  // An f32 param named p0, p1, ...
  Tensor param(Shape s, float lo = -1.0f, float hi = 1.0f, Loc loc = Loc::current());
  const std::map<ir::ValueId, Range>& ranges() const { return ranges_; }

private:
  Graph& g_;
  std::map<ir::ValueId, Range> ranges_;
  int inputs_ = 0, params_ = 0;
};

// A case's outputs: one tensor (named y) or several (y0, y1, ...).
struct Outs {
  std::vector<Tensor> ts;
  Outs(Tensor t) : ts{t} {}
  Outs(std::initializer_list<Tensor> l) : ts(l) {}
};

struct Case {
  std::string name;  // CTest runs it as parity.<name>
  std::function<Outs(Graph&, Leaves&)> build;
  // Check gradients of sum(out * cotangent) wrt every f32 input and param.
  // False only where kiln has no gradient rule yet.
  bool grad = true;
  // Tolerance override (0 = check.py's default), for cases whose error
  // grows with size, such as long sums.
  double rtol = 0, atol = 0;
};

const std::vector<Case>& cases();

}  // namespace kiln::parity
