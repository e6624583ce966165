// Scheduling and buffer assignment for the kernel IR.
#include "Plan.h"

#include <fmt/format.h>

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

static int64_t alignUp(int64_t x) { return (x + kBufferAlign - 1) / kBufferAlign * kBufferAlign; }

ModulePlan planModule(const ir::Graph& g) {
  ModulePlan p;
  p.offsetOf.assign(static_cast<size_t>(g.size()), -1);
  int64_t cursor = 0;
  auto place = [&](ValueId v) {
    p.offsetOf[v] = cursor;
    cursor = alignUp(cursor + std::max<int64_t>(g.type(v).byteSize(), 1));
  };
  // persistent: sources first (in graph order), then function outputs
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (!ir::isSource(n.op)) continue;
    place(v);
    BufferKind k = n.op == OpKind::Input ? BufferKind::Input : n.op == OpKind::Param ? BufferKind::Param : BufferKind::State;
    p.named.push_back({n.name, k, v, p.offsetOf[v], n.type});
  }
  for (const ir::Function& f : g.functions())
    for (const ir::Output& o : f.outputs) {
      if (p.offsetOf[o.value] < 0) place(o.value);
      p.named.push_back({fmt::format("{}.{}", f.name, o.name), BufferKind::Output, o.value, p.offsetOf[o.value],
                         g.type(o.value)});
    }
  p.persistentBytes = cursor;
  // temporaries: one slot each, in graph order
  for (ValueId v = 0; v < g.size(); ++v)
    if (p.offsetOf[v] < 0) place(v);
  p.totalBytes = cursor;
  p.tempBytes = p.totalBytes - p.persistentBytes;

  for (const ir::Function& f : g.functions()) {
    FunctionPlan fp;
    fp.name = f.name;
    std::vector<bool> live = ir::ancestors(g, ir::functionRoots(f));
    for (ValueId v = 0; v < g.size(); ++v)
      if (live[v] && !ir::isSource(g.node(v).op)) fp.kernels.push_back({v});
    fp.updates = f.updates;
    p.functions.push_back(std::move(fp));
  }
  return p;
}

std::string printPlan(const ir::Graph& g, const ModulePlan& p) {
  std::string s = fmt::format("# memory: {} bytes ({} persistent, {} temporary)\n", p.totalBytes, p.persistentBytes,
                              p.tempBytes);
  for (const NamedBuffer& b : p.named)
    s += fmt::format("buffer {:<8} {:<40} @{:<10} {}\n", bufferKindName(b.kind), b.name, b.offset, ir::typeStr(b.type));
  for (const FunctionPlan& f : p.functions) {
    s += fmt::format("\nfunc @{}: {} kernels\n", f.name, f.kernels.size());
    for (size_t i = 0; i < f.kernels.size(); ++i) {
      ValueId v = f.kernels[i].value;
      const ir::Node& n = g.node(v);
      std::string ins;
      for (ValueId o : n.operands) ins += fmt::format("{}%{}@{}", ins.empty() ? "" : ", ", o, p.offsetOf[o]);
      s += fmt::format("  k{:<4} {:<11} %{}@{} <- {}  : {}\n", i, ir::opName(n.op), v, p.offsetOf[v], ins,
                       ir::typeStr(n.type));
    }
    for (const ir::Update& u : f.updates)
      s += fmt::format("  copy        %{}@{} <- %{}@{}\n", u.target, p.offsetOf[u.target], u.value, p.offsetOf[u.value]);
  }
  return s;
}

}  // namespace kiln::lower
