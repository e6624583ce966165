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
  auto slot = [&](int64_t bytes) {
    int64_t at = cursor;
    cursor = alignUp(cursor + std::max<int64_t>(bytes, 1));
    return at;
  };
  auto place = [&](ValueId v) { p.offsetOf[v] = slot(g.type(v).byteSize()); };
  // persistent: sources first (in graph order), then function outputs
  for (ValueId v = 0; v < g.size(); ++v) {
    const ir::Node& n = g.node(v);
    if (!ir::isSource(n.op)) continue;
    place(v);
    BufferKind k = n.op == OpKind::Input ? BufferKind::Input : n.op == OpKind::Param ? BufferKind::Param : BufferKind::State;
    p.named.push_back({n.name, k, v, p.offsetOf[v], n.type});
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
        continue;
      }
      if (p.offsetOf[o.value] < 0) place(o.value);
      p.named.push_back({name, BufferKind::Output, o.value, p.offsetOf[o.value], g.type(o.value)});
    }
    fps.push_back(std::move(fp));
  }
  p.persistentBytes = cursor;
  // temporaries: one slot each, in graph order
  for (ValueId v = 0; v < g.size(); ++v)
    if (p.offsetOf[v] < 0) place(v);

  for (size_t fi = 0; fi < g.functions().size(); ++fi) {
    const ir::Function& f = g.functions()[fi];
    FunctionPlan& fp = fps[fi];
    std::vector<bool> live = ir::ancestors(g, ir::functionRoots(f));
    for (ValueId v = 0; v < g.size(); ++v)
      if (live[v] && !ir::isSource(g.node(v).op)) fp.kernels.push_back({v});
    std::vector<bool> target(static_cast<size_t>(g.size()), false);
    for (const ir::Update& u : f.updates) target[u.target] = true;
    std::vector<Copy> updates;
    for (const ir::Update& u : f.updates) {
      int64_t bytes = g.type(u.target).byteSize();
      int64_t src = p.offsetOf[u.value];
      std::string srcName = fmt::format("%{}", u.value);
      if (target[u.value] && u.value != u.target) {  // read the value before any update writes it
        int64_t at = slot(bytes);
        fp.copies.push_back({"stage", srcName, at, src, bytes});
        src = at;
        srcName = "stage";
      }
      updates.push_back({fmt::format("%{}", u.target), srcName, p.offsetOf[u.target], src, bytes});
    }
    fp.copies.insert(fp.copies.end(), updates.begin(), updates.end());
    p.functions.push_back(std::move(fp));
  }
  p.totalBytes = cursor;
  p.tempBytes = p.totalBytes - p.persistentBytes;
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
    for (const Copy& c : f.copies) s += fmt::format("  copy        {}@{} <- {}@{}\n", c.dst, c.dstOffset, c.src, c.srcOffset);
  }
  return s;
}

}  // namespace kiln::lower
