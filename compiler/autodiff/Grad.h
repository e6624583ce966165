// Reverse-mode autodiff, graph to graph: adds the gradient values of a
// scalar loss with respect to chosen values to the same graph.
#pragma once

#include <vector>

#include "ir/Builder.h"

namespace kiln {

// d(loss)/d(wrt[i]) for each i, as new values in loss's graph. `loss` must
// be a scalar f32. A value that feeds several consumers gets the sum of their
// gradients. A wrt value the loss does not depend on gets a zero gradient.
// Throws listing every op on the path that has no gradient rule yet.
std::vector<Tensor> grad(Tensor loss, const std::vector<Tensor>& wrt, Loc loc = Loc::current());

}  // namespace kiln

namespace kiln::autodiff {

// What a VJP rule sees: the forward node, its operands and result as
// tensors, and the incoming gradient dy (same type as the result).
struct VjpArgs {
  Graph& g;
  const ir::Node& node;
  std::vector<Tensor> in;
  Tensor out;
  Tensor dy;
};
// One gradient per operand; an empty Tensor means no gradient flows there.
using VjpFn = std::vector<Tensor> (*)(const VjpArgs&);

enum class GradKind { Rule, None, Missing };
GradKind gradKind(ir::OpKind op);
VjpFn vjpRule(ir::OpKind op);

}  // namespace kiln::autodiff
