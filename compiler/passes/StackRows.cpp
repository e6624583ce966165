// stack: turns an unrolled loop's identical per-step row-wise ops into one op
// over the stacked rows (see docs/passes.md, "stack").
//
// A group is >= kBatchMinGroup live nodes with one op, one set of attributes
// and one result and operand types, none reaching another (an antichain,
// chosen by one forward sweep as the batch pass chooses its (b) groups),
// whose row-aligned operands are row blocks of one value each:
//
//   f(rows_t(X), ..., shared) for t = 1..k  ->  S = f(X', ..., shared'),
//                                              member t = rows_t(S)
//
// An operand position is row-aligned when the op computes result row r from
// that operand's row r only (rowAlignedPositions below); the others must be
// the same value in every member. A row-aligned operand of a member is one of
//   - rows [r, r+m) of a value X (a slice along axis 0 only),
//   - an operand of an existing concat along axis 0 (rows of the concat),
//   - anything small (<= kCheapBytes per member, e.g. an index column): the
//     members' operands are joined by a new concat along axis 0 (kernel ops
//     only),
//   - a value that does not vary by row block, the same in every member: a
//     broadcast that repeats its operand along the rows, or a splat const;
//     the stacked op reads a new broadcast (const) of the stacked shape.
// The members' blocks must follow each other in X (or the concat), in the
// same order at every row-aligned position; the longest such run is taken.
// Elementwise ops, broadcasts and reshapes (which the fuse pass would compute
// inside their consumer's kernel) are only stacked when every varying operand
// is already a row slice and every reader could be stacked too (or is a concat
// along axis 0), so stacking does not materialize a value that was computed
// inside a per-step kernel before.
//
// Groups are applied one at a time, each on the graph the previous one left,
// to a fixpoint: after the add of the per-step bias is stacked, the
// logsoftmax reads row slices of one value and is stacked next, and so on
// down the chain. Finally a concat along axis 0 of consecutive row slices of
// one value becomes that value (or one slice of it).
//
// Exact: every row is computed by the same arithmetic as before, so the
// results are bit-identical. Full reductions (a sum over axis 0) are left
// alone.
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "Passes.h"
#include "Rewrite.h"

namespace kiln::passes {
namespace {

using ir::Node;
using ir::OpKind;
using ir::Shape;
using ir::TensorType;
using ir::ValueId;

// A member's operand joined by a new concat must be at most this large.
constexpr int64_t kCheapBytes = 1024;
// The stacked result must be at most this large. Per-step results are
// consumed while they are in L1; a stacked one is written whole before any
// step reads it, so it should stay in L2 (a gather of an unrolled RNN's
// embeddings for every step, 2 MB in char_rnn, is slower stacked: its
// zero fill and copy leave the cache).
constexpr int64_t kMaxStackedBytes = int64_t(1) << 20;

// Which operand positions are row-aligned (true) or must be shared (false);
// nullopt when the op is not stacked. Result row r is computed from row r of
// each row-aligned operand only.
std::optional<std::vector<bool>> rowAlignedPositions(const ir::Graph& g, const Node& n) {
  if (n.type.rank() < 1 || n.operands.empty()) return std::nullopt;
  const size_t arity = n.operands.size();
  auto notAxis0 = [&](const char* key) { return n.attrs.getInt(key, 0) != 0; };
  const TensorType& x = g.type(n.operands[0]);
  std::optional<std::vector<bool>> pos;
  switch (n.op) {
    case OpKind::Sum:
    case OpKind::ReduceMax:
    case OpKind::ReduceMin: {
      const auto& axes = n.attrs.getInts("axes");
      if (x.rank() >= 2 && !axes.empty() && std::find(axes.begin(), axes.end(), 0) == axes.end())
        pos = std::vector<bool>{true};
      break;
    }
    case OpKind::Argmax:
    case OpKind::Argmin:
    case OpKind::LogSoftmax:
      if (x.rank() >= 2 && notAxis0("axis")) pos = std::vector<bool>{true};
      break;
    case OpKind::TakeAlong:
    case OpKind::ScatterAlong:
      if (x.rank() >= 2 && notAxis0("axis")) pos = std::vector<bool>{true, true};
      break;
    case OpKind::Gather:  // table shared, result row r = table[idx row r]
      if (g.type(n.operands[1]).rank() >= 1) pos = std::vector<bool>{false, true};
      break;
    case OpKind::OneHot:
    case OpKind::StopGradient: pos = std::vector<bool>{true}; break;
    case OpKind::Reshape:  // the same leading dim: each row is the same elements, reshaped
    case OpKind::Broadcast:  // the rows are not repeated: each row is broadcast on its own
      if (x.rank() >= 1 && x.shape[0] == n.type.shape[0] &&
          (n.op == OpKind::Reshape || x.rank() == n.type.rank()))
        pos = std::vector<bool>{true};
      break;
    default:
      if (ir::isElementwise(n.op)) pos = std::vector<bool>(arity, true);
      break;
  }
  if (!pos) return std::nullopt;
  for (size_t i = 0; i < arity; ++i) {
    const TensorType& t = g.type(n.operands[i]);
    if ((*pos)[i] && (t.rank() < 1 || t.shape[0] != n.type.shape[0])) return std::nullopt;
  }
  return pos;
}

// Ops the fuse pass computes inside their consumer's kernel.
bool isFusable(OpKind op) {
  return ir::isElementwise(op) || op == OpKind::Broadcast || op == OpKind::Reshape || op == OpKind::StopGradient;
}

// The rows [begin, end) of x a slice reads, when it slices along axis 0 only.
std::optional<std::pair<ValueId, int64_t>> rowSlice(const ir::Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (n.op != OpKind::Slice) return std::nullopt;
  const Shape& xs = g.type(n.operands[0]).shape;
  const auto &begin = n.attrs.getInts("begin"), &end = n.attrs.getInts("end"), &stride = n.attrs.getInts("stride");
  for (size_t d = 0; d < xs.size(); ++d) {
    if (stride[d] != 1) return std::nullopt;
    if (d > 0 && (begin[d] != 0 || end[d] != xs[d])) return std::nullopt;
  }
  return std::make_pair(n.operands[0], begin[0]);
}

// A value that is the same for every row block: a broadcast that repeats its
// operand along the rows, or a splat const.
bool isRowless(const ir::Graph& g, ValueId v) {
  const Node& n = g.node(v);
  if (n.op == OpKind::Constant) return constValue(n).has_value();
  if (n.op != OpKind::Broadcast) return false;
  const TensorType& x = g.type(n.operands[0]);
  return x.rank() < n.type.rank() || x.shape[0] == 1;
}

// Where a member's operand comes from, by position.
enum class Src { Shared, SliceRows, ConcatRows, NewConcat };
struct Operand {
  Src src = Src::Shared;
  ValueId x = -1;  // Shared/NewConcat: the operand; SliceRows: the sliced value; ConcatRows: the concat
  int64_t r0 = 0;  // SliceRows/ConcatRows: the first row of the block
};

struct Candidate {
  ValueId v;
  std::vector<Operand> ops;
};

std::string attrKey(const ir::Attrs& a) {
  std::string s;
  for (const auto& [name, v] : a.entries()) {
    s += name + "=";
    if (auto* d = std::get_if<double>(&v)) {
      uint64_t bits;
      std::memcpy(&bits, d, sizeof bits);
      s += fmt::format("d{}", bits);
    } else if (auto* i = std::get_if<int64_t>(&v)) {
      s += fmt::format("i{}", *i);
    } else if (auto* l = std::get_if<std::vector<int64_t>>(&v)) {
      s += fmt::format("l{}", fmt::join(*l, ","));
    } else {
      s += "s" + std::get<std::string>(v);
    }
    s += ";";
  }
  return s;
}

// What members must share: op, attributes, types, and per position the
// source kind and (for shared operands and row sources) the value.
using GroupKey = std::tuple<OpKind, std::string, Shape, int, std::vector<std::tuple<int, ValueId, Shape, int>>>;

class Stacker {
public:
  explicit Stacker(ir::Graph& g) : g_(g) {}

  // Applies the first group (by first member) that stacks; false when none does.
  bool stackOneGroup();
  // concat(rows(X, a0, a1), rows(X, a1, a2), ...) along axis 0 -> rows(X, a0, an) (or X).
  bool foldRowConcats();

private:
  std::optional<Candidate> candidate(ValueId v) const;
  bool tryGroup(const std::vector<Candidate>& members);

  ir::Graph& g_;
  std::vector<bool> live_;
  std::vector<std::pair<ValueId, int64_t>> inConcat_;  // value -> (first axis-0 concat reading it, its row there)
  std::vector<char> feedsUnstackable_;                 // a live reader is neither stackable nor an axis-0 concat
};

std::optional<Candidate> Stacker::candidate(ValueId v) const {
  const Node& n = g_.node(v);
  auto aligned = rowAlignedPositions(g_, n);
  if (!aligned || (isFusable(n.op) && feedsUnstackable_[v])) return std::nullopt;
  Candidate c{v, {}};
  bool varies = false;
  for (size_t i = 0; i < n.operands.size(); ++i) {
    ValueId o = n.operands[i];
    Operand op{Src::Shared, o, 0};
    if ((*aligned)[i] && !isRowless(g_, o)) {
      varies = true;
      if (auto s = rowSlice(g_, o)) {
        op = {Src::SliceRows, s->first, s->second};
      } else if (isFusable(n.op)) {
        return std::nullopt;  // would materialize what a consumer's kernel computes now
      } else if (inConcat_[o].first >= 0) {
        op = {Src::ConcatRows, inConcat_[o].first, inConcat_[o].second};
      } else if (g_.type(o).byteSize() <= kCheapBytes) {
        op = {Src::NewConcat, o, 0};
      } else {
        return std::nullopt;
      }
    }
    c.ops.push_back(op);
  }
  if (!varies) return std::nullopt;
  return c;
}

bool Stacker::stackOneGroup() {
  // live values, and the axis-0 concats each value is a block of
  std::vector<ValueId> roots;
  for (const ir::Function& f : g_.functions())
    for (ValueId v : ir::functionRoots(f)) roots.push_back(v);
  live_ = ir::ancestors(g_, roots);
  inConcat_.assign(static_cast<size_t>(g_.size()), {-1, 0});
  feedsUnstackable_.assign(static_cast<size_t>(g_.size()), 0);
  for (ValueId v = 0; v < g_.size(); ++v) {
    const Node& n = g_.node(v);
    if (!live_[v]) continue;
    bool concat0 = n.op == OpKind::Concat && n.attrs.getInt("axis", 0) == 0;
    if (!concat0 && !rowAlignedPositions(g_, n))
      for (ValueId o : n.operands) feedsUnstackable_[o] = 1;
    if (!concat0) continue;
    int64_t row = 0;
    for (ValueId o : n.operands) {
      if (inConcat_[o].first < 0) inConcat_[o] = {v, row};
      row += g_.type(o).shape[0];
    }
  }
  std::map<GroupKey, std::vector<Candidate>> groups;
  for (ValueId v = 0; v < g_.size(); ++v) {
    if (!live_[v]) continue;
    auto c = candidate(v);
    if (!c) continue;
    const Node& n = g_.node(v);
    std::vector<std::tuple<int, ValueId, Shape, int>> pos;
    for (size_t i = 0; i < c->ops.size(); ++i) {
      const Operand& o = c->ops[i];
      const TensorType& t = g_.type(n.operands[i]);
      pos.emplace_back(static_cast<int>(o.src), o.src == Src::NewConcat ? -1 : o.x, t.shape, static_cast<int>(t.dtype));
    }
    groups[{n.op, attrKey(n.attrs), n.type.shape, static_cast<int>(n.type.dtype), std::move(pos)}].push_back(
        std::move(*c));
  }
  // try groups in the order of their first member, so a chain is stacked from its start
  std::vector<const std::vector<Candidate>*> order;
  for (const auto& [key, members] : groups)
    if (members.size() >= kBatchMinGroup) order.push_back(&members);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->front().v < b->front().v; });
  for (const auto* members : order)
    if (tryGroup(*members)) return true;
  return false;
}

bool Stacker::tryGroup(const std::vector<Candidate>& members) {
  const ValueId first = members.front().v;
  const size_t size = static_cast<size_t>(g_.size());
  // one forward sweep: a member is taken unless a taken member reaches it
  std::vector<char> isMember(size, 0), reached(size, 0);
  for (const Candidate& c : members) isMember[c.v] = 1;
  std::vector<Candidate> chosen;
  size_t next = 0;
  for (ValueId v = first; v < g_.size(); ++v) {
    bool r = false;
    for (ValueId o : g_.node(v).operands) r = r || (o >= first && reached[o]);
    if (isMember[v]) {
      while (members[next].v != v) ++next;
      if (!r) chosen.push_back(members[next]), r = true;
    }
    reached[v] = r;
  }
  if (chosen.size() < kBatchMinGroup) return false;

  const Node& n0 = g_.node(first);
  const int64_t m = n0.type.shape[0];
  std::vector<size_t> rowPos;  // positions whose blocks are rows of one value
  for (size_t i = 0; i < chosen[0].ops.size(); ++i)
    if (chosen[0].ops[i].src == Src::SliceRows || chosen[0].ops[i].src == Src::ConcatRows) rowPos.push_back(i);
  Editor ed(g_);
  std::vector<Candidate> run;
  if (!rowPos.empty()) {
    // order by the first row-block position; take the longest run of blocks
    // that follow each other at every row-block position
    size_t p0 = rowPos[0];
    std::stable_sort(chosen.begin(), chosen.end(),
                     [&](const Candidate& a, const Candidate& b) { return a.ops[p0].r0 < b.ops[p0].r0; });
    auto follows = [&](const Candidate& a, const Candidate& b) {
      for (size_t p : rowPos)
        if (b.ops[p].r0 != a.ops[p].r0 + m) return false;
      return true;
    };
    size_t best = 0, bestLen = 0;
    for (size_t i = 0; i < chosen.size();) {
      size_t j = i + 1;
      while (j < chosen.size() && follows(chosen[j - 1], chosen[j])) ++j;
      if (j - i > bestLen) best = i, bestLen = j - i;
      i = j;
    }
    if (bestLen < kBatchMinGroup) return false;
    run.assign(chosen.begin() + static_cast<std::ptrdiff_t>(best),
               chosen.begin() + static_cast<std::ptrdiff_t>(best + bestLen));
    // a concat read in part brings in its other operands: none may depend on a member
    std::fill(reached.begin(), reached.end(), 0);
    std::fill(isMember.begin(), isMember.end(), 0);
    for (const Candidate& c : run) isMember[c.v] = 1;
    for (ValueId v = first; v < g_.size(); ++v) {
      bool r = isMember[v] != 0;
      for (ValueId o : g_.node(v).operands) r = r || reached[o];
      reached[v] = r;
    }
    for (size_t p : rowPos)
      if (run[0].ops[p].src == Src::ConcatRows && reached[run[0].ops[p].x]) return false;
  } else {
    run = chosen;
    // only new concats: take the order of an existing concat of the same operands
    for (size_t i = 0; i < run[0].ops.size(); ++i) {
      if (run[0].ops[i].src != Src::NewConcat) continue;
      std::vector<ValueId> ops;
      for (const Candidate& c : run) ops.push_back(c.ops[i].x);
      if (auto order = ed.concatOrder(ops, 0)) {
        std::map<ValueId, Candidate> byOperand;
        for (const Candidate& c : run) byOperand.emplace(c.ops[i].x, c);
        for (size_t j = 0; j < run.size(); ++j) run[j] = byOperand.at((*order)[j]);
      }
      break;
    }
  }

  const int64_t k = static_cast<int64_t>(run.size());
  Node big = g_.node(run[0].v);
  big.type.shape[0] = m * k;
  if (big.type.byteSize() > kMaxStackedBytes) return false;
  for (size_t i = 0; i < big.operands.size(); ++i) {
    const Operand& o = run[0].ops[i];
    const Node& on = g_.node(big.operands[i]);
    TensorType t = on.type;
    t.shape[0] = m * k;
    switch (o.src) {
      case Src::Shared: {
        auto aligned = rowAlignedPositions(g_, n0);
        if (!(*aligned)[i]) break;  // read whole by every member (gather's table)
        Node s = on;                // a rowless broadcast or splat const, made for the stacked shape
        s.type = t;
        big.operands[i] = ed.findOrAdd(std::move(s));
        break;
      }
      case Src::SliceRows:
      case Src::ConcatRows: {
        const TensorType& xt = g_.type(o.x);
        if (o.r0 == 0 && xt.shape[0] == m * k) {
          big.operands[i] = o.x;
          break;
        }
        Node s;
        s.op = OpKind::Slice;
        s.operands = {o.x};
        s.type = xt;
        s.type.shape[0] = m * k;
        Shape begin(xt.shape.size(), 0), end = xt.shape, stride(xt.shape.size(), 1);
        begin[0] = o.r0;
        end[0] = o.r0 + m * k;
        s.attrs.set("begin", begin);
        s.attrs.set("end", end);
        s.attrs.set("stride", stride);
        s.loc = on.loc;
        big.operands[i] = ed.findOrAdd(std::move(s));
        break;
      }
      case Src::NewConcat: {
        std::vector<ValueId> ops;
        for (const Candidate& c : run) ops.push_back(c.ops[i].x);
        big.operands[i] = ed.concat(ops, 0, on.loc);
        break;
      }
    }
  }
  ValueId s = ed.findOrAdd(std::move(big));
  for (int64_t t = 0; t < k; ++t)
    ed.replace(run[static_cast<size_t>(t)].v, ed.rows(s, t * m, (t + 1) * m, g_.node(run[static_cast<size_t>(t)].v).loc));
  return ed.commit(g_);
}

bool Stacker::foldRowConcats() {
  std::vector<ValueId> roots;
  for (const ir::Function& f : g_.functions())
    for (ValueId v : ir::functionRoots(f)) roots.push_back(v);
  std::vector<bool> live = ir::ancestors(g_, roots);
  Editor ed(g_);
  bool changed = false;
  for (ValueId v = 0; v < g_.size(); ++v) {
    const Node& n = g_.node(v);
    if (!live[v] || n.op != OpKind::Concat || n.attrs.getInt("axis", 0) != 0) continue;
    std::optional<std::pair<ValueId, int64_t>> head = rowSlice(g_, n.operands[0]);
    if (!head) continue;
    int64_t row = head->second;
    bool ok = true;
    for (ValueId o : n.operands) {
      auto s = rowSlice(g_, o);
      ok = ok && s && s->first == head->first && s->second == row;
      if (!ok) break;
      row += g_.type(o).shape[0];
    }
    if (!ok) continue;
    ValueId x = head->first;
    bool whole = head->second == 0 && row == g_.type(x).shape[0];
    ed.replace(v, whole ? x : ed.rows(x, head->second, row, n.loc));
    changed = true;
  }
  return changed && ed.commit(g_);
}

}  // namespace

bool runStack(ir::Graph& g) {
  Stacker s(g);
  bool changed = false;
  for (;;) {
    while (s.stackOneGroup()) changed = true;
    if (!s.foldRowConcats()) break;
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
