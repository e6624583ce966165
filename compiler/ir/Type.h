// Tensor types: an element type and a static shape.
#pragma once

#include <cstdint>
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

std::string shapeStr(const Shape& s);     // "[64,784]"
std::string typeStr(const TensorType& t); // "f32[64,784]"

// Row-major strides of a shape, in elements.
std::vector<int64_t> stridesOf(const Shape& s);

}  // namespace kiln::ir
