// Kernel schedule and memory plan for the kernel IR.
//
// Memory is one block per model instance:
//   [persistent: sources | function outputs | update staging][arena][scratch]
// Sources (inputs, params, state), function outputs and the staging copies of
// updates keep their own bytes for the life of the instance. Every other value
// a function computes (a temporary) lives in the arena, which all entry points
// share: each function's kernels run in value-id order, a temporary is live
// from its kernel through the last kernel of that function that reads it
// (through the end-of-call copies when an update reads it), and two
// temporaries may share bytes only if no function has both live at once.
//
// Codegen marks every kernel argument `noalias`, so a kernel's output must
// never overlap its inputs. The liveness rule guarantees it: an operand is
// live at the kernel that reads it, the same point its output's life starts,
// so the two interfere. There is no in-place reuse of temporaries.
//
// Updates are the exception (planInPlace): when the kernel computing a
// source's new value is the last reader of the source's old value, and
// reads it only elementwise at the index it writes, it writes the new value
// straight into the source's buffer (its "output" is the source), and the
// end-of-call copy disappears. Codegen then reads that input through the
// output pointer, so no two `noalias` pointers ever touch the same bytes.
// Optimizer steps (w -= lr * m / sqrt(v), m and v updated) become one pass
// over each buffer instead of a pass and a copy. Checked mode keeps the
// copies: it must be able to stop a call before any source changes.
//
// Views (View in Plan.h): a reshape, a stop_gradient or a slice whose
// elements are one contiguous run of its operand's (only whole rows cut,
// step 1) runs no kernel; its buffer is the operand's, at a byte offset.
// Every value then has a root, the non-view value whose buffer it lies in,
// and the rules above apply to roots:
//   - a kernel reading a view reads its root, so the root stays live
//     through the last kernel that reads any view of it (views of views too)
//     and no temporary a kernel writes overlaps a view it reads;
//   - an in-place update is not allowed when a later kernel reads a view of
//     the source, or when the updating kernel itself reads one (two pointers
//     to the same bytes, one written);
//   - a fused loop never has a member reading a view of bytes another member
//     writes, and a loop member's value read through a view is stored;
//   - function outputs and update values are never views (they are read at
//     the end of the call, or need bytes of their own), and view offsets are
//     multiples of kBufferAlign, so every buffer a kernel gets keeps its
//     alignment (a row slice at an unaligned offset stays a copy).
// Concat inputs placed in their slots (PlanOptions::placeConcatInputs): a
// concat along its leading non-unit dim whose every input is a kernel's
// value that may be written anywhere (not a source, a view, an output or an
// update value, in no other concat, at a multiple of 64 bytes) is
// assembled in place: each input's kernel writes straight into its slot of
// the concat's buffer and no concat kernel runs. The input's root is then
// the concat (or what holds it), and the same rules apply with "written"
// for "read": the root is live from the first kernel writing any slot, an
// input is always stored even in a fused loop, and a loop member never
// reads an alias of bytes another member writes. A function computing an
// input must need the concat too, so its bytes are live there.
// Checked mode has neither: every op keeps its kernel and its buffer.
//
// Offsets come from two strategies over the same interference relation, and
// the smaller arena wins (ties to interval packing):
//   - interval packing: temporaries by size (largest first, then id), each at
//     the lowest 64-byte-aligned offset where it overlaps no interfering
//     temporary already placed (first fit);
//   - graph colouring: Boost.Graph's sequential_vertex_coloring of the
//     interference graph (same vertex order), one slot per colour, as big as
//     its biggest member, slots end to end.
// Packing lets a large buffer's bytes be shared by several small ones live at
// different times, which colouring cannot, so it is never worse in practice;
// report.json gives both sizes.
#include "Plan.h"
#include "Aliases.h"

#include <algorithm>
#include <functional>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/sequential_vertex_coloring.hpp>
#include <fmt/format.h>

#include "ir/Shapes.h"
#include "passes/Fusion.h"
#include "ir/Text.h"

namespace kiln::lower {

using ir::OpKind;
using ir::ValueId;

std::string_view bufferKindName(BufferKind k) {
  switch (k) {
    case BufferKind::Input: return "input";
    case BufferKind::Param: return "param";
    case BufferKind::State: return "state";
    case BufferKind::Output: return "output";
    case BufferKind::Temp: return "temp";
  }
  return "?";
}

std::string_view arenaStrategyName(ArenaStrategyKind k) {
  return k == ArenaStrategyKind::IntervalPacking ? "interval-packing" : "graph-coloring";
}

static int64_t alignUp(int64_t x) { return (x + kBufferAlign - 1) / kBufferAlign * kBufferAlign; }
static int64_t slotBytes(const ir::Graph& g, ValueId v) { return alignUp(std::max<int64_t>(g.type(v).byteSize(), 1)); }

namespace {

// A temporary's live ranges on the concatenated timeline of all functions
// (function k's kernel i is at base_k + i; base_k + n_k is its copy phase).
struct Temp {
  ValueId value;
  int64_t bytes;
  std::vector<std::pair<int32_t, int32_t>> ranges;  // inclusive, sorted
};

// Interference: pairs of temporaries (indices) with an overlapping range,
// found by a sweep over range starts. Each pair appears once, smaller first.
std::vector<std::vector<size_t>> interference(const std::vector<Temp>& temps) {
  struct Range {
    int32_t lo, hi;
    size_t temp;
  };
  std::vector<Range> rs;
  for (size_t t = 0; t < temps.size(); ++t)
    for (auto [lo, hi] : temps[t].ranges) rs.push_back({lo, hi, t});
  std::sort(rs.begin(), rs.end(), [](const Range& a, const Range& b) {
    return std::tie(a.lo, a.hi, a.temp) < std::tie(b.lo, b.hi, b.temp);
  });
  std::vector<std::vector<size_t>> adj(temps.size());
  std::vector<Range> active;
  for (const Range& r : rs) {
    std::erase_if(active, [&](const Range& a) { return a.hi < r.lo; });
    for (const Range& a : active)
      if (a.temp != r.temp) {
        adj[a.temp].push_back(r.temp);
        adj[r.temp].push_back(a.temp);
      }
    active.push_back(r);
  }
  for (auto& a : adj) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }
  return adj;
}

// First fit, largest first: returns arena offsets by temp index.
std::vector<int64_t> packIntervals(const std::vector<Temp>& temps, const std::vector<std::vector<size_t>>& adj,
                                   const std::vector<size_t>& order, int64_t& arenaBytes) {
  std::vector<int64_t> off(temps.size(), -1);
  arenaBytes = 0;
  for (size_t t : order) {
    std::vector<std::pair<int64_t, int64_t>> taken;
    for (size_t u : adj[t])
      if (off[u] >= 0) taken.push_back({off[u], off[u] + temps[u].bytes});
    std::sort(taken.begin(), taken.end());
    int64_t at = 0;
    for (auto [lo, hi] : taken) {
      if (lo >= at + temps[t].bytes) break;
      at = std::max(at, hi);
    }
    off[t] = at;
    arenaBytes = std::max(arenaBytes, at + temps[t].bytes);
  }
  return off;
}

// Colour classes as slots: returns arena offsets by temp index.
std::vector<int64_t> colorSlots(const std::vector<Temp>& temps, const std::vector<std::vector<size_t>>& adj,
                                const std::vector<size_t>& order, int64_t& arenaBytes) {
  using UG = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS>;
  UG ig(temps.size());
  for (size_t t = 0; t < temps.size(); ++t)
    for (size_t u : adj[t])
      if (t < u) boost::add_edge(t, u, ig);
  std::vector<size_t> color(temps.size(), 0);
  auto colorMap = boost::make_iterator_property_map(color.begin(), boost::get(boost::vertex_index, ig));
  // colour in `order` (largest first), so big temporaries claim the first slots
  auto orderMap = boost::make_iterator_property_map(order.begin(), boost::identity_property_map());
  size_t colors = boost::sequential_vertex_coloring(ig, orderMap, colorMap);
  std::vector<int64_t> slotSize(colors, 0), slotAt(colors, 0);
  for (size_t t = 0; t < temps.size(); ++t) slotSize[color[t]] = std::max(slotSize[color[t]], temps[t].bytes);
  arenaBytes = 0;
  for (size_t c = 0; c < colors; ++c) {
    slotAt[c] = arenaBytes;
    arenaBytes += slotSize[c];
  }
  std::vector<int64_t> off(temps.size());
  for (size_t t = 0; t < temps.size(); ++t) off[t] = slotAt[color[t]];
  return off;
}

}  // namespace

// Index inputs of `live` values: i32 inputs that reach an index operand
// through layout ops (reshape, broadcast, transpose, slice, concat), each
// with the tightest bound of its uses.
static std::vector<IndexCheck> indexChecks(const ir::Graph& g, const std::vector<bool>& live) {
  std::vector<IndexCheck> out;
  auto require = [&](ValueId idx, int64_t bound, const ir::Node& user) {
    std::vector<ValueId> stack{idx};
    while (!stack.empty()) {
      ValueId v = stack.back();
      stack.pop_back();
      const ir::Node& n = g.node(v);
      if (n.op == OpKind::Input) {
        std::string use = fmt::format("{}{}", ir::opName(user.op), user.loc.valid() ? " at " + user.loc.str() : "");
        auto it = std::find_if(out.begin(), out.end(), [&](const IndexCheck& c) { return c.input == v; });
        if (it == out.end()) out.push_back({v, bound, use});
        else if (bound < it->bound) *it = {v, bound, use};
        continue;
      }
      if (ir::isLayout(n.op) || n.op == OpKind::Concat)
        for (ValueId o : n.operands) stack.push_back(o);
    }
  };
  for (ValueId v = 0; v < g.size(); ++v) {
    if (!live[v]) continue;
    const ir::Node& n = g.node(v);
    switch (n.op) {
      case OpKind::Gather: require(n.operands[1], g.type(n.operands[0]).shape[0], n); break;
      case OpKind::ScatterAdd: require(n.operands[1], n.type.shape[0], n); break;
      case OpKind::TakeAlong:
        require(n.operands[1], g.type(n.operands[0]).shape[static_cast<size_t>(n.attrs.getInt("axis"))], n);
        break;
      case OpKind::ScatterAlong: require(n.operands[1], n.type.shape[static_cast<size_t>(n.attrs.getInt("axis"))], n); break;
      case OpKind::OneHot: require(n.operands[0], n.attrs.getInt("depth"), n); break;
      default: break;
    }
  }
  std::sort(out.begin(), out.end(), [](const IndexCheck& a, const IndexCheck& b) { return a.input < b.input; });
  return out;
}

// The kernel of `v`, with its inputs and the values fused into it.
int64_t gemmScratchBytes(int64_t k, int64_t n) {
  return alignUp(std::min(k, kGemmKC) * ((n + kGemmMaxNR - 1) / kGemmMaxNR * kGemmMaxNR) * 4);
}

int64_t gemmPackABytes(int64_t m, int64_t k, int64_t n, bool ta) {
  if ((!ta && k % 1024 != 0) || m > 4096 || n <= 3 * kGemmMaxNR) return 0;
  static_assert(kGemmMR == 8, "k-major micro-panels hold 8 floats per k");
  return alignUp((m + kGemmMR - 1) / kGemmMR * (8 * std::min(k, kGemmKC) + 16 * kGemmMR) * 4);
}

ConvLayout convLayout(const ir::Graph& g, const ir::Node& node) {
  const ir::Shape *xs, *ws, *ys;
  if (node.op == OpKind::Conv2d) {
    xs = &g.type(node.operands[0]).shape, ws = &g.type(node.operands[1]).shape, ys = &node.type.shape;
  } else if (node.op == OpKind::Conv2dBwdInput) {
    xs = &node.type.shape, ws = &g.type(node.operands[1]).shape, ys = &g.type(node.operands[0]).shape;
  } else {
    xs = &g.type(node.operands[0]).shape, ws = &node.type.shape, ys = &g.type(node.operands[1]).shape;
  }
  ir::ConvGeom geom = ir::convGeom(node.attrs);
  ConvLayout l;
  l.n = (*xs)[0], l.c = (*xs)[1], l.h = (*xs)[2], l.w = (*xs)[3];
  l.o = (*ws)[0], l.kh = (*ws)[2], l.kw = (*ws)[3], l.oh = (*ys)[2], l.ow = (*ys)[3];
  l.groups = geom.groups, l.cg = l.c / geom.groups, l.og = l.o / geom.groups;
  l.ckk = l.cg * l.kh * l.kw, l.ohw = l.oh * l.ow;
  l.direct = l.kh == 1 && l.kw == 1 && geom.stride[0] == 1 && geom.stride[1] == 1 && geom.pad[0] == 0 &&
             geom.pad[1] == 0 && l.oh == l.h && l.ow == l.w;
  if (l.n * l.o * l.ckk * l.ohw == 0) return l;  // an empty sum or an empty result: no GEMM
  bool filter = node.op == OpKind::Conv2dBwdFilter;
  int64_t rows = l.ckk;  // column-matrix rows a unit needs
  if (filter) {
    // kConvFilterChunks items (or as many groups), of at least 16 rows
    // each: every chunk packs all of dy, image by image, for its GEMMs, so
    // more chunks repeat that packing (8 chunks made cnn's step 2.4% slower
    // than 4 at 2 threads, and 2 chunks were no faster than 4), and whole
    // multiples of 6 rows when that costs little balance
    int64_t want = std::clamp((kConvFilterChunks + l.groups - 1) / l.groups, int64_t(1), (l.ckk + 15) / 16);
    l.rowsPer = (l.ckk + want - 1) / want;
    if (l.rowsPer >= 24) l.rowsPer = (l.rowsPer + 5) / 6 * 6;
    l.chunks = (l.ckk + l.rowsPer - 1) / l.rowsPer;
    rows = l.rowsPer;
    l.units = l.groups * l.chunks;
  } else {
    l.units = l.n;
  }
  l.items = std::min(l.units, kConvItems);
  l.colLd = node.op == OpKind::Conv2dBwdInput ? l.ohw : (l.ohw + 15) / 16 * 16;
  int64_t at = 0;
  if (!l.direct) {
    l.colAt = at;
    at += alignUp(rows * l.colLd * 4);
  }
  l.packAt = at;
  // the GEMM's (k, n): forward (ckk, ohw), input gradient (og, ohw), filter gradient (ohw, og)
  at += node.op == OpKind::Conv2d ? gemmScratchBytes(l.ckk, l.ohw)
        : node.op == OpKind::Conv2dBwdInput ? gemmScratchBytes(l.og, l.ohw) : gemmScratchBytes(l.ohw, l.og);
  l.slotBytes = at;
  at *= l.items;
  if (filter) {
    l.accAt = at;
    at += alignUp(l.groups * l.ckk * l.og * 4);
  }
  if (node.op == OpKind::Conv2d && !l.direct && l.ohw % 16 != 0 && l.ohw % 16 <= kGemmRowVectorCols) {
    l.wTAt = at;
    at += alignUp(l.groups * l.ckk * l.og * 4);
  }
  l.bytes = at;
  return l;
}

int64_t kernelScratchBytes(const ir::Graph& g, ValueId v) {
  const ir::Node& node = g.node(v);
  if (node.op == OpKind::Conv2d || node.op == OpKind::Conv2dBwdInput || node.op == OpKind::Conv2dBwdFilter)
    return convLayout(g, node).bytes;
  if (ir::opFamily(node.op) == ir::FamilyKind::MatMul) {
    const ir::Shape& as = g.type(node.operands[0]).shape;
    size_t r = as.size();
    bool ta = node.attrs.getInt("ta", 0);
    int64_t k = ta ? as[r - 2] : as[r - 1];
    const ir::Shape& cs = node.type.shape;
    return gemmScratchBytes(k, cs.back()) + gemmPackABytes(cs[cs.size() - 2], k, cs.back(), ta);
  }
  return 0;
}

// Whether the kernel rooted at `root` reads `t` only at the flat index it
// writes: every node of its fused tree on a path to `t` is an elementwise
// map or a reshape, so element i of `t` is read while computing element i
// of the output and at no other time.
static bool readsOnlyAtOwnIndex(const ir::Graph& g, const std::vector<bool>& inlined, ValueId root, ValueId t) {
  if (!passes::evaluatesOperandsByIndex(g.node(root).op)) return false;
  bool ok = true;
  std::vector<int8_t> memo(static_cast<size_t>(g.size()), -1);
  std::function<bool(ValueId)> reaches = [&](ValueId x) -> bool {
    if (x == t) return true;
    if (x != root && !inlined[x]) return false;
    if (memo[x] >= 0) return memo[x];
    bool r = false;
    for (ValueId o : g.node(x).operands) r = reaches(o) || r;
    ir::FamilyKind fam = ir::opFamily(g.node(x).op);
    if (r && fam != ir::FamilyKind::Map && fam != ir::FamilyKind::Copy) ok = false;
    memo[x] = r;
    return r;
  };
  reaches(root);
  return ok;
}

bool needsMultiIndex(const ir::Graph& g, const Kernel& k) {
  for (ValueId f : k.fused) {
    const ir::Node& fn = g.node(f);
    ir::FamilyKind fam = ir::opFamily(fn.op);
    if (fam == ir::FamilyKind::Transpose || fam == ir::FamilyKind::ScatterAlong || fam == ir::FamilyKind::Gather)
      return true;
    if (fam == ir::FamilyKind::Broadcast && g.type(fn.operands[0]).numElements() > 1) return true;
  }
  return false;
}

bool isFlatElementwise(const ir::Graph& g, const Kernel& k) {
  const ir::Node& n = g.node(k.value);
  return ir::opFamily(n.op) == ir::FamilyKind::Map && n.type.numElements() > 1 && !needsMultiIndex(g, k) &&
         epilogueProduct(g, k) < 0;
}

ValueId epilogueProduct(const ir::Graph& g, const Kernel& k) {
  for (ValueId f : k.fused)
    if (g.node(f).op == OpKind::MatMul || g.node(f).op == OpKind::Conv2d) return f;
  return -1;
}

static Kernel makeKernel(const ir::Graph& g, ValueId v, const std::vector<bool>& inlined) {
  Kernel k{v, {}, {}, kernelScratchBytes(g, v)};
  if (!passes::evaluatesOperandsByIndex(g.node(v).op)) {
    k.inputs = g.node(v).operands;
    return k;
  }
  k.inputs = passes::kernelInputs(g, v, inlined);
  std::vector<ValueId> stack = g.node(v).operands;
  while (!stack.empty()) {
    ValueId o = stack.back();
    stack.pop_back();
    if (!inlined[o] || std::find(k.fused.begin(), k.fused.end(), o) != k.fused.end()) continue;
    k.fused.push_back(o);
    for (ValueId x : g.node(o).operands) stack.push_back(x);
  }
  std::sort(k.fused.begin(), k.fused.end());
  if (ValueId mm = epilogueProduct(g, k); mm >= 0) k.scratchBytes = kernelScratchBytes(g, mm);
  return k;
}

// In-place updates (see the top of this file): for each update `t = v` of
// function f, v's kernel writes t's buffer directly when
//   - v is a temporary only f computes (not a source, an output or fused),
//     and the value of no other update;
//   - t's old value is needed by nothing after that kernel: no later kernel
//     reads t, f does not output t, and no update copies t elsewhere;
//   - the kernel itself reads t, if at all, only at the index it writes,
//     and never through a view (no later kernel reads a view of t either).
// Marks inPlace[ui] and gives v t's offset.
static void planInPlace(const ir::Graph& g, const ir::Function& f, size_t fi,
                        const std::vector<std::vector<bool>>& liveBy, const std::vector<int64_t>& stageAt,
                        const std::vector<ValueId>& rootOf, FunctionPlan& fp, ModulePlan& p,
                        std::vector<bool>& inPlace) {
  std::vector<int32_t> kernelOf(static_cast<size_t>(g.size()), -1);
  for (size_t i = 0; i < fp.kernels.size(); ++i) kernelOf[fp.kernels[i].value] = static_cast<int32_t>(i);
  std::vector<int32_t> lastRead(static_cast<size_t>(g.size()), -1);  // through views too
  for (size_t i = 0; i < fp.kernels.size(); ++i)
    for (ValueId o : fp.kernels[i].inputs) lastRead[rootOf[o]] = static_cast<int32_t>(i);
  std::vector<int> valueUses(static_cast<size_t>(g.size()), 0);
  std::vector<bool> needed(static_cast<size_t>(g.size()), false);  // read at the end of the call
  for (const ir::Update& u : f.updates) {
    ++valueUses[u.value];
    needed[u.value] = true;
  }
  for (const ir::Output& o : f.outputs) needed[o.value] = true;
  for (size_t ui = 0; ui < f.updates.size(); ++ui) {
    const ir::Update& u = f.updates[ui];
    ValueId v = u.value, t = u.target;
    if (v == t || stageAt[ui] >= 0 || valueUses[v] != 1 || p.offsetOf[v] >= 0 || p.inlined[v]) continue;
    if (ir::isSource(g.node(v).op) || needed[t] || kernelOf[v] < 0) continue;
    bool elsewhere = false;
    for (size_t fj = 0; fj < liveBy.size(); ++fj) elsewhere = elsewhere || (fj != fi && liveBy[fj][v]);
    if (elsewhere || lastRead[t] > kernelOf[v]) continue;
    if (g.type(v).byteSize() != g.type(t).byteSize()) continue;  // same type by the verifier; be sure
    Kernel& k = fp.kernels[static_cast<size_t>(kernelOf[v])];
    if (std::any_of(k.inputs.begin(), k.inputs.end(), [&](ValueId o) { return o != t && rootOf[o] == t; }))
      continue;  // it reads t through a view too
    auto it = std::find(k.inputs.begin(), k.inputs.end(), t);
    if (it != k.inputs.end()) {
      // a GEMM epilogue reads t after the GEMM has written C over the output
      if (!readsOnlyAtOwnIndex(g, p.inlined, v, t) || epilogueProduct(g, k) >= 0) continue;
      k.inPlaceInput = static_cast<int32_t>(it - k.inputs.begin());
    }
    p.offsetOf[v] = p.offsetOf[t];
    inPlace[ui] = true;
  }
}

// Loop fusion: runs of flat elementwise kernels over the same element count
// become one loop (Kernel::loopMembers), so a buffer several of them read
// (an optimizer's gradient, a parameter) passes through the cache once and
// values only later members read stay in registers (Kernel::store). Up to
// kLoopLookahead kernels between two members may run before the loop
// instead, when they read nothing a member computes and write no
// persistent buffer (the step size of Adam, a scalar, sits between each
// parameter's moment updates and its parameter update). Per element, the
// members run in order, so every member sees exactly the values it would
// see running alone: each reads any buffer only at the index it writes
// (isFlatElementwise), and an in-place update's old value is read by no
// member after the one that overwrites it (planInPlace).
static constexpr size_t kLoopLookahead = 2;

static void planLoops(const ir::Graph& g, const ir::Function& f, const std::vector<ValueId>& rootOf,
                      const ModulePlan& p, FunctionPlan& fp) {
  std::vector<Kernel>& ks = fp.kernels;
  // whether kernel a reads, through an alias (a view, or a placed concat
  // input or its concat), bytes of the buffer kernel b writes (its own, its
  // concat's, or the source it updates in place)
  auto readsViewOf = [&](const Kernel& a, const Kernel& b) {
    ValueId w = b.value, rw = rootOf[w];
    for (ValueId o : a.inputs) {
      ValueId r = rootOf[o];
      if (o == w || (r == o && rw == w)) continue;
      if (r == rw || (p.offsetOf[rw] >= 0 && p.offsetOf[rw] == p.offsetOf[r])) return true;
    }
    return false;
  };
  const std::vector<Kernel>* current = nullptr;  // the members so far
  auto memberOf = [&](const Kernel& k, int64_t count) {
    if (!isFlatElementwise(g, k) || g.type(k.value).numElements() != count) return false;
    for (const Kernel& m : *current)
      if (readsViewOf(k, m) || readsViewOf(m, k)) return false;
    return true;
  };
  std::vector<Kernel> out;
  size_t i = 0;
  while (i < ks.size()) {
    if (!isFlatElementwise(g, ks[i])) {
      out.push_back(ks[i++]);
      continue;
    }
    const int64_t count = g.type(ks[i].value).numElements();
    std::vector<Kernel> members{ks[i]}, hoisted;
    current = &members;
    std::vector<bool> made(static_cast<size_t>(g.size()), false);
    made[ks[i].value] = made[rootOf[ks[i].value]] = true;
    size_t j = i + 1;
    while (j < ks.size()) {
      if (memberOf(ks[j], count)) {
        made[ks[j].value] = made[rootOf[ks[j].value]] = true;
        members.push_back(ks[j++]);
        continue;
      }
      size_t e = j;
      bool ok = true;
      for (; e < ks.size() && !memberOf(ks[e], count); ++e) {
        bool independent = e - j < kLoopLookahead && p.offsetOf[ks[e].value] < 0;
        for (ValueId o : ks[e].inputs) independent = independent && !made[o] && !made[rootOf[o]];
        if (!independent) {
          ok = false;
          break;
        }
      }
      if (!ok || e == ks.size()) break;
      for (size_t x = j; x < e; ++x) hoisted.push_back(ks[x]);
      j = e;
    }
    out.insert(out.end(), hoisted.begin(), hoisted.end());
    for (size_t m = 0; m < members.size(); ++m) members[m].loopMembers = m == 0 ? static_cast<int32_t>(members.size()) : 0;
    out.insert(out.end(), members.begin(), members.end());
    i = j;
  }
  ks = std::move(out);

  // values only later members of their own loop read need no store
  std::vector<bool> endRead(static_cast<size_t>(g.size()), false);  // read after the kernels
  for (const ir::Update& u : f.updates) endRead[u.value] = true;
  for (const ir::Output& o : f.outputs) endRead[o.value] = true;
  std::vector<int32_t> loopOf(ks.size());
  for (size_t k = 0, head = 0; k < ks.size(); ++k) {
    if (ks[k].loopMembers != 0) head = k;
    loopOf[k] = static_cast<int32_t>(head);
  }
  std::vector<int32_t> outsideReads(static_cast<size_t>(g.size()), 0);
  std::vector<int32_t> producedAt(static_cast<size_t>(g.size()), -1);
  for (size_t k = 0; k < ks.size(); ++k) producedAt[ks[k].value] = static_cast<int32_t>(k);
  for (size_t k = 0; k < ks.size(); ++k)
    for (ValueId o : ks[k].inputs) {
      ValueId r = rootOf[o];  // a read through a view is a read from memory
      if (r != o || producedAt[r] < 0 || loopOf[static_cast<size_t>(producedAt[r])] != loopOf[k]) ++outsideReads[r];
    }
  for (size_t k = 0; k < ks.size(); ++k) {
    ValueId v = ks[k].value;
    bool grouped = ks[static_cast<size_t>(loopOf[k])].loopMembers > 1;
    // (a placed concat input is always stored: its concat is read)
    if (grouped && p.offsetOf[v] < 0 && rootOf[v] == v && !endRead[v] && outsideReads[v] == 0) ks[k].store = false;
  }
}

ModulePlan planModule(const ir::Graph& g, const PlanOptions& opts) {
  ModulePlan p;
  const size_t n = static_cast<size_t>(g.size());
  p.offsetOf.assign(n, -1);
  // checked mode gives every op its own buffer, so a failure names its op
  p.inlined = opts.fuse && !opts.checked ? passes::chooseInlined(g, passes::fusedMarks(g)) : std::vector<bool>(n, false);
  int64_t cursor = 0;
  auto slot = [&](int64_t bytes) {
    int64_t at = cursor;
    cursor = alignUp(cursor + std::max<int64_t>(bytes, 1));
    return at;
  };
  auto place = [&](ValueId v) { p.offsetOf[v] = slot(g.type(v).byteSize()); };

  // persistent: sources first (in graph order), then function outputs
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& node = g.node(v);
    if (!ir::isSource(node.op)) continue;
    place(v);
    BufferKind k = node.op == OpKind::Input ? BufferKind::Input
                   : node.op == OpKind::Param ? BufferKind::Param
                                              : BufferKind::State;
    p.named.push_back({node.name, k, v, p.offsetOf[v], node.type});
  }
  std::vector<FunctionPlan> fps;
  for (const ir::Function& f : g.functions()) {
    FunctionPlan fp;
    fp.name = f.name;
    for (const ir::Output& o : f.outputs) {
      std::string name = fmt::format("{}.{}", f.name, o.name);
      int64_t bytes = g.type(o.value).byteSize();
      if (ir::isSource(g.node(o.value).op)) {
        // its own buffer, filled before any update of the source
        int64_t at = slot(bytes);
        fp.copies.push_back({name, fmt::format("%{}", o.value), at, p.offsetOf[o.value], bytes});
        p.named.push_back({name, BufferKind::Output, o.value, at, g.type(o.value)});
        fp.persistentBytes += alignUp(bytes);
        continue;
      }
      if (p.offsetOf[o.value] < 0) place(o.value);
      p.named.push_back({name, BufferKind::Output, o.value, p.offsetOf[o.value], g.type(o.value)});
      fp.persistentBytes += slotBytes(g, o.value);
    }
    fps.push_back(std::move(fp));
  }
  // staging for updates whose new value is another update's target (it must
  // be read before that update writes it); persistent, since it is rare
  std::vector<std::vector<int64_t>> stageAt(g.functions().size());
  for (size_t fi = 0; fi < g.functions().size(); ++fi) {
    const ir::Function& f = g.functions()[fi];
    std::vector<bool> target(n, false);
    for (const ir::Update& u : f.updates) target[u.target] = true;
    for (const ir::Update& u : f.updates) {
      bool stage = target[u.value] && u.value != u.target;
      stageAt[fi].push_back(stage ? slot(g.type(u.target).byteSize()) : -1);
      if (stage) fps[fi].persistentBytes += slotBytes(g, u.target);
    }
  }
  std::vector<std::vector<bool>> liveBy;  // by function: the values it computes or reads
  for (const ir::Function& f : g.functions()) liveBy.push_back(ir::ancestors(g, ir::functionRoots(f)));
  std::vector<std::vector<bool>> inPlace(g.functions().size());  // by function and update
  bool anyChecks = false;
  for (size_t fi = 0; fi < g.functions().size(); ++fi) {
    fps[fi].checks = indexChecks(g, ir::ancestors(g, ir::functionRoots(g.functions()[fi])));
    anyChecks = anyChecks || !fps[fi].checks.empty();
  }
  p.checked = opts.checked;
  p.errorOffset = anyChecks || opts.checked ? slot(16) : -1;
  if (opts.checked)
    for (FunctionPlan& fp : fps) fp.callCountOffset = slot(8);
  p.persistentBytes = cursor;

  const Aliases aliases = chooseAliases(g, p, !opts.checked, opts.placeConcatInputs, liveBy);
  const std::vector<ValueId>& baseOf = aliases.baseOf;
  const std::vector<ValueId>& rootOf = aliases.rootOf;

  // kernels, and each temporary's live ranges on the joint timeline
  std::vector<int32_t> tempIndex(n, -1);
  std::vector<Temp> temps;
  std::vector<std::vector<bool>> usedBy;  // by function: values its kernels touch
  int32_t base = 0;
  for (size_t fi = 0; fi < g.functions().size(); ++fi) {
    const ir::Function& f = g.functions()[fi];
    FunctionPlan& fp = fps[fi];
    const std::vector<bool>& live = liveBy[fi];
    for (ValueId v = 0; v < g.size(); ++v) {
      if (!live[v] || ir::isSource(g.node(v).op) || p.inlined[v]) continue;
      if (baseOf[v] >= 0) fp.views.push_back({v, baseOf[v], aliases.parentAt[v]});
      else if (aliases.assembled[v]) fp.assembled.push_back(v);
      else fp.kernels.push_back(makeKernel(g, v, p.inlined));
    }
    inPlace[fi].assign(f.updates.size(), false);
    if (!opts.checked) planInPlace(g, f, fi, liveBy, stageAt[fi], rootOf, fp, p, inPlace[fi]);
    if (!opts.checked && opts.fuse) planLoops(g, f, rootOf, p, fp);
    if (opts.checked) {
      // f32 inputs up front, then every f32 kernel output but constants
      // (an infinite constant is what the model says, e.g. a mask)
      for (ValueId in : f.inputs)
        if (g.type(in).dtype == ir::DType::F32) fp.finiteChecks.push_back({in, -1});
      for (size_t i = 0; i < fp.kernels.size(); ++i) {
        const ir::Node& kn = g.node(fp.kernels[i].value);
        if (kn.type.dtype == ir::DType::F32 && kn.op != OpKind::Constant)
          fp.finiteChecks.push_back({fp.kernels[i].value, static_cast<int32_t>(i)});
      }
    }
    const int32_t end = base + static_cast<int32_t>(fp.kernels.size());  // the copy phase
    std::vector<int32_t> first(n, -1), last(n, -1);
    // a fused loop's members all run at once: everything they touch is live
    // from its first member to its last
    for (size_t i = 0, head = 0; i < fp.kernels.size(); ++i) {
      if (fp.kernels[i].loopMembers != 0) head = i;
      // a placed concat input writes its concat's (root's) bytes: the root is
      // live from the first kernel writing any part of it
      ValueId v = rootOf[fp.kernels[i].value];
      int32_t lo = base + static_cast<int32_t>(head);
      int32_t hi = lo + std::max(fp.kernels[head].loopMembers, 1) - 1;
      first[v] = first[v] < 0 ? lo : std::min(first[v], lo);
      last[v] = std::max(last[v], hi);
      for (ValueId o : fp.kernels[i].inputs) last[rootOf[o]] = std::max(last[rootOf[o]], hi);
    }
    // values the end-of-call copies read stay live through them
    for (const ir::Update& u : f.updates) last[u.value] = end;
    std::vector<bool> used(n, false);
    for (ValueId v = 0; v < g.size(); ++v) {
      if (!live[v]) continue;
      if (p.inlined[v] || rootOf[v] != v) {  // fused, a view or placed: no buffer, but the naive plan would give it one
        fp.naiveBytes += slotBytes(g, v);
        p.naiveTempBytes += slotBytes(g, v);
        continue;
      }
      used[v] = true;
      if (p.offsetOf[v] >= 0) {
        if (ir::isSource(g.node(v).op)) fp.persistentBytes += slotBytes(g, v);
        continue;
      }
      if (tempIndex[v] < 0) {
        tempIndex[v] = static_cast<int32_t>(temps.size());
        temps.push_back({v, slotBytes(g, v), {}});
      }
      // a kernel nothing reads still writes its buffer at its own position
      temps[static_cast<size_t>(tempIndex[v])].ranges.push_back({first[v], std::max(first[v], last[v])});
      fp.naiveBytes += slotBytes(g, v);
    }
    usedBy.push_back(std::move(used));
    base = end + 1;
  }

  // arena offsets: both strategies, the smaller arena wins
  std::vector<size_t> order(temps.size());
  for (size_t t = 0; t < temps.size(); ++t) order[t] = t;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return temps[a].bytes > temps[b].bytes; });
  std::vector<std::vector<size_t>> adj = interference(temps);
  std::vector<int64_t> packed = packIntervals(temps, adj, order, p.packingBytes);
  std::vector<int64_t> colored = colorSlots(temps, adj, order, p.coloringBytes);
  bool useColoring = p.coloringBytes < p.packingBytes;
  p.strategy = useColoring ? ArenaStrategyKind::GraphColoring : ArenaStrategyKind::IntervalPacking;
  const std::vector<int64_t>& arena = useColoring ? colored : packed;
  p.tempBytes = useColoring ? p.coloringBytes : p.packingBytes;
  for (size_t t = 0; t < temps.size(); ++t) {
    p.offsetOf[temps[t].value] = p.persistentBytes + arena[t];
    p.naiveTempBytes += temps[t].bytes;
  }
  // views and placed concat inputs: their roots' buffers, at their offsets
  for (ValueId v = 0; v < g.size(); ++v)
    if (rootOf[v] != v && p.offsetOf[rootOf[v]] >= 0) p.offsetOf[v] = p.offsetOf[rootOf[v]] + aliases.rootAt[v];
  p.totalBytes = p.persistentBytes + p.tempBytes;
  for (const FunctionPlan& fp : fps)
    for (const Kernel& k : fp.kernels) p.scratchBytes = std::max(p.scratchBytes, k.scratchBytes);
  if (p.scratchBytes > 0) {
    p.scratchOffset = p.totalBytes;
    p.totalBytes += alignUp(p.scratchBytes);
  }

  for (size_t fi = 0; fi < g.functions().size(); ++fi) {
    const ir::Function& f = g.functions()[fi];
    FunctionPlan& fp = fps[fi];
    for (const Temp& t : temps)
      if (usedBy[fi][t.value])
        fp.arenaBytes = std::max(fp.arenaBytes, p.offsetOf[t.value] - p.persistentBytes + t.bytes);
    std::vector<Copy> updates;
    for (size_t ui = 0; ui < f.updates.size(); ++ui) {
      const ir::Update& u = f.updates[ui];
      if (u.value == u.target || inPlace[fi][ui]) continue;  // `w = w`, or written in place: nothing to copy
      int64_t bytes = g.type(u.target).byteSize();
      int64_t src = p.offsetOf[u.value];
      std::string srcName = fmt::format("%{}", u.value);
      if (stageAt[fi][ui] >= 0) {  // read the value before any update writes it
        fp.copies.push_back({"stage", srcName, stageAt[fi][ui], src, bytes});
        src = stageAt[fi][ui];
        srcName = "stage";
      }
      updates.push_back({fmt::format("%{}", u.target), srcName, p.offsetOf[u.target], src, bytes});
    }
    fp.copies.insert(fp.copies.end(), updates.begin(), updates.end());
    p.functions.push_back(std::move(fp));
  }
  return p;
}

FiniteCheckSite finiteCheckSite(const ir::Graph& g, ValueId v) {
  const ir::Node& n = g.node(v);
  FiniteCheckSite s;
  s.value = fmt::format("%{}", v);
  s.op = n.op == OpKind::Input ? "input" : std::string(ir::opName(n.op));
  if (n.op == OpKind::Input) s.name = n.name;
  s.loc = n.loc.valid() ? n.loc.str() : "";
  s.type = ir::typeStr(n.type);
  s.shape = n.type.shape;
  return s;
}

std::string printPlan(const ir::Graph& g, const ModulePlan& p) {
  std::string scratch = p.scratchBytes > 0 ? fmt::format(", {} scratch", p.scratchBytes) : "";
  std::string s = fmt::format("# memory: {} bytes ({} persistent, {} temporary{})\n", p.totalBytes, p.persistentBytes,
                              p.tempBytes, scratch);
  s += fmt::format("# arena: {} ({} bytes by interval packing, {} by graph coloring, {} with no reuse)\n",
                   arenaStrategyName(p.strategy), p.packingBytes, p.coloringBytes, p.naiveTempBytes);
  for (const NamedBuffer& b : p.named)
    s += fmt::format("buffer {:<8} {:<40} @{:<10} {}\n", bufferKindName(b.kind), b.name, b.offset, ir::typeStr(b.type));
  for (const FunctionPlan& f : p.functions) {
    std::string views = f.views.empty() ? "" : fmt::format(", {} views", f.views.size());
    if (!f.assembled.empty()) views += fmt::format(", {} assembled", f.assembled.size());
    s += fmt::format("\nfunc @{}: {} kernels{}\n", f.name, f.kernels.size(), views);
    for (size_t i = 0; i < f.kernels.size(); ++i) {
      ValueId v = f.kernels[i].value;
      const ir::Node& node = g.node(v);
      std::string ins;
      for (ValueId o : f.kernels[i].inputs) ins += fmt::format("{}%{}@{}", ins.empty() ? "" : ", ", o, p.offsetOf[o]);
      if (f.kernels[i].loopMembers > 1)
        s += fmt::format("  loop        k{}..k{} run as one loop\n", i, i + static_cast<size_t>(f.kernels[i].loopMembers) - 1);
      s += fmt::format("  k{:<4} {:<11} %{}@{}{} <- {}  : {}\n", i, ir::opName(node.op), v, p.offsetOf[v],
                       f.kernels[i].store ? "" : " (register)", ins, ir::typeStr(node.type));
      if (!f.kernels[i].fused.empty()) {
        std::string fused;
        for (ValueId o : f.kernels[i].fused)
          fused += fmt::format("{}%{} {}", fused.empty() ? "" : ", ", o, ir::opName(g.node(o).op));
        s += fmt::format("        fused: {}\n", fused);
      }
    }
    for (const View& w : f.views)
      s += fmt::format("  view        {:<11} %{}@{} <- %{}@{} +{}  : {}\n", ir::opName(g.node(w.value).op), w.value,
                       p.offsetOf[w.value], w.base, p.offsetOf[w.base], w.offset, ir::typeStr(g.type(w.value)));
    for (ValueId c : f.assembled)
      s += fmt::format("  assembled   {:<11} %{}@{} from its {} inputs written in place  : {}\n", ir::opName(g.node(c).op), c,
                       p.offsetOf[c], g.node(c).operands.size(), ir::typeStr(g.type(c)));
    for (const IndexCheck& c : f.checks)
      s += fmt::format("  check       %{} \"{}\" in [0, {}) for {}\n", c.input, g.node(c.input).name, c.bound, c.use);
    if (!f.finiteChecks.empty())
      s += fmt::format("  checked     {} f32 buffers scanned for non-finite values (call count @{})\n",
                       f.finiteChecks.size(), f.callCountOffset);
    for (const Copy& c : f.copies) s += fmt::format("  copy        {}@{} <- {}@{}\n", c.dst, c.dstOffset, c.src, c.srcOffset);
  }
  return s;
}

}  // namespace kiln::lower
