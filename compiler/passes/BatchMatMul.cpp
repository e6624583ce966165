// batch: turns the many small matmuls of an unrolled loop into a few large
// ones (see docs/passes.md, "batch").
//
//  (a) a tree of adds (internal adds read once, by the next add) whose leaves
//      include >= kBatchMinGroup matmuls read only there, with equal ta/tb and
//      equal operand shapes: sum_i op(A_i) op(B_i) is one matmul of the
//      operands joined along the contraction axis,
//      op(concat A) op(concat B). Other leaves stay in the tree. The same
//      tree may also hold scatter_adds into one table shape (sum_i
//      scatter_add(S_i, I_i) = scatter_add(concat S, concat I)) and sums
//      over axis 0 (sum_i sum(X_i) = sum(concat X)), each joined the same
//      way. These rewrites only drop dependencies, so they never make a
//      cycle.
//  (b) >= kBatchMinGroup matmuls matmul(A_i, B) with ta = 0, one B and tb, one A
//      shape, none reaching another: one matmul of the A_i stacked by rows,
//      sliced back. Every member's consumers now wait for every A_i, which is
//      only acyclic when no member reaches another, so members are chosen as
//      an antichain by one forward sweep per group, and groups are applied
//      one at a time, each on the graph the previous one left.
//  (c) >= kBatchMinGroup matmuls of at most kGemmInPlaceRows rows reading one
//      2-D B transposed (tb = 1), as an unrolled recurrence's backward pass
//      reads its weight: one transpose(B), which they read untransposed.
//      The GEMM packs a transposed B on every call but reads an
//      untransposed one in place at these sizes, so the transposition is
//      paid once instead of per step. The products are unchanged (same
//      fused multiply-adds in the same order).
//  (d) >= kBatchMinGroup matmuls concat(P_1 .. P_k, axis 1) · B (ta = tb = 0)
//      that hold one part at the same columns and share B, as a decoder
//      reads a context vector in every step: each becomes
//      Σ_i P_i · B[rows of P_i], and the product of the shared part is one
//      node for all of them (computed once). Runs first, so the per-part
//      products can be stacked by (b).
//
// Results change only by f32 reassociation: the joined matmul and sums add
// the same products in another order. New nodes are placed by a topological
// sort that keeps the old order where it can (each new node right after its
// last operand), and the values no entry point needs any more are dropped.
// Concats are shared: one with the same operands is reused, and a group
// whose operands another concat already joins (in some order) takes that
// order, so e.g. the hidden states of every step are copied once.
#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include "Passes.h"
#include "Rewrite.h"

namespace kiln::passes {
namespace {

using ir::Node;
using ir::OpKind;
using ir::Shape;
using ir::TensorType;
using ir::ValueId;

int64_t intAttr(const Node& n, const char* key) { return n.attrs.getInt(key, 0); }

// Live values, and who reads each (count; the reader when there is one).
// Entry-point outputs and update values count as a read from outside.
struct Uses {
  std::vector<bool> live;
  std::vector<int32_t> count;
  std::vector<ValueId> user;
};

Uses countUses(const ir::Graph& g) {
  std::vector<ValueId> roots;
  for (const ir::Function& f : g.functions())
    for (ValueId v : ir::functionRoots(f)) roots.push_back(v);
  for (ValueId v = 0; v < g.size(); ++v)
    if (ir::isSource(g.node(v).op)) roots.push_back(v);
  Uses u{ir::ancestors(g, roots), std::vector<int32_t>(static_cast<size_t>(g.size()), 0),
         std::vector<ValueId>(static_cast<size_t>(g.size()), -1)};
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!u.live[v]) continue;
    for (ValueId o : g.node(v).operands) {
      ++u.count[o];
      u.user[o] = v;
    }
  }
  for (const ir::Function& f : g.functions()) {
    for (const ir::Output& o : f.outputs) ++u.count[o.value], u.user[o.value] = -1;
    for (const ir::Update& up : f.updates) ++u.count[up.value], u.user[up.value] = -1;
  }
  return u;
}

// --- (a) sums of matmuls, scatter_adds and axis-0 sums -------------------

// What leaves must share to be joined: a kind and the shapes and attributes
// that make the joined op the sum of the separate ones.
struct LeafKey {
  int kind = 0;  // 0 matmul, 1 scatter_add, 2 sum over axis 0 (3: the same under a reshape)
  int64_t ta = 0, tb = 0;
  Shape s0, s1, s2;
  std::vector<int64_t> axes;
  auto tie() const { return std::tie(kind, ta, tb, s0, s1, s2, axes); }
  bool operator<(const LeafKey& o) const { return tie() < o.tie(); }
};

std::optional<LeafKey> leafKey(const ir::Graph& g, const Uses& u, ValueId v) {
  if (u.count[v] != 1) return std::nullopt;
  const Node& n = g.node(v);
  if (n.type.dtype != ir::DType::F32) return std::nullopt;
  auto sumKey = [&](const Node& s, int kind) -> std::optional<LeafKey> {
    const TensorType& x = g.type(s.operands[0]);
    const auto& axes = s.attrs.getInts("axes");
    if (x.rank() < 1 || axes.empty() || axes[0] != 0) return std::nullopt;
    LeafKey k{kind, intAttr(s, "keep"), 0, x.shape, s.type.shape, {}, axes};
    if (kind == 3) k.s2 = n.type.shape;
    return k;
  };
  switch (n.op) {
    case OpKind::MatMul: {
      const TensorType &a = g.type(n.operands[0]), &b = g.type(n.operands[1]);
      if (a.rank() != 2 || b.rank() != 2) return std::nullopt;
      return LeafKey{0, intAttr(n, "ta") != 0, intAttr(n, "tb") != 0, a.shape, b.shape, {}, {}};
    }
    case OpKind::ScatterAdd: {
      const TensorType &s = g.type(n.operands[0]), &i = g.type(n.operands[1]);
      if (i.rank() < 1) return std::nullopt;
      return LeafKey{1, 0, 0, s.shape, i.shape, n.type.shape, {}};
    }
    case OpKind::Sum: return sumKey(n, 2);
    case OpKind::Reshape: {
      ValueId s = n.operands[0];
      if (g.node(s).op != OpKind::Sum || u.count[s] != 1) return std::nullopt;
      return sumKey(g.node(s), 3);
    }
    default: return std::nullopt;
  }
}

// Orders `leaves` like an existing concat of the values `joined(leaf)`, if
// one exists, so the concat this group needs is that one.
template <class F>
void adoptOrder(const Editor& ed, std::vector<ValueId>& leaves, int64_t axis, F joined) {
  std::vector<ValueId> ops;
  for (ValueId l : leaves) ops.push_back(ed.resolve(joined(l)));
  auto order = ed.concatOrder(ops, axis);
  if (!order) return;
  std::map<ValueId, ValueId> leafOf;
  for (ValueId l : leaves) leafOf[ed.resolve(joined(l))] = l;
  for (size_t i = 0; i < leaves.size(); ++i) leaves[i] = leafOf.at((*order)[i]);
}

// The one op that computes the sum of `leaves` (all with key k).
ValueId joinLeaves(Editor& ed, const LeafKey& k, std::vector<ValueId> leaves) {
  auto operand = [&ed](size_t i) { return [&ed, i](ValueId l) { return ed.node(l).operands[i]; }; };
  auto inner = [&ed](ValueId l) { return ed.node(ed.node(l).operands[0]).operands[0]; };  // reshape(sum(x)) -> x
  // the contraction axis: A is [M,K] (ta = 0) or [K,M]; B is [K,N] (tb = 0) or [N,K]
  int64_t axisA = k.ta ? 0 : 1, axisB = k.tb ? 1 : 0;
  if (k.kind == 0) {
    adoptOrder(ed, leaves, axisB, operand(1));
    adoptOrder(ed, leaves, axisA, operand(0));
  } else if (k.kind == 3) {
    adoptOrder(ed, leaves, 0, inner);
  } else {
    adoptOrder(ed, leaves, 0, operand(0));
  }
  const Node first = ed.node(leaves[0]);  // a copy: adding nodes moves them
  auto joined = [&](size_t i, int64_t axis) {
    std::vector<ValueId> ops;
    for (ValueId l : leaves) ops.push_back(k.kind == 3 ? inner(l) : ed.node(l).operands[i]);
    return ed.concat(ops, axis, first.loc);
  };
  Node n;
  n.loc = first.loc;
  n.type = first.type;
  switch (k.kind) {
    case 0:
      n.op = OpKind::MatMul;
      n.attrs = first.attrs;
      n.operands = {joined(0, axisA), joined(1, axisB)};
      return ed.add(std::move(n));
    case 1:
      n.op = OpKind::ScatterAdd;
      n.operands = {joined(0, 0), joined(1, 0)};
      return ed.add(std::move(n));
    case 2:
      n = first;
      n.operands = {joined(0, 0)};
      return ed.add(std::move(n));
    default: {
      Node s = ed.node(first.operands[0]);
      s.operands = {joined(0, 0)};
      n.op = OpKind::Reshape;
      n.operands = {ed.add(std::move(s))};
      return ed.add(std::move(n));
    }
  }
}

bool joinSums(ir::Graph& g) {
  Uses u = countUses(g);
  auto internal = [&](ValueId v) {
    return g.node(v).op == OpKind::Add && u.count[v] == 1 && u.user[v] >= 0 && g.node(u.user[v]).op == OpKind::Add;
  };
  Editor ed(g);
  bool changed = false;
  for (ValueId root = 0; root < g.size(); ++root) {
    const Node& r = g.node(root);
    if (!u.live[root] || r.op != OpKind::Add || r.type.dtype != ir::DType::F32 || internal(root)) continue;
    std::vector<ValueId> leaves, stack{root};
    while (!stack.empty()) {
      ValueId a = stack.back();
      stack.pop_back();
      for (ValueId o : g.node(a).operands) (internal(o) ? stack : leaves).push_back(o);
    }
    if (leaves.size() < kBatchMinGroup) continue;
    std::sort(leaves.begin(), leaves.end());
    std::map<LeafKey, std::vector<ValueId>> groups;
    for (ValueId l : leaves)
      if (auto k = leafKey(g, u, l)) groups[*k].push_back(l);
    std::map<ValueId, ValueId> joinedAt;  // first leaf of a joined group -> the joined op
    std::vector<bool> gone(static_cast<size_t>(g.size()), false);
    for (const auto& [k, members] : groups) {
      if (members.size() < kBatchMinGroup) continue;
      joinedAt[members[0]] = joinLeaves(ed, k, members);
      for (ValueId m : members) gone[m] = true;
    }
    if (joinedAt.empty()) continue;
    changed = true;
    ValueId acc = -1;
    for (ValueId l : leaves) {
      auto it = joinedAt.find(l);
      if (gone[l] && it == joinedAt.end()) continue;
      acc = ed.sum(acc, it != joinedAt.end() ? it->second : l, r.type, r.loc);
    }
    ed.replace(root, acc);
  }
  return changed && ed.commit(g);
}

// --- (b) independent matmuls sharing their right operand -------------------

// Applies the first group that has an antichain of >= kBatchMinGroup members;
// false when none has.
bool stackOneGroup(ir::Graph& g) {
  Uses u = countUses(g);
  using Key = std::tuple<ValueId, int64_t, Shape>;  // B, tb, A's shape
  std::map<Key, std::vector<ValueId>> groups;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (!u.live[v] || n.op != OpKind::MatMul || intAttr(n, "ta") != 0) continue;
    const TensorType& a = g.type(n.operands[0]);
    if (a.rank() != 2 || g.type(n.operands[1]).rank() != 2) continue;
    groups[{n.operands[1], intAttr(n, "tb") != 0, a.shape}].push_back(v);
  }
  std::vector<char> member(static_cast<size_t>(g.size()), 0), reached(static_cast<size_t>(g.size()), 0);
  for (const auto& [key, members] : groups) {
    if (members.size() < kBatchMinGroup) continue;
    // one forward sweep: a member is taken unless a taken member reaches it
    for (ValueId m : members) member[m] = 1;
    std::vector<ValueId> chosen;
    for (ValueId v = members[0]; v < g.size(); ++v) {
      bool r = false;
      for (ValueId o : g.node(v).operands) r = r || (o >= members[0] && reached[o]);
      if (member[v] && !r) chosen.push_back(v), r = true;
      reached[v] = r;
    }
    for (ValueId m : members) member[m] = 0;
    std::fill(reached.begin() + members[0], reached.end(), 0);
    if (chosen.size() < kBatchMinGroup) continue;

    Editor ed(g);
    std::vector<ValueId> as;
    for (ValueId m : chosen) as.push_back(g.node(m).operands[0]);
    if (auto order = ed.concatOrder(as, 0)) {
      std::map<ValueId, ValueId> memberOf;
      for (ValueId m : chosen) memberOf[g.node(m).operands[0]] = m;
      for (size_t i = 0; i < chosen.size(); ++i) chosen[i] = memberOf.at((*order)[i]);
      as = *order;
    }
    const Node& first = g.node(chosen[0]);
    int64_t rows = g.type(first.operands[0]).shape[0];
    Node mm = first;
    mm.operands = {ed.concat(as, 0, first.loc), first.operands[1]};
    mm.type.shape[0] = rows * static_cast<int64_t>(chosen.size());
    ValueId big = ed.add(std::move(mm));
    for (size_t i = 0; i < chosen.size(); ++i) {
      int64_t r0 = rows * static_cast<int64_t>(i);
      ed.replace(chosen[i], ed.rows(big, r0, r0 + rows, g.node(chosen[i]).loc));
    }
    return ed.commit(g);
  }
  return false;
}

// --- (c) a transposed right operand shared by products of few rows --------

bool transposeShared(ir::Graph& g) {
  Uses u = countUses(g);
  std::map<ValueId, std::vector<ValueId>> readers;  // B -> the matmuls reading it transposed
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (!u.live[v] || !isFewRowsProduct(n) || intAttr(n, "tb") == 0 || g.type(n.operands[1]).rank() != 2) continue;
    readers[n.operands[1]].push_back(v);
  }
  Editor ed(g);
  bool changed = false;
  for (const auto& [b, members] : readers) {
    if (members.size() < kBatchMinGroup) continue;
    Node t;
    t.op = OpKind::Transpose;
    t.operands = {b};
    t.attrs.set("perm", std::vector<int64_t>{1, 0});
    t.type = g.type(b);
    std::swap(t.type.shape[0], t.type.shape[1]);
    t.loc = g.node(members[0]).loc;
    ValueId bt = ed.add(std::move(t));
    for (ValueId m : members) {
      Node mm = g.node(m);
      mm.operands[1] = bt;
      mm.attrs.set("tb", int64_t{0});
      ed.replace(m, ed.add(std::move(mm)));
    }
    changed = true;
  }
  return changed && ed.commit(g);
}

// --- (d) products of concats with a part in common ----------------------

bool splitSharedConcat(ir::Graph& g) {
  Uses u = countUses(g);
  using Key = std::tuple<ValueId, ValueId, int64_t>;  // part, B, the part's first column
  std::map<Key, std::vector<ValueId>> byPart;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (!u.live[v] || n.op != OpKind::MatMul || intAttr(n, "ta") != 0 || intAttr(n, "tb") != 0 ||
        n.type.rank() != 2 || g.type(n.operands[1]).rank() != 2)
      continue;
    const Node& a = g.node(n.operands[0]);
    if (a.op != OpKind::Concat || intAttr(a, "axis") != 1 || a.type.rank() != 2) continue;
    int64_t col = 0;
    for (ValueId part : a.operands) {
      byPart[{part, n.operands[1], col}].push_back(v);
      col += g.type(part).shape[1];
    }
  }
  std::vector<ValueId> split;
  for (const auto& [key, members] : byPart)
    if (members.size() >= kBatchMinGroup) split.insert(split.end(), members.begin(), members.end());
  std::sort(split.begin(), split.end());
  split.erase(std::unique(split.begin(), split.end()), split.end());
  if (split.empty()) return false;
  Editor ed(g);
  std::map<std::tuple<ValueId, int64_t, int64_t>, ValueId> slices;  // rows of B
  std::map<std::pair<ValueId, ValueId>, ValueId> products;          // part, rows of B
  for (ValueId m : split) {
    const Node& n = g.node(m);
    const Node& a = g.node(n.operands[0]);
    ValueId b = n.operands[1];
    int64_t row = 0;
    ValueId acc = -1;
    for (ValueId part : a.operands) {
      int64_t w = g.type(part).shape[1];
      auto [si, newSlice] = slices.try_emplace({b, row, row + w}, -1);
      if (newSlice) si->second = ed.rows(b, row, row + w, n.loc);
      auto [pi, newProduct] = products.try_emplace({part, si->second}, -1);
      if (newProduct) {
        Node mm = n;
        mm.operands = {part, si->second};
        pi->second = ed.add(std::move(mm));
      }
      acc = ed.sum(acc, pi->second, n.type, n.loc);
      row += w;
    }
    ed.replace(m, acc);
  }
  return ed.commit(g);
}

}  // namespace

bool runBatch(ir::Graph& g) {
  bool changed = splitSharedConcat(g);
  changed = joinSums(g) || changed;
  while (stackOneGroup(g)) changed = true;
  return transposeShared(g) || changed;
}

}  // namespace kiln::passes
