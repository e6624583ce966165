// Graph rebuilding and editing shared by the rewriting passes.
#include "Rewrite.h"

#include <algorithm>
#include <queue>

namespace kiln::passes {

ir::Node Rebuilder::mapped(ir::ValueId v) const {
  ir::Node n = old_.node(v);
  for (ir::ValueId& o : n.operands) o = map(o);
  return n;
}

ir::ValueId Rebuilder::keep(ir::ValueId v) {
  ir::Node n = mapped(v);
  if (static_cast<ir::ValueId>(nodes_.size()) != v) changed_ = true;
  const std::vector<ir::ValueId>& was = old_.node(v).operands;
  for (size_t i = 0; i < was.size(); ++i) changed_ |= n.operands[i] != was[i];
  remap_[v] = static_cast<ir::ValueId>(nodes_.size());
  nodes_.push_back(std::move(n));
  return remap_[v];
}

ir::ValueId Rebuilder::emit(ir::Node n) {
  changed_ = true;
  nodes_.push_back(std::move(n));
  return static_cast<ir::ValueId>(nodes_.size() - 1);
}

void Rebuilder::replace(ir::ValueId v, ir::ValueId to) {
  changed_ = true;
  remap_[v] = to;
}

bool Rebuilder::finish(ir::Graph& g) {
  if (!changed_ && nodes_.size() == static_cast<size_t>(old_.size())) return false;
  g.renumber(std::move(nodes_), remap_);
  return true;
}

// --- Editor ---------------------------------------------------------------

Editor::Editor(const ir::Graph& g) : g_(g), base_(g.size()), nodes_(g.nodes()) {
  for (ir::ValueId v = 0; v < base_; ++v) {
    repl_.push_back(v);
    rank_.push_back(ir::isSource(nodes_[v].op) ? -1 : v);  // sources first, as schedule orders them
    if (nodes_[v].op == ir::OpKind::Concat) rememberConcat(v);
  }
}

ir::ValueId Editor::add(ir::Node n) {
  int64_t r = 0;
  for (ir::ValueId& o : n.operands) {
    o = resolve(o);
    r = std::max(r, rank_[o]);
  }
  nodes_.push_back(std::move(n));
  repl_.push_back(static_cast<ir::ValueId>(nodes_.size() - 1));
  rank_.push_back(r);
  return static_cast<ir::ValueId>(nodes_.size() - 1);
}

ir::ValueId Editor::findOrAdd(ir::Node n) {
  for (ir::ValueId& o : n.operands) o = resolve(o);
  for (size_t v = 0; v < nodes_.size(); ++v) {
    const ir::Node& m = nodes_[v];
    if (repl_[v] == static_cast<ir::ValueId>(v) && m.op == n.op && !ir::isSource(m.op) && m.type == n.type &&
        m.operands == n.operands && m.attrs == n.attrs)
      return static_cast<ir::ValueId>(v);
  }
  return add(std::move(n));
}

ir::ValueId Editor::concat(std::vector<ir::ValueId> ops, int64_t axis, const ir::SourceLoc& loc) {
  for (ir::ValueId& o : ops) o = resolve(o);
  if (ops.size() == 1) return ops[0];
  auto key = std::make_pair(axis, ops);
  if (auto it = exact_.find(key); it != exact_.end()) return it->second;
  ir::Node n;
  n.op = ir::OpKind::Concat;
  n.operands = ops;
  n.attrs.set("axis", axis);
  n.type = node(ops[0]).type;
  n.type.shape[axis] = 0;
  for (ir::ValueId o : ops) n.type.shape[axis] += node(o).type.shape[axis];
  n.loc = loc;
  ir::ValueId id = add(std::move(n));
  rememberConcat(id);
  return id;
}

ir::ValueId Editor::along(ir::ValueId v, size_t axis, int64_t i0, int64_t i1, const ir::SourceLoc& loc) {
  ir::Node n;
  n.op = ir::OpKind::Slice;
  n.operands = {v};
  n.type = node(resolve(v)).type;
  std::vector<int64_t> begin(n.type.shape.size(), 0), end = n.type.shape, stride(n.type.shape.size(), 1);
  begin[axis] = i0;
  end[axis] = i1;
  n.type.shape[axis] = i1 - i0;
  n.attrs.set("begin", std::move(begin));
  n.attrs.set("end", std::move(end));
  n.attrs.set("stride", std::move(stride));
  n.loc = loc;
  return add(std::move(n));
}

ir::ValueId Editor::sum(ir::ValueId acc, ir::ValueId term, const ir::TensorType& t, const ir::SourceLoc& loc) {
  if (acc < 0) return term;
  ir::Node n;
  n.op = ir::OpKind::Add;
  n.type = t;
  n.loc = loc;
  n.operands = {acc, term};
  return add(std::move(n));
}

std::optional<std::vector<ir::ValueId>> Editor::concatOrder(std::vector<ir::ValueId> ops, int64_t axis) const {
  for (ir::ValueId& o : ops) o = resolve(o);
  std::sort(ops.begin(), ops.end());
  if (std::adjacent_find(ops.begin(), ops.end()) != ops.end()) return std::nullopt;
  auto it = bySet_.find(std::make_pair(axis, ops));
  if (it == bySet_.end()) return std::nullopt;
  return node(it->second).operands;
}

void Editor::rememberConcat(ir::ValueId v) {
  const ir::Node& n = nodes_[v];
  int64_t axis = n.attrs.getInt("axis", 0);
  exact_.emplace(std::make_pair(axis, n.operands), v);
  std::vector<ir::ValueId> set = n.operands;
  std::sort(set.begin(), set.end());
  bySet_.emplace(std::make_pair(axis, std::move(set)), v);
}

bool Editor::commit(ir::Graph& g) {
  using ir::ValueId;
  const size_t n = nodes_.size();
  for (ir::Node& node : nodes_)
    for (ValueId& o : node.operands) o = resolve(o);
  // live: sources and everything an entry point needs
  std::vector<bool> live(n, false);
  std::vector<ValueId> stack;
  auto mark = [&](ValueId v) {
    if (!live[v]) live[v] = true, stack.push_back(v);
  };
  for (ValueId v = 0; v < base_; ++v)
    if (ir::isSource(nodes_[v].op)) mark(v);
  for (const ir::Function& f : g_.functions())
    for (ValueId v : ir::functionRoots(f)) mark(resolve(v));
  while (!stack.empty()) {
    ValueId v = stack.back();
    stack.pop_back();
    for (ValueId o : nodes_[v].operands) mark(o);
  }
  // Kahn's algorithm, the ready node of lowest (rank, id) first: with no
  // edits this is the old order
  std::vector<int32_t> waiting(n, 0);
  std::vector<std::vector<ValueId>> users(n);
  size_t liveCount = 0;
  using Item = std::pair<int64_t, ValueId>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> ready;
  for (ValueId v = 0; v < static_cast<ValueId>(n); ++v) {
    if (!live[v]) continue;
    ++liveCount;
    for (ValueId o : nodes_[v].operands) {
      ++waiting[v];
      users[o].push_back(v);
    }
    if (waiting[v] == 0) ready.push({rank_[v], v});
  }
  std::vector<ValueId> pos(n, -1);
  std::vector<ir::Node> out;
  out.reserve(liveCount);
  while (!ready.empty()) {
    ValueId v = ready.top().second;
    ready.pop();
    pos[v] = static_cast<ValueId>(out.size());
    ir::Node node = nodes_[v];
    for (ValueId& o : node.operands) o = pos[o];
    out.push_back(std::move(node));
    for (ValueId u : users[v])
      if (--waiting[u] == 0) ready.push({rank_[u], u});
  }
  if (out.size() != liveCount) throw ir::CompileError("internal error: a graph rewrite made a cycle");
  std::vector<ValueId> remap(static_cast<size_t>(base_), -1);
  for (ValueId v = 0; v < base_; ++v) remap[v] = live[resolve(v)] ? pos[resolve(v)] : -1;
  g.renumber(std::move(out), remap);
  return true;
}

std::optional<double> constValue(const ir::Node& n) {
  if (n.op != ir::OpKind::Constant) return std::nullopt;
  const ir::AttrValue* a = n.attrs.find("value");
  if (!a) return std::nullopt;
  if (auto* d = std::get_if<double>(a)) return *d;
  if (auto* i = std::get_if<int64_t>(a)) return static_cast<double>(*i);
  return std::nullopt;
}

}  // namespace kiln::passes
