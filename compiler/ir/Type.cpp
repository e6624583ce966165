// Tensor type helpers.
#include "Type.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln::ir {

std::string_view dtypeName(DType t) { return t == DType::F32 ? "f32" : "i32"; }

int64_t TensorType::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::optional<int64_t> checkedNumElements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d <= 0 || d > kMaxElements / n) return std::nullopt;
    n *= d;
  }
  return n;
}

std::string shapeStr(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ",")); }

std::string typeStr(const TensorType& t) {
  return fmt::format("{}{}", dtypeName(t.dtype), shapeStr(t.shape));
}

std::vector<int64_t> stridesOf(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

}  // namespace kiln::ir
