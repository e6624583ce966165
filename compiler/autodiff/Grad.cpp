// Reverse-mode autodiff: walks the graph backwards from the loss, calls each
// op's VJP rule, and sums gradients where a value fans out.
#include "Grad.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/Text.h"

namespace kiln {

using ir::ValueId;

std::vector<Tensor> grad(Tensor loss, const std::vector<Tensor>& wrt, Loc loc) {
  Graph& g = loss.graph();
  ir::SourceLoc where = g.locOf(loc);
  auto fail = [&](const std::string& msg) { throw Error(fmt::format("{}: grad: {}", where.str(), msg)); };
  if (loss.dtype() != DType::F32 || loss.rank() != 0)
    fail(fmt::format("the loss must be a scalar f32, got {} (reduce it with sum or mean)", ir::typeStr(loss.type())));
  for (const Tensor& w : wrt)
    if (&w.graph() != &g) fail("a wrt tensor belongs to another graph");

  const ir::Graph& ir = g.ir();
  const ValueId end = loss.id() + 1;  // nodes after the loss cannot affect it
  // relevant = depends on some wrt value and the loss depends on it
  std::vector<bool> fromWrt(static_cast<size_t>(end), false);
  for (const Tensor& w : wrt)
    if (w.id() < end) fromWrt[w.id()] = true;
  for (ValueId v = 0; v < end; ++v)
    for (ValueId o : ir.node(v).operands)
      if (fromWrt[o]) fromWrt[v] = true;
  std::vector<bool> toLoss = ir::ancestors(ir, {loss.id()});
  std::vector<bool> relevant(static_cast<size_t>(end));
  // Only f32 values carry gradients (i32 paths are indices and counters).
  for (ValueId v = 0; v < end; ++v) relevant[v] = fromWrt[v] && toLoss[v] && ir.type(v).dtype == DType::F32;

  std::vector<std::string> missing;
  for (ValueId v = 0; v < end; ++v)
    if (relevant[v] && autodiff::gradKind(ir.node(v).op) == autodiff::GradKind::Missing)
      missing.push_back(ir::describeValue(ir, v));
  if (!missing.empty())
    fail(fmt::format("no gradient rule yet for {} op(s) on the path from the parameters to the loss:\n  {}",
                     missing.size(), fmt::join(missing, "\n  ")));

  std::vector<Tensor> adj(static_cast<size_t>(end));
  adj[loss.id()] = g.constant(1.0, {}, DType::F32, loc);
  for (ValueId v = end - 1; v >= 0; --v) {
    if (!relevant[v] || !adj[v].valid()) continue;
    const ir::Node node = ir.node(v);  // copy: rules append to the node list
    if (autodiff::gradKind(node.op) != autodiff::GradKind::Rule) continue;
    autodiff::VjpArgs args{g, node, {}, g.tensor(v), adj[v]};
    for (ValueId o : node.operands) args.in.push_back(g.tensor(o));
    g.setLocOverride(node.loc);
    std::vector<Tensor> grads = autodiff::vjpRule(node.op)(args);
    g.clearLocOverride();
    if (grads.size() != node.operands.size())
      throw Error(fmt::format("internal: the {} rule returned {} gradients for {} operands", ir::opName(node.op),
                              grads.size(), node.operands.size()));
    for (size_t k = 0; k < grads.size(); ++k) {
      ValueId o = node.operands[k];
      if (!grads[k].valid() || !relevant[o]) continue;
      if (grads[k].type() != ir.type(o))
        throw Error(fmt::format("internal: the {} rule gave operand {} a gradient of type {}, expected {}",
                                ir::opName(node.op), k, ir::typeStr(grads[k].type()), ir::typeStr(ir.type(o))));
      // fan-out: gradients of a value read several times add up
      adj[o] = adj[o].valid() ? add(adj[o], grads[k], loc) : grads[k];
    }
  }

  std::vector<Tensor> out;
  for (const Tensor& w : wrt) {
    if (w.id() < end && adj[w.id()].valid()) out.push_back(adj[w.id()]);
    else out.push_back(g.constant(0.0, w.shape(), DType::F32, loc));
  }
  return out;
}

}  // namespace kiln
