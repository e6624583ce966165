// Initializer specs of params and state.
#include "InitSpec.h"

#include <cstring>
#include <fmt/format.h>

namespace kiln::ir {

static uint64_t nameHash(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

InitSpec initSpecOf(const Node& n) {
  InitSpec s;
  std::string kind = n.attrs.has("init") ? n.attrs.getString("init") : "zeros";
  if (!rt::parseInitKind(kind, s.kind))
    throw CompileError(fmt::format("{} \"{}\": unknown initializer \"{}\"", opName(n.op), n.name, kind));
  s.a = static_cast<float>(n.attrs.has("a") ? n.attrs.getFloat("a") : 0.0);
  s.b = static_cast<float>(n.attrs.has("b") ? n.attrs.getFloat("b") : 0.0);
  s.fanIn = n.attrs.getInt("fan_in", 1);
  s.fanOut = n.attrs.getInt("fan_out", 1);
  s.stream = nameHash(n.name);
  return s;
}

void initSource(const Node& n, void* data, uint64_t seed) {
  int64_t count = n.type.numElements();
  InitSpec s = initSpecOf(n);
  if (n.type.dtype == DType::I32) {
    if (s.kind == rt::InitKind::Seed) rt::initSeedKey(static_cast<int32_t*>(data), count, seed, s.stream);
    else std::memset(data, 0, static_cast<size_t>(count) * 4);
    return;
  }
  rt::initTensor(static_cast<float*>(data), count, s.kind, s.a, s.b, s.fanIn, s.fanOut, seed, s.stream);
}

}  // namespace kiln::ir
