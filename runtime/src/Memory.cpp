// Aligned, zero-filled allocation on top of std::aligned_alloc.
#include "kiln/rt/Memory.h"

#include "kiln/rt/Error.h"

#include <cstdlib>
#include <cstring>

namespace kiln::rt {

void* alignedAlloc(size_t bytes, size_t align) {
  if (align == 0 || (align & (align - 1)) != 0)
    fail("alignedAlloc: alignment %zu is not a power of two", align);
  if (align < sizeof(void*))
    align = sizeof(void*);
  // aligned_alloc wants a size that is a multiple of the alignment; a zero
  // request still gets one aligned block so the result is non-null and unique.
  size_t rounded = bytes == 0 ? align : (bytes + align - 1) / align * align;
  if (rounded < bytes)
    fail("alignedAlloc: %zu bytes overflows when rounded to alignment %zu", bytes, align);
  void* p = std::aligned_alloc(align, rounded);
  if (!p)
    fail("alignedAlloc: out of memory allocating %zu bytes (alignment %zu)", bytes, align);
  std::memset(p, 0, rounded);
  return p;
}

void alignedFree(void* p) noexcept { std::free(p); }

AlignedPtr makeAligned(size_t bytes, size_t align) {
  return AlignedPtr(static_cast<char*>(alignedAlloc(bytes, align)));
}

} // namespace kiln::rt
