// The reference interpreter: evaluates any graph op by op with plain loops.
// It is the oracle every compiled result is tested against, so it favours
// obviousness over speed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/Graph.h"

namespace kiln::interp {

// A host tensor: f32 values live in `f`, i32 values in `i`.
struct HostTensor {
  ir::TensorType type;
  std::vector<float> f;
  std::vector<int32_t> i;

  static HostTensor zeros(const ir::TensorType& t);
  int64_t size() const { return type.numElements(); }
  void* data() { return type.dtype == ir::DType::F32 ? static_cast<void*>(f.data()) : i.data(); }
};

// Evaluates `roots`. `sources` must hold a value for every input, param and
// state the roots depend on.
std::vector<HostTensor> evaluate(const ir::Graph& g, const std::vector<ir::ValueId>& roots,
                                 const std::map<ir::ValueId, HostTensor>& sources);

// Named storage and entry points, mirroring a compiled module: the oracle
// side of every interpreter-vs-compiled test.
class Session {
public:
  explicit Session(const ir::Graph& g);
  void init(uint64_t seed);
  // An input, param or state by name.
  HostTensor& source(std::string_view name);
  void run(std::string_view function);
  const HostTensor& output(std::string_view function, std::string_view name) const;

private:
  const ir::Graph& g_;
  std::map<ir::ValueId, HostTensor> sources_;
  std::map<std::string, HostTensor, std::less<>> outputs_;  // "fn.name"
};

}  // namespace kiln::interp
