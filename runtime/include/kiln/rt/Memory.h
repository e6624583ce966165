// Aligned, zero-filled buffers for tensors: 64-byte alignment suits AVX-512
// loads and keeps buffers from sharing cache lines.
#pragma once

#include <cstddef>
#include <memory>

namespace kiln::rt {

/// Returns zero-filled memory aligned to `align` (a power of two). bytes == 0
/// returns a valid, non-null, distinct allocation. Throws Error on failure.
/// Free with alignedFree.
void* alignedAlloc(size_t bytes, size_t align = 64);

/// Frees memory from alignedAlloc; null is ignored.
void alignedFree(void* p) noexcept;

struct AlignedDeleter {
  void operator()(void* p) const noexcept { alignedFree(p); }
};

/// Owning pointer to an alignedAlloc'd buffer.
using AlignedPtr = std::unique_ptr<char[], AlignedDeleter>;

/// alignedAlloc wrapped in an AlignedPtr.
AlignedPtr makeAligned(size_t bytes, size_t align = 64);

} // namespace kiln::rt
