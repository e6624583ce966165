// fold: constant folding. A value computed from constants only (through any
// number of ops: a whole constant subgraph) is evaluated once at compile time
// by the reference interpreter, whose f32 arithmetic is the kernels'
// arithmetic, and replaced by a `const` when the result is a splat — the IR
// holds splat constants only. Intermediate results need not be splats:
// sum(onehot(const)) folds although onehot(const) stays a non-splat op (it is
// left for dce once nothing reads it).
//
// Bit-exactness: a splat is recognised by comparing bit patterns, and the
// const stores the f32 result as a double, which is exact and prints as the
// shortest text that reads back to the same double. NaN results are not
// folded: the printer writes every NaN as `nan`, which would lose the sign
// and payload the kernel produces (x86 gives -nan for 0/0).
//
// Cost guard: constant values over kMaxFoldElements elements, and matmuls
// over kMaxFoldFlops multiply-adds, are left to run as kernels, so a pass run
// never evaluates a huge tensor in the interpreter.
#include <cmath>
#include <cstring>
#include <map>

#include "Passes.h"
#include "Rewrite.h"
#include "interp/Interpreter.h"

namespace kiln::passes {
namespace {

using ir::Node;
using ir::OpKind;
using ir::ValueId;

constexpr int64_t kMaxFoldElements = int64_t(1) << 22;
constexpr int64_t kMaxFoldFlops = int64_t(1) << 26;

bool cheapToEvaluate(const ir::Graph& g, const Node& n) {
  if (n.type.numElements() > kMaxFoldElements) return false;
  for (ValueId o : n.operands)
    if (g.type(o).numElements() > kMaxFoldElements) return false;
  if (n.op == OpKind::MatMul) {
    const ir::TensorType& a = g.type(n.operands[0]);
    int64_t k = n.attrs.getInt("ta", 0) ? a.shape[0] : a.shape[1];
    if (n.type.numElements() * k > kMaxFoldFlops) return false;
  }
  return true;
}

// The splat value of t as a const would store it, or nullopt.
std::optional<double> splatOf(const interp::HostTensor& t) {
  if (t.type.dtype == ir::DType::F32) {
    if (t.f.empty() || std::isnan(t.f[0])) return std::nullopt;
    for (float x : t.f)
      if (std::memcmp(&x, &t.f[0], sizeof x) != 0) return std::nullopt;
    return static_cast<double>(t.f[0]);
  }
  if (t.i.empty()) return std::nullopt;
  for (int32_t x : t.i)
    if (x != t.i[0]) return std::nullopt;
  return static_cast<double>(t.i[0]);
}

// Whether two const values fill the same f32 bits.
bool sameF32(double a, double b) {
  float fa = static_cast<float>(a), fb = static_cast<float>(b);
  return std::memcmp(&fa, &fb, sizeof fa) == 0;
}

}  // namespace

bool runFold(ir::Graph& g) {
  // constant-derived values: consts, and ops whose operands all are
  std::vector<bool> constant(static_cast<size_t>(g.size()), false);
  std::vector<ValueId> roots;
  for (ValueId v = 0; v < g.size(); ++v) {
    const Node& n = g.node(v);
    if (ir::isSource(n.op) || !cheapToEvaluate(g, n)) continue;
    bool all = true;
    for (ValueId o : n.operands) all &= constant[o];
    constant[v] = all;
    if (all && n.op != OpKind::Constant) roots.push_back(v);
  }
  if (roots.empty()) return false;
  std::vector<interp::HostTensor> values = interp::evaluate(g, roots, {});
  std::map<ValueId, double> folded;  // by old id, in id order
  for (size_t i = 0; i < roots.size(); ++i) {
    auto s = splatOf(values[i]);
    if (!s) continue;
    // Keep an operand's spelling when it denotes the same f32 (a broadcast
    // of `0.9` stays `0.9`, not 0.8999999761581421): only the f32 matters.
    for (ValueId o : g.node(roots[i]).operands) {
      std::optional<double> c = constValue(g.node(o));
      if (auto it = folded.find(o); it != folded.end()) c = it->second;
      if (c && g.type(o).dtype == values[i].type.dtype && sameF32(*c, *s)) {
        s = c;
        break;
      }
    }
    folded.emplace(roots[i], *s);
  }
  if (folded.empty()) return false;

  Rebuilder rb(g);
  for (ValueId v = 0; v < g.size(); ++v) {
    auto it = folded.find(v);
    if (it == folded.end()) {
      rb.keep(v);
      continue;
    }
    const Node& old = g.node(v);
    Node c;
    c.op = OpKind::Constant;
    c.type = old.type;
    c.loc = old.loc;
    c.attrs.set("value", it->second);
    rb.replace(v, rb.emit(std::move(c)));
  }
  return rb.finish(g);
}

}  // namespace kiln::passes
