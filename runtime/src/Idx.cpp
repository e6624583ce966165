// IDX (MNIST) file reading and writing with byte-exact validation.
#include "kiln/rt/Idx.h"

#include "kiln/rt/Error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sys/stat.h>

namespace kiln::rt {

static constexpr uint8_t kUbyte = 0x08;

namespace {
struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;
} // namespace

static uint32_t readBigEndian32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

static void writeBigEndian32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

/// Reads exactly `bytes` at the current position or throws, naming `what`.
static void readExactly(std::FILE* f, const std::string& path, uint8_t* out, size_t bytes,
                        long long offset, const char* what) {
  size_t got = std::fread(out, 1, bytes, f);
  if (got != bytes)
    fail("%s: read error in %s at byte %lld: %s", path.c_str(), what, offset + (long long)got,
         std::ferror(f) ? std::strerror(errno) : "unexpected end of file");
}

IdxArray readIdx(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    fail("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    fail("%s: not a regular file", path.c_str());
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file)
    fail("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  auto fileSize = static_cast<long long>(st.st_size);

  if (fileSize < 4)
    fail("%s: truncated header: expected at least 4 bytes, found %lld", path.c_str(), fileSize);
  uint8_t magic[4];
  readExactly(file.get(), path, magic, 4, 0, "magic");
  if (magic[0] != 0 || magic[1] != 0)
    fail("%s: bad magic 0x%08X at byte 0: not an IDX file (expected 0x000008NN)", path.c_str(),
         readBigEndian32(magic));
  if (magic[2] != kUbyte)
    fail("%s: unsupported dtype 0x%02X at byte 2 (magic 0x%08X); only 0x08 (unsigned byte) is "
         "supported",
         path.c_str(), magic[2], readBigEndian32(magic));

  size_t ndims = magic[3];
  long long headerBytes = 4 + 4 * static_cast<long long>(ndims);
  if (fileSize < headerBytes)
    fail("%s: truncated header: expected %lld bytes for %zu dims, found %lld", path.c_str(),
         headerBytes, ndims, fileSize);
  std::vector<uint8_t> dimBytes(4 * ndims);
  readExactly(file.get(), path, dimBytes.data(), dimBytes.size(), 4, "dims");

  IdxArray array;
  long long dataBytes = fileSize - headerBytes;
  long long expected = 1;
  bool tooBig = false;
  for (size_t i = 0; i < ndims; ++i) {
    int64_t dim = readBigEndian32(&dimBytes[4 * i]);
    array.dims.push_back(dim);
    if (__builtin_mul_overflow(expected, static_cast<long long>(dim), &expected))
      tooBig = true;
  }
  if (tooBig)
    fail("%s: dims overflow 64 bits", path.c_str());
  if (dataBytes < expected)
    fail("%s: truncated: expected %lld data bytes, found %lld", path.c_str(), expected, dataBytes);
  if (dataBytes > expected)
    fail("%s: %lld trailing bytes after byte %lld: expected %lld data bytes, found %lld",
         path.c_str(), dataBytes - expected, headerBytes + expected, expected, dataBytes);

  array.data.resize(static_cast<size_t>(expected));
  readExactly(file.get(), path, array.data.data(), array.data.size(), headerBytes, "data");
  return array;
}

void writeIdx(const std::string& path, const IdxArray& array) {
  if (array.dims.size() > 255)
    fail("%s: writeIdx: %zu dims, at most 255 are allowed", path.c_str(), array.dims.size());
  std::vector<uint8_t> header(4 + 4 * array.dims.size());
  header[2] = kUbyte;
  header[3] = static_cast<uint8_t>(array.dims.size());
  uint64_t elements = 1;
  for (size_t i = 0; i < array.dims.size(); ++i) {
    int64_t dim = array.dims[i];
    if (dim < 0 || dim > int64_t(UINT32_MAX))
      fail("%s: writeIdx: dim %zu is %lld, outside 0..%u", path.c_str(), i, (long long)dim,
           UINT32_MAX);
    writeBigEndian32(&header[4 + 4 * i], static_cast<uint32_t>(dim));
    if (__builtin_mul_overflow(elements, static_cast<uint64_t>(dim), &elements))
      fail("%s: writeIdx: dims overflow 64 bits", path.c_str());
  }
  if (elements != array.data.size())
    fail("%s: writeIdx: dims hold %llu elements but data has %zu bytes", path.c_str(),
         (unsigned long long)elements, array.data.size());

  FilePtr file(std::fopen(path.c_str(), "wb"));
  if (!file)
    fail("%s: cannot write: %s", path.c_str(), std::strerror(errno));
  if (std::fwrite(header.data(), 1, header.size(), file.get()) != header.size() ||
      std::fwrite(array.data.data(), 1, array.data.size(), file.get()) != array.data.size())
    fail("%s: write failed: %s", path.c_str(), std::strerror(errno));
  if (std::fclose(file.release()) != 0)
    fail("%s: write failed: %s", path.c_str(), std::strerror(errno));
}

} // namespace kiln::rt
