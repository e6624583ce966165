// Fusion decisions (see Fusion.h for the rules).
#include "Fusion.h"

#include <algorithm>

namespace kiln::passes {

using ir::FamilyKind;
using ir::OpKind;
using ir::ValueId;

bool evaluatesOperandsByIndex(OpKind op) {
  switch (ir::opFamily(op)) {
    case FamilyKind::Map:
    case FamilyKind::Reduce:
    case FamilyKind::Broadcast:
    case FamilyKind::Transpose:
    case FamilyKind::Copy: return true;
    default: return false;
  }
}

namespace {

bool isIndexOp(OpKind op) {
  FamilyKind f = ir::opFamily(op);
  return f == FamilyKind::Broadcast || f == FamilyKind::Transpose || f == FamilyKind::Copy;
}

// A gather reads its table row by the index at each position: consumers
// can evaluate it at any index (an embedding lookup read by one step's
// activation), reading the index once per element of the row.
bool isGather(const ir::Graph& g, ValueId v) { return g.node(v).op == OpKind::Gather; }

// A scatter_along with one index per slice (idx's extent along the axis is
// 1): element j of a slice is src's element if idx says j, else 0, so its
// consumers can evaluate it at any index from idx and src (the gradient of
// a take_along, read by the softmax cross-entropy's gradient). It reads
// src's element once per position along the axis.
bool isOneHotScatter(const ir::Graph& g, ValueId v) {
  const ir::Node& n = g.node(v);
  if (n.op != OpKind::ScatterAlong) return false;
  const ir::Shape& idx = g.type(n.operands[1]).shape;
  int64_t axis = n.attrs.getInt("axis");
  return axis >= 0 && axis < static_cast<int64_t>(idx.size()) && idx[static_cast<size_t>(axis)] == 1;
}

// Does consumer c evaluate each element of its operand at most once?
bool readsEachOnce(OpKind c) {
  FamilyKind f = ir::opFamily(c);
  return f == FamilyKind::Map || f == FamilyKind::Reduce || f == FamilyKind::Transpose || f == FamilyKind::Copy;
}

// The root of the kernel that would run product v (a matmul, or a conv2d
// whose per-image GEMMs take the epilogue) as a GEMM with an epilogue, or
// -1: v is an f32 product (a matmul's 2-D) read by exactly one consumer, and
// that consumer and every value from it up to the kernel's root is an
// elementwise map of v's shape read by one consumer (so every element of v
// is read once, at its own index, and the root writes a buffer of v's
// shape that can hold C until the epilogue overwrites it element by
// element). Consumers are decided first, so inlined[] is final above v.
// Not when the root is an update's value: its kernel could otherwise write
// the updated buffer in place (an optimizer's state), which C would clobber
// before the epilogue reads the old value, and it runs in a fused loop with
// the parameter's update.
ValueId epilogueRoot(const ir::Graph& g, const std::vector<std::vector<ValueId>>& users,
                     const std::vector<bool>& inlined, const std::vector<bool>& updateValue, ValueId v) {
  const ir::TensorType& t = g.type(v);
  const bool conv = g.node(v).op == OpKind::Conv2d;
  if ((!conv && t.shape.size() != 2) || t.dtype != ir::DType::F32 || users[v].size() != 1) return -1;
  ValueId x = users[v][0];
  for (;;) {
    const ir::Node& xn = g.node(x);
    if (ir::opFamily(xn.op) != FamilyKind::Map || xn.type != t) return -1;
    if (!inlined[x]) return updateValue[x] ? -1 : x;
    if (users[x].size() != 1) return -1;
    x = users[x][0];
  }
}

}  // namespace

std::vector<bool> chooseInlined(const ir::Graph& g, const std::vector<bool>& candidate) {
  const size_t n = static_cast<size_t>(g.size());
  std::vector<std::vector<ValueId>> users(n);
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId o : g.node(v).operands)
      if (users[o].empty() || users[o].back() != v) users[o].push_back(v);
  std::vector<bool> pinned(n, false), updateValue(n, false);  // must have a buffer; an update's new value
  for (const ir::Function& f : g.functions()) {
    for (const ir::Output& o : f.outputs) pinned[o.value] = true;
    for (const ir::Update& u : f.updates) pinned[u.value] = updateValue[u.value] = true;
  }
  std::vector<bool> inlined(n, false), freeV(n, false);
  std::vector<bool> hasProduct(n, false);  // a kernel root that already runs a product's epilogue
  // Decide consumers before producers (reverse id order), since whether a
  // value can be inlined depends on how its consumers are computed.
  for (ValueId v = g.size(); v-- > 0;) {
    const ir::Node& node = g.node(v);
    if (ir::isSource(node.op) || pinned[v] || users[v].empty()) continue;
    if (!candidate.empty() && !candidate[v]) continue;
    if (node.op == OpKind::MatMul || node.op == OpKind::Conv2d) {
      if (ValueId root = epilogueRoot(g, users, inlined, updateValue, v); root >= 0 && !hasProduct[root]) {
        inlined[v] = true;
        hasProduct[root] = true;
      }
      continue;
    }
    FamilyKind fam = ir::opFamily(node.op);
    bool fill = fam == FamilyKind::Fill, map = fam == FamilyKind::Map,
         index = isIndexOp(node.op) || isOneHotScatter(g, v) || isGather(g, v);
    if (!fill && !map && !index) continue;
    // every consumer must evaluate v through a generator (its own kernel or
    // an inlined value inside one)
    bool allGen = std::all_of(users[v].begin(), users[v].end(),
                              [&](ValueId u) { return evaluatesOperandsByIndex(g.node(u).op); });
    if (!allGen) continue;
    if (fill) {
      inlined[v] = true;
      continue;
    }
    if (index) {
      // free when what it reads is free or materialized; decided after its
      // operand, so assume free here and fix up below
      inlined[v] = true;
      continue;
    }
    // a computation: one consumer that reads each element once
    if (users[v].size() == 1 && readsEachOnce(g.node(users[v][0]).op)) inlined[v] = true;
  }
  // repeated[v]: an inlined index op whose elements are evaluated more than
  // once per kernel (it broadcasts, has several users, or feeds one that
  // does). A computation under such an op would be recomputed, so it is
  // materialized instead. Users have higher ids, so one reverse pass works.
  std::vector<bool> repeated(n, false);
  for (ValueId v = g.size(); v-- > 0;) {
    if (!inlined[v] || !(isIndexOp(g.node(v).op) || isOneHotScatter(g, v) || isGather(g, v))) continue;
    bool r = ir::opFamily(g.node(v).op) == FamilyKind::Broadcast || isOneHotScatter(g, v) || isGather(g, v) ||
             users[v].size() > 1;
    for (ValueId u : users[v])
      r = r || !readsEachOnce(g.node(u).op) || repeated[u];
    repeated[v] = r;
    for (ValueId o : g.node(v).operands)
      if (r && inlined[o] && ir::opFamily(g.node(o).op) == FamilyKind::Map) inlined[o] = false;
  }
  return inlined;
}

std::vector<bool> fusedMarks(const ir::Graph& g) {
  std::vector<bool> m(static_cast<size_t>(g.size()), false);
  for (ValueId v = 0; v < g.size(); ++v) m[v] = g.node(v).attrs.getInt(kFusedAttr, 0) != 0;
  return m;
}

// fuse: marks every value the rules let its consumers compute (`fused = 1`)
// and clears stale marks; lowering then gives those values no kernel.
bool runFuse(ir::Graph& g) {
  std::vector<bool> want = chooseInlined(g);
  bool changed = false;
  for (ValueId v = 0; v < g.size(); ++v) {
    ir::Node& n = g.node(v);
    bool has = n.attrs.has(kFusedAttr);
    if (want[v] && !has) {
      n.attrs.set(kFusedAttr, int64_t(1));
      changed = true;
    } else if (!want[v] && has) {
      n.attrs.erase(kFusedAttr);
      changed = true;
    }
  }
  return changed;
}

std::vector<ValueId> kernelInputs(const ir::Graph& g, ValueId root, const std::vector<bool>& inlined) {
  std::vector<ValueId> out;
  std::vector<ValueId> stack(g.node(root).operands.rbegin(), g.node(root).operands.rend());
  std::vector<ValueId> seen;
  while (!stack.empty()) {
    ValueId v = stack.back();
    stack.pop_back();
    if (inlined[v]) {
      const auto& ops = g.node(v).operands;
      for (auto it = ops.rbegin(); it != ops.rend(); ++it) stack.push_back(*it);
      continue;
    }
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

}  // namespace kiln::passes
