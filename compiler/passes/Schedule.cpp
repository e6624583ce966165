// schedule: picks the order kernels run in, as a renumbering of the graph
// (kernels run in value-id order, so the printed IR *is* the schedule).
// Sources come first, in their original order; they live in persistent
// buffers and cost the arena nothing. The other values are ordered to lower
// the peak of live temporary bytes, which is what the memory plan's arena
// must hold at once.
//
// Three topological orders of the same Boost.Graph DAG are measured with the
// plan's own liveness rule (a value is live from its kernel through its last
// reader in that entry point; outputs and updates until the call ends):
//   1. the current order (value ids),
//   2. Boost's depth-first topological_sort (finishes one chain before the
//      next, so operands die early in tree-shaped graphs),
//   3. a greedy list schedule: among the ready ops, run the one whose kernel
//      grows the live set least (its bytes minus the bytes of operands it
//      reads last), ties to the lowest id.
// The order with the lowest peak over the entry points wins (then the lowest
// sum of peaks); on a tie the current order stays, so the pass reports a
// change only when it lowers the peak. Everything is keyed by value id, so
// the result is deterministic.
#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/topological_sort.hpp>
#include <iterator>

#include "Passes.h"

namespace kiln::passes {
namespace {

using ir::ValueId;
using Dag = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;

int64_t bytesOf(const ir::Graph& g, ValueId v) {
  constexpr int64_t align = 64;
  return (std::max<int64_t>(g.type(v).byteSize(), 1) + align - 1) / align * align;
}

struct Cost {
  int64_t maxPeak = 0, sumPeaks = 0;
  bool operator<(const Cost& o) const { return std::tie(maxPeak, sumPeaks) < std::tie(o.maxPeak, o.sumPeaks); }
};

// Peak live temporary bytes of each entry point when kernels run in `order`
// (non-source values only, each once).
Cost measure(const ir::Graph& g, const std::vector<ValueId>& order) {
  Cost c;
  std::vector<int32_t> pos(static_cast<size_t>(g.size()), -1);
  for (size_t i = 0; i < order.size(); ++i) pos[order[i]] = static_cast<int32_t>(i);
  const int32_t end = static_cast<int32_t>(order.size());
  for (const ir::Function& f : g.functions()) {
    std::vector<ValueId> roots = ir::functionRoots(f);
    std::vector<bool> live = ir::ancestors(g, roots);
    std::vector<int32_t> last(static_cast<size_t>(g.size()), -1);
    for (ValueId v : order) {
      if (!live[v]) continue;
      last[v] = std::max(last[v], pos[v]);
      for (ValueId o : g.node(v).operands) last[o] = std::max(last[o], pos[v]);
    }
    for (ValueId r : roots) last[r] = end;
    // +bytes at the kernel, -bytes after the last reader
    std::vector<int64_t> delta(static_cast<size_t>(end) + 2, 0);
    for (ValueId v : order) {
      if (!live[v]) continue;
      delta[static_cast<size_t>(pos[v])] += bytesOf(g, v);
      delta[static_cast<size_t>(last[v]) + 1] -= bytesOf(g, v);
    }
    int64_t cur = 0, peak = 0;
    for (int64_t d : delta) peak = std::max(peak, cur += d);
    c.maxPeak = std::max(c.maxPeak, peak);
    c.sumPeaks += peak;
  }
  return c;
}

std::vector<ValueId> greedyOrder(const ir::Graph& g, const Dag& dag, const std::vector<bool>& isOp,
                                 const std::vector<bool>& kept) {
  const size_t n = static_cast<size_t>(g.size());
  std::vector<int32_t> waiting(n, 0), usesLeft(n, 0);
  std::vector<ValueId> ready, order;
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!isOp[v]) continue;
    for (auto e : boost::make_iterator_range(boost::in_edges(static_cast<size_t>(v), dag)))
      if (isOp[boost::source(e, dag)]) ++waiting[v];
    usesLeft[v] = static_cast<int32_t>(boost::out_degree(static_cast<size_t>(v), dag));
    if (waiting[v] == 0) ready.push_back(v);
  }
  while (!ready.empty()) {
    size_t best = 0;
    int64_t bestDelta = 0;
    for (size_t i = 0; i < ready.size(); ++i) {
      ValueId v = ready[i];
      int64_t d = bytesOf(g, v);
      for (auto e : boost::make_iterator_range(boost::in_edges(static_cast<size_t>(v), dag))) {
        auto o = static_cast<ValueId>(boost::source(e, dag));
        if (isOp[o] && !kept[o] && usesLeft[o] == 1) d -= bytesOf(g, o);
      }
      if (i == 0 || d < bestDelta || (d == bestDelta && v < ready[best])) {
        best = i;
        bestDelta = d;
      }
    }
    ValueId v = ready[best];
    ready.erase(ready.begin() + static_cast<std::ptrdiff_t>(best));
    order.push_back(v);
    for (auto e : boost::make_iterator_range(boost::in_edges(static_cast<size_t>(v), dag)))
      --usesLeft[boost::source(e, dag)];
    for (auto e : boost::make_iterator_range(boost::out_edges(static_cast<size_t>(v), dag))) {
      auto u = static_cast<ValueId>(boost::target(e, dag));
      if (--waiting[u] == 0) ready.push_back(u);
    }
  }
  return order;
}

}  // namespace

bool runSchedule(ir::Graph& g) {
  const size_t n = static_cast<size_t>(g.size());
  std::vector<bool> isOp(n), kept(n, false);
  for (ValueId v = 0; v < g.size(); ++v) isOp[v] = !ir::isSource(g.node(v).op);
  for (const ir::Function& f : g.functions())
    for (ValueId r : ir::functionRoots(f)) kept[r] = true;
  // one edge per operand use (a value read twice by one op has two edges,
  // so use counts are per reader edge, matching usesLeft above)
  Dag dag(n);
  for (ValueId v = 0; v < g.size(); ++v)
    for (ValueId o : g.node(v).operands) boost::add_edge(static_cast<size_t>(o), static_cast<size_t>(v), dag);

  std::vector<ValueId> current;
  for (ValueId v = 0; v < g.size(); ++v)
    if (isOp[v]) current.push_back(v);
  std::vector<size_t> rev;
  boost::topological_sort(dag, std::back_inserter(rev));  // reverse topological order
  std::vector<ValueId> dfs;
  for (auto it = rev.rbegin(); it != rev.rend(); ++it)
    if (isOp[*it]) dfs.push_back(static_cast<ValueId>(*it));
  std::vector<ValueId> greedy = greedyOrder(g, dag, isOp, kept);

  std::vector<ValueId> best = current;
  Cost bestCost = measure(g, current);
  for (const auto* cand : {&dfs, &greedy}) {
    Cost c = measure(g, *cand);
    if (c < bestCost) {
      bestCost = c;
      best = *cand;
    }
  }
  if (best == current) return false;

  std::vector<ValueId> remap(n, -1);
  std::vector<ir::Node> nodes;
  auto place = [&](ValueId v) {
    remap[v] = static_cast<ValueId>(nodes.size());
    nodes.push_back(g.node(v));
  };
  for (ValueId v = 0; v < g.size(); ++v)
    if (!isOp[v]) place(v);
  for (ValueId v : best) place(v);
  for (ir::Node& node : nodes)
    for (ValueId& o : node.operands) o = remap[o];
  g.renumber(std::move(nodes), remap);
  return true;
}

}  // namespace kiln::passes
