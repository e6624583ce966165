// Checkpoints in the safetensors format: an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range,
// then the raw little-endian data. Other tools read these files as they are.
//
// Saving is atomic: the bytes go to a temporary file in the same directory,
// which is fsynced and renamed over the target, and the directory is fsynced,
// so a crash or kill -9 mid-save leaves the previous checkpoint intact. The
// temporary file is PATH.tmp-PID; the next save removes those left by
// processes that no longer exist.
//
// Loading validates everything before it writes a single byte into the
// model: the header length, the JSON, each entry's dtype, shape and offsets
// (in range, no overlap, no holes), a FNV-1a checksum of the data kept in
// __metadata__, and that the names, dtypes and shapes are exactly the ones
// the model expects. Every failure is an Error naming the file and what is
// wrong; docs/errors.md lists the messages.
#pragma once

#include "kiln/rt/Error.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::rt {

enum class TensorDType { F32, I32 };

/// "F32" or "I32", as the safetensors header spells them.
const char* dtypeName(TensorDType t);

/// One tensor to save (data read) or load (data written). Data is
/// row-major, product(shape) elements of 4 bytes; shape {} is a scalar.
struct CheckpointTensor {
  std::string name;
  TensorDType dtype = TensorDType::F32;
  std::vector<int64_t> shape;
  void* data = nullptr;
};

/// The metadata key holding the checksum ("fnv1a64:" + 16 hex digits).
inline constexpr const char* kChecksumKey = "kiln.checksum";

/// Writes `tensors` (in the given order) and `metadata` to `path`
/// atomically. kChecksumKey is added to the metadata. Throws Error on
/// duplicate names, a metadata key equal to kChecksumKey, or any I/O failure
/// (the previous file at `path`, if any, is then untouched).
void saveCheckpoint(const std::string& path, const std::vector<CheckpointTensor>& tensors,
                    const std::map<std::string, std::string>& metadata = {});

/// Reads `path` into the `expected` tensors' data. The file must hold
/// exactly these names with these dtypes and shapes. Nothing is written into
/// `expected` unless the whole file is valid. Returns the metadata (with
/// kChecksumKey). Throws Error naming the file and the problem.
std::map<std::string, std::string> loadCheckpoint(const std::string& path,
                                                  const std::vector<CheckpointTensor>& expected);

/// A validated file in memory, for tools and tests.
struct CheckpointFile {
  struct Entry {
    std::string name;
    TensorDType dtype = TensorDType::F32;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0; ///< Byte range within `data`.
  };
  std::vector<Entry> entries; ///< In header order.
  std::map<std::string, std::string> metadata;
  std::vector<char> data; ///< The data section.
};

/// Reads and validates `path` (format and checksum, not names or shapes).
CheckpointFile readCheckpoint(const std::string& path);

/// Same, from the bytes of a file; `path` is used in messages only.
CheckpointFile parseCheckpoint(const std::string& path, const char* bytes, size_t size);

/// 64-bit FNV-1a of `size` bytes.
uint64_t fnv1a64(const void* bytes, size_t size);

} // namespace kiln::rt
