// Chooses the plan's aliases (Aliases.h): views and concats assembled in place.
#include "Aliases.h"
#include "passes/Passes.h"

#include <algorithm>
#include <functional>

namespace kiln::lower {

static_assert(passes::kViewAlign == kBufferAlign, "the batch pass places row windows as views");
static_assert(passes::kGemmPanel == kGemmMaxNR, "the batch pass avoids narrow GEMM tail panels");

using ir::OpKind;
using ir::ValueId;

// The byte offset of v's elements in its operand's buffer when v is a pure
// relabelling of a contiguous run of them (a reshape, a stop_gradient, a
// slice whose dims before its first one of more than one element have one
// element, that dim step 1, and every dim after it whole), else -1.
static int64_t viewOffset(const ir::Graph& g, ValueId v) {
  const ir::Node& n = g.node(v);
  if (ir::opFamily(n.op) == ir::FamilyKind::Copy) return 0;
  if (n.op != OpKind::Slice) return -1;
  const ir::Shape& in = g.type(n.operands[0]).shape;
  const ir::Shape& out = n.type.shape;
  const auto &begin = n.attrs.getInts("begin"), &stride = n.attrs.getInts("stride");
  size_t d = 0;
  while (d < out.size() && out[d] == 1) ++d;
  if (d < out.size() && stride[d] != 1) return -1;
  for (size_t e = d + 1; e < out.size(); ++e)
    if (out[e] != in[e]) return -1;
  std::vector<int64_t> st = ir::stridesOf(in);
  int64_t at = 0;
  for (size_t e = 0; e < in.size(); ++e) at += begin[e] * st[e];
  return at * 4;
}

Aliases chooseAliases(const ir::Graph& g, const ModulePlan& p, bool enabled, bool place,
                      const std::vector<std::vector<bool>>& liveBy) {
  const size_t n = static_cast<size_t>(g.size());
  Aliases a;
  std::vector<bool> endRead(n, false);
  for (const ir::Function& f : g.functions())
    for (const ir::Update& u : f.updates) endRead[u.value] = true;
  a.baseOf.assign(n, -1);
  a.assembled.assign(n, false);
  a.parentOf.assign(n, -1);
  a.parentAt.assign(n, 0);
  std::vector<int64_t> viewAt(n, 0);  // offset from the first non-view down a chain of views
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& node = g.node(v);
    // outputs and sources have their own bytes already; fused values none
    if (!enabled || p.offsetOf[v] >= 0 || p.inlined[v] || endRead[v] || node.operands.size() != 1) continue;
    ValueId o = node.operands[0];
    if (p.inlined[o]) continue;  // a kernel computing its operand's tree
    int64_t at = viewOffset(g, v);
    if (at < 0 || (viewAt[o] + at) % kBufferAlign != 0) continue;
    a.baseOf[v] = o;
    a.parentOf[v] = o;
    a.parentAt[v] = at;
    viewAt[v] = viewAt[o] + at;
  }
  // concats whose inputs are contiguous runs of their bytes (every dim before
  // the axis has one element), each input a kernel's value that can write
  // there: not a source, view, output or update value, in no other concat,
  // at a 64-byte multiple, and computed only by functions that also need the
  // concat (so the concat's bytes are live wherever it is written)
  for (ValueId c = 0; enabled && place && c < g.size(); ++c) {
    const ir::Node& node = g.node(c);
    if (node.op != OpKind::Concat || p.inlined[c] || endRead[c]) continue;
    int64_t axis = node.attrs.getInt("axis"), outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= node.type.shape[static_cast<size_t>(d)];
    if (outer != 1) continue;
    bool ok = true;
    int64_t at = 0;
    std::vector<int64_t> ats;
    for (size_t i = 0; i < node.operands.size() && ok; ++i) {
      ValueId x = node.operands[i];
      ok = !ir::isSource(g.node(x).op) && !p.inlined[x] && a.baseOf[x] < 0 && p.offsetOf[x] < 0 && !endRead[x] &&
           a.parentOf[x] < 0 && at % kBufferAlign == 0 &&
           std::count(node.operands.begin(), node.operands.end(), x) == 1;
      for (const std::vector<bool>& live : liveBy) ok = ok && (!live[x] || live[c]);
      ats.push_back(at);
      at += g.type(x).byteSize();
    }
    if (!ok) continue;
    a.assembled[c] = true;
    for (size_t i = 0; i < node.operands.size(); ++i) {
      a.parentOf[node.operands[i]] = c;
      a.parentAt[node.operands[i]] = ats[i];
    }
  }
  // roots: follow parents (a view's operand has a smaller id, a placed
  // input's concat a larger one; each link is "lies inside", so no cycles)
  a.rootOf.assign(n, -1);
  a.rootAt.assign(n, 0);
  std::function<void(ValueId)> resolve = [&](ValueId v) {
    if (a.rootOf[v] >= 0) return;
    ValueId up = a.parentOf[v];
    if (up < 0) {
      a.rootOf[v] = v;
      return;
    }
    resolve(up);
    a.rootOf[v] = a.rootOf[up];
    a.rootAt[v] = a.rootAt[up] + a.parentAt[v];
  };
  for (ValueId v = 0; v < g.size(); ++v) resolve(v);
  return a;
}

}  // namespace kiln::lower
