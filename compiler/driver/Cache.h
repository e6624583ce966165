// The compile cache: object code of earlier JIT compiles on disk, keyed by a
// hash of everything that determines it, so that compiling the same model
// again (the next run of a program) skips LLVM.
//
// The key is SHA-256 over the final graph's text (after the passes), the
// plan options, the symbol prefix, codegen::targetDescription (triple, CPU,
// features, LLVM version) and the identity of the compiler itself (kFormat
// and the GNU build id of the binary kiln is linked into, so any rebuild of
// kiln starts afresh). Entries live in $KILN_CACHE_DIR (default
// ~/.cache/kiln), one file <key>.kobj each:
//
//   "KILNOBJ1" | u64 payload bytes | 32-byte key | 32-byte SHA-256 of payload | payload
//
// A file whose magic, key, size or checksum does not match is ignored (and
// replaced by the recompiled object); files are written to a temporary name
// and renamed into place, so a reader never sees a half-written entry.
// KILN_CACHE=0 turns the cache off (the test suite does, see
// tests/TestEnvironment.cmake); nothing ever evicts entries.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kiln::driver {

struct CacheConfig {
  bool enabled = false;
  std::string dir;
};

// From the environment: KILN_CACHE=0 off; $KILN_CACHE_DIR, else
// $HOME/.cache/kiln (off when neither is set or the build id is unknown).
CacheConfig cacheConfig();

// Hex SHA-256 over the parts, each length-prefixed, and kiln's identity.
std::string cacheKey(const std::vector<std::string>& parts);

// The object stored under `key`, if the entry is complete and intact.
std::optional<std::vector<char>> cacheLoad(const CacheConfig& c, const std::string& key);

// Stores `object` under `key` atomically; false (and nothing written) on
// any I/O error: the cache is an optimization and never fails a compile.
bool cacheStore(const CacheConfig& c, const std::string& key, const std::vector<char>& object);

// The path of the entry for `key` (for tests and diagnostics).
std::string cachePath(const CacheConfig& c, const std::string& key);

}  // namespace kiln::driver
