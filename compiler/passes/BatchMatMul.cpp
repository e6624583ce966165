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
//      that share B and either hold one part at the same columns (a decoder
//      reading a context vector in every step) or have one column layout (an
//      encoder's [x_t, h]): each becomes Σ_i P_i · B[rows of P_i], and the
//      product of a shared part is one node for all of them (computed
//      once). Runs early, so the per-part products can be stacked by (b)
//      and only the recurrent part stays in the chain.
//  (f) >= kBatchMinGroup products sharing B that are read only through
//      non-overlapping column slices (the backward pass of concat(x, h) · W
//      reads dx and dh out of dz · Wᵀ): one product per slice, with those
//      columns of op(B) (rows of B when tb = 1, a view), cut once for the
//      group. Runs first: the per-slice products are then summed (a) or
//      stacked (b) like any others.
//  (a) also factors: when every matmul leaf of a group reads the same B
//      (or the same A), sum_i op(A_i) op(B) is op(sum_i A_i) op(B), one
//      product (a decoder's context gradient, summed over the steps); and
//      when every leaf is ta = 1 with A a concat along axis 1 of one column
//      layout (the weight gradient of concat(x_t, h) · W), the sum is the
//      concat along rows of each part's own sum, so no step's concat is
//      needed for it.
//  (g) C = Aᵀ B with N a few columns past a multiple of 32 and M a
//      multiple of 32 (a weight gradient into 65 classes): transpose(Bᵀ A),
//      bit-identical, whose GEMM has no narrow tail panel.
//  (e) concats along rows whose operand lists are windows of one sequence
//      (x[s ..] a prefix of y, or y inside x), overlapping in at least
//      kBatchMinGroup operands, as an RNN's states h_1..h_T and h_0..h_(T-1)
//      are: one concat of the whole sequence, each window a row slice of
//      it at a 64-byte multiple (so a view), the operands written once, in
//      place. Not when an operand of one window depends on the other (a
//      cycle). Runs last, on the concats (a) and (b) made.
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
// The widths of the parts of A when every leaf's A is a concat along axis
// 1 of parts of those widths (ta = 1: the parts are row blocks of the sum).
std::optional<std::vector<int64_t>> partWidths(const Editor& ed, const std::vector<ValueId>& leaves) {
  std::optional<std::vector<int64_t>> widths;
  for (ValueId l : leaves) {
    const Node& a = ed.node(ed.resolve(ed.node(l).operands[0]));
    if (a.op != OpKind::Concat || intAttr(a, "axis") != 1) return std::nullopt;
    std::vector<int64_t> w;
    for (ValueId p : a.operands) w.push_back(ed.node(ed.resolve(p)).type.shape[1]);
    if (widths && *widths != w) return std::nullopt;
    widths = std::move(w);
  }
  return widths;
}

ValueId joinLeaves(Editor& ed, const LeafKey& k, std::vector<ValueId> leaves) {
  if (k.kind == 0 && k.ta) {
    if (auto widths = partWidths(ed, leaves)) {
      // sum_t concat(P_t1 .. P_tk, axis 1)ᵀ op(D_t) = concat over parts m of
      // sum_t P_tmᵀ op(D_t), rows stacked: a weight gradient of
      // concat(x, h) · W is its x rows and its h rows, each summed on its
      // own (factored where every step reads one value, as a decoder's
      // context), and no step's concat is needed for it
      std::vector<ValueId> blocks;
      for (size_t m = 0; m < widths->size(); ++m) {
        std::vector<ValueId> part;
        LeafKey km = k;
        for (ValueId l : leaves) {
          Node mm = ed.node(l);
          ValueId p = ed.node(ed.resolve(mm.operands[0])).operands[m];
          mm.operands[0] = p;
          mm.type.shape[0] = (*widths)[m];
          km.s0 = ed.node(ed.resolve(p)).type.shape;
          part.push_back(ed.add(std::move(mm)));
        }
        blocks.push_back(joinLeaves(ed, km, part));
      }
      return ed.concat(blocks, 0, ed.node(leaves[0]).loc);
    }
  }
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
  for (size_t shared : {1u, 0u}) {
    if (k.kind != 0 || !std::all_of(leaves.begin(), leaves.end(), [&](ValueId l) {
          return ed.resolve(ed.node(l).operands[shared]) == ed.resolve(first.operands[shared]);
        }))
      continue;
    // one B (or one A) for all: sum_i op(A_i) op(B) = op(sum_i A_i) op(B),
    // one product instead of one as deep as all of them
    const size_t other = 1 - shared;
    ValueId acc = -1;
    for (ValueId l : leaves) {
      ValueId x = ed.node(l).operands[other];
      acc = ed.sum(acc, x, ed.node(ed.resolve(x)).type, first.loc);
    }
    Node n = first;
    n.operands[other] = acc;
    return ed.add(std::move(n));
  }
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

// --- (f) products read only through column slices -----------------------

// A 2-D product whose every reader is a slice of whole rows and a run of
// columns, as the backward pass of `concat(x, h) · W` reads dx and dh out
// of one `dz · Wᵀ`: one product per slice, of op(B)'s columns, which for
// tb = 1 are a row slice of B (a view). Only for groups of at least
// kBatchMinGroup products sharing B, so each column block of B is cut once
// for all; slices must not overlap (no column is computed twice).
bool splitColumnSlicedProducts(ir::Graph& g) {
  Uses u = countUses(g);
  std::vector<std::vector<ValueId>> readers(static_cast<size_t>(g.size()));
  for (ValueId v = 0; v < g.size(); ++v)
    if (u.live[v])
      for (ValueId o : g.node(v).operands) readers[o].push_back(v);
  // column ranges [c0, c1) of the slices of v, if every read of v is one
  auto columnSlices = [&](ValueId v) -> std::optional<std::vector<std::pair<int64_t, int64_t>>> {
    const Node& n = g.node(v);
    if (readers[v].empty() || static_cast<int32_t>(readers[v].size()) != u.count[v]) return std::nullopt;
    std::vector<std::pair<int64_t, int64_t>> cols;
    for (ValueId r : readers[v]) {
      const Node& s = g.node(r);
      if (s.op != OpKind::Slice) return std::nullopt;
      const auto &b = s.attrs.getInts("begin"), &e = s.attrs.getInts("end"), &st = s.attrs.getInts("stride");
      if (b[0] != 0 || e[0] != n.type.shape[0] || st[0] != 1 || st[1] != 1) return std::nullopt;
      cols.emplace_back(b[1], e[1]);
    }
    std::sort(cols.begin(), cols.end());
    cols.erase(std::unique(cols.begin(), cols.end()), cols.end());
    for (size_t i = 1; i < cols.size(); ++i)
      if (cols[i].first < cols[i - 1].second) return std::nullopt;  // overlapping
    if (cols.size() == 1 && cols[0] == std::pair<int64_t, int64_t>{0, n.type.shape[1]}) return std::nullopt;
    return cols;
  };
  std::map<std::pair<ValueId, int64_t>, std::vector<ValueId>> byB;  // (B, tb) -> products
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (!u.live[v] || n.op != OpKind::MatMul || n.type.rank() != 2 || g.type(n.operands[1]).rank() != 2 ||
        !columnSlices(v))
      continue;
    byB[{n.operands[1], intAttr(n, "tb")}].push_back(v);
  }
  Editor ed(g);
  bool changed = false;
  std::map<std::tuple<ValueId, int64_t, int64_t>, ValueId> pieces;  // (B, c0, c1) -> op(B)'s columns
  for (const auto& [key, members] : byB) {
    if (members.size() < kBatchMinGroup) continue;
    auto [b, tb] = key;
    for (ValueId m : members) {
      const Node n = g.node(m);
      std::map<std::pair<int64_t, int64_t>, ValueId> productOf;
      const std::vector<std::pair<int64_t, int64_t>> cols = *columnSlices(m);
      for (auto [c0, c1] : cols) {
        auto [pi, fresh] = pieces.try_emplace({b, c0, c1}, -1);
        if (fresh) pi->second = tb ? ed.rows(b, c0, c1, n.loc) : ed.columns(b, c0, c1, n.loc);
        Node p = n;
        p.operands = {n.operands[0], pi->second};
        p.type.shape[1] = c1 - c0;
        productOf[{c0, c1}] = ed.add(std::move(p));
      }
      for (ValueId r : readers[m]) {
        const auto &b0 = g.node(r).attrs.getInts("begin"), &e0 = g.node(r).attrs.getInts("end");
        ed.replace(r, productOf.at({b0[1], e0[1]}));
      }
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
  std::map<std::pair<ValueId, std::vector<int64_t>>, std::vector<ValueId>> byLayout;  // B, the parts' widths
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (!u.live[v] || n.op != OpKind::MatMul || intAttr(n, "ta") != 0 || intAttr(n, "tb") != 0 ||
        n.type.rank() != 2 || g.type(n.operands[1]).rank() != 2)
      continue;
    const Node& a = g.node(n.operands[0]);
    if (a.op != OpKind::Concat || intAttr(a, "axis") != 1 || a.type.rank() != 2) continue;
    int64_t col = 0;
    std::vector<int64_t> widths;
    for (ValueId part : a.operands) {
      byPart[{part, n.operands[1], col}].push_back(v);
      col += g.type(part).shape[1];
      widths.push_back(g.type(part).shape[1]);
    }
    byLayout[{n.operands[1], widths}].push_back(v);
  }
  std::vector<ValueId> split;
  for (const auto& [key, members] : byPart)
    if (members.size() >= kBatchMinGroup) split.insert(split.end(), members.begin(), members.end());
  for (const auto& [key, members] : byLayout)
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

// --- (e) concats that are shifted windows of one sequence ---------------

// Pairs of live 2-D axis-0 concats x, y whose operand lists are windows of
// one sequence (y = the sequence from operand s of x on) become row slices
// of one concat of the whole sequence, so that every operand is written
// once, in place, and both windows are views. One join per concat a round;
// runBatch repeats rounds until none applies.

// The smallest shift s with x[s ..] a prefix of y or y a run inside x
// (x[s + i] == y[i] wherever both exist), overlapping in at least
// kBatchMinGroup operands (y a proper prefix of x at s = 0); none if none.
std::optional<size_t> windowShift(const std::vector<ValueId>& x, const std::vector<ValueId>& y) {
  for (size_t s = 0; s + kBatchMinGroup <= x.size(); ++s) {
    size_t overlap = std::min(x.size() - s, y.size());
    if (s == 0 && y.size() >= x.size()) continue;
    if (overlap >= kBatchMinGroup && std::equal(y.begin(), y.begin() + static_cast<std::ptrdiff_t>(overlap),
                                                x.begin() + static_cast<std::ptrdiff_t>(s)))
      return s;
  }
  return std::nullopt;
}

bool mergeShiftedConcats(ir::Graph& g) {
  Uses u = countUses(g);
  std::vector<ValueId> cats;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (u.live[v] && n.op == OpKind::Concat && intAttr(n, "axis") == 0 && n.type.rank() == 2 &&
        n.operands.size() >= kBatchMinGroup)
      cats.push_back(v);
  }
  Editor ed(g);
  std::vector<bool> merged(static_cast<size_t>(g.size()), false);
  bool changed = false;
  for (size_t i = 0; i < cats.size(); ++i)
    for (size_t j = i + 1; j < cats.size(); ++j) {
      ValueId a = cats[i], b = cats[j];
      if (merged[a] || merged[b] || g.type(a).dtype != g.type(b).dtype ||
          g.type(a).shape[1] != g.type(b).shape[1])
        continue;
      const std::vector<ValueId>&oa = g.node(a).operands, &ob = g.node(b).operands;
      ValueId x = a, y = b;  // y is x shifted by s operands
      std::optional<size_t> shift = windowShift(oa, ob);
      if (!shift) std::swap(x, y), shift = windowShift(ob, oa);
      if (!shift) continue;
      const size_t s = *shift;
      const std::vector<ValueId>&ox = g.node(x).operands, &oy = g.node(y).operands;
      std::vector<ValueId> all(ox.begin(), ox.begin() + static_cast<std::ptrdiff_t>(s));
      all.insert(all.end(), oy.begin(), oy.end());
      if (all.size() < ox.size()) all = ox;  // y lies inside x
      // rows of each operand; both windows must start at whole 64-byte
      // multiples so that they become views of the joined buffer
      const int64_t cols = g.type(x).shape[1], rowBytes = cols * 4;
      std::vector<int64_t> at{0};
      for (ValueId o : all) at.push_back(at.back() + g.type(o).shape[0]);
      if ((at[s] * rowBytes) % kViewAlign != 0) continue;
      // the joined concat reads operands neither window read: none may
      // depend on the window it did not belong to (that would be a cycle)
      bool cycle = false;
      for (size_t k = 0; k < all.size() && !cycle; ++k) {
        bool inX = k < ox.size(), inY = k >= s && k < s + oy.size();
        std::vector<bool> anc = ir::ancestors(g, {all[k]});
        cycle = (!inX && anc[x]) || (!inY && anc[y]);
      }
      if (cycle) continue;
      ValueId joined = ed.concat(all, 0, g.node(x).loc);
      if (joined != x) ed.replace(x, ed.rows(joined, 0, at[ox.size()], g.node(x).loc));
      ed.replace(y, ed.rows(joined, at[s], at[s + oy.size()], g.node(y).loc));
      merged[x] = merged[y] = true;
      changed = true;
    }
  return changed && ed.commit(g);
}

// --- (g) weight gradients with a narrow column tail ---------------------

// C = Aᵀ B (ta = 1, tb = 0) with N a few columns past a multiple of the
// GEMM's 32-column panel (a weight gradient into 65 or 10 classes) and M a
// multiple of it: C = transpose(Bᵀ A), whose product has M columns in full
// panels. The tail panel would cost nearly a full panel's pass over A for
// its few columns, and with few panels the GEMM cannot share its packing
// across threads. Each element is the same fused multiply-add chain over k
// (operands swapped in each product), so the result is bit-identical; the
// transpose is read in place by the consumers (the optimizer's update).
bool transposeNarrowGradients(ir::Graph& g) {
  Uses u = countUses(g);
  Editor ed(g);
  bool changed = false;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (!u.live[v] || n.op != OpKind::MatMul || n.type.rank() != 2 || intAttr(n, "ta") != 1 ||
        intAttr(n, "tb") != 0 || g.type(n.operands[1]).rank() != 2)
      continue;
    const int64_t M = n.type.shape[0], N = n.type.shape[1], tail = N % kGemmPanel;
    if (tail == 0 || tail > kGemmPanel / 2 || M % kGemmPanel != 0 || M < 2 * N) continue;
    Node t = n;
    t.operands = {n.operands[1], n.operands[0]};
    t.type.shape = {N, M};
    ValueId ct = ed.add(std::move(t));
    Node tr;
    tr.op = OpKind::Transpose;
    tr.operands = {ct};
    tr.attrs.set("perm", std::vector<int64_t>{1, 0});
    tr.type = n.type;
    tr.loc = n.loc;
    ed.replace(v, ed.add(std::move(tr)));
    changed = true;
  }
  return changed && ed.commit(g);
}

}  // namespace

bool runBatch(ir::Graph& g) {
  bool changed = splitColumnSlicedProducts(g);
  changed = splitSharedConcat(g) || changed;
  changed = joinSums(g) || changed;
  while (stackOneGroup(g)) changed = true;
  changed = transposeShared(g) || changed;
  while (mergeShiftedConcats(g)) changed = true;  // each round joins two or more concats into one
  return transposeNarrowGradients(g) || changed;
}

}  // namespace kiln::passes
