// Reader and writer for IDX files, the format MNIST is distributed in:
// big-endian magic 00 00 <dtype> <ndims>, ndims big-endian u32 dims, data.
// Only dtype 0x08 (unsigned byte) is supported.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::rt {

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data; ///< Row-major, product(dims) bytes.
};

/// Reads a whole IDX file. Throws Error, message starting with the path, for
/// a missing file, wrong magic, unsupported dtype, truncated header or data,
/// or trailing bytes.
IdxArray readIdx(const std::string& path);

/// Writes an IDX ubyte file. Throws Error if dims and data disagree, a dim
/// does not fit in u32, there are more than 255 dims, or the write fails.
void writeIdx(const std::string& path, const IdxArray& array);

} // namespace kiln::rt
