// Tensor types: an element type and a static shape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::ir {

enum class DType : uint8_t { F32, I32 };

std::string_view dtypeName(DType t);  // "f32", "i32"

using Shape = std::vector<int64_t>;

struct TensorType {
  DType dtype = DType::F32;
  Shape shape;  // empty = scalar

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t numElements() const;
  int64_t byteSize() const { return numElements() * 4; }
  bool operator==(const TensorType&) const = default;
};

// Largest element count a tensor may have (2^40: the byte size and every
// offset then fit in int64_t with room to spare).
inline constexpr int64_t kMaxElements = int64_t(1) << 40;
// The element count, or nullopt if a dimension is not positive or the count
// exceeds kMaxElements (checked without overflow).
std::optional<int64_t> checkedNumElements(const Shape& s);

std::string shapeStr(const Shape& s);     // "[64,784]"
std::string typeStr(const TensorType& t); // "f32[64,784]"

// Row-major strides of a shape, in elements.
std::vector<int64_t> stridesOf(const Shape& s);

}  // namespace kiln::ir
