// The IDX and MNIST loaders' refusals, each with the exact message
// docs/errors.md shows ("Data files"). Files are written into a fresh
// directory per case; messages start with the file's path.
#include <kiln/rt/Error.h>
#include <kiln/rt/Idx.h>
#include <kiln/rt/Mnist.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace kiln::rt;
namespace fs = std::filesystem;

namespace {

// A fresh directory, removed at scope exit.
struct Dir {
  fs::path path;
  Dir() {
    static int n = 0;
    path = fs::temp_directory_path() / ("kiln_loader_errors_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void writeBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// An IDX header: magic 00 00 08 <ndims>, then big-endian dims.
std::vector<uint8_t> header(const std::vector<uint32_t>& dims) {
  std::vector<uint8_t> b{0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  return b;
}

IdxArray array(std::vector<int64_t> dims) {
  IdxArray a;
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  a.dims = std::move(dims);
  a.data.assign(static_cast<size_t>(n), 3);
  return a;
}

std::string readError(const std::string& path) {
  try {
    readIdx(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(read)";
}

std::string mnistError(const std::string& dir, const std::string& split) {
  try {
    loadMnist(dir, split);
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded)";
}

}  // namespace

TEST_CASE("loaders: an IDX file that is missing, not a file, or not IDX") {
  Dir d;
  std::string p = d.file("x.idx");
  CHECK(readError(p) == p + ": cannot open: No such file or directory");
  CHECK(readError(d.path.string()) == d.path.string() + ": not a regular file");
  writeBytes(p, {});
  CHECK(readError(p) == p + ": truncated header: expected at least 4 bytes, found 0");
  writeBytes(p, {'P', 'K', 3, 4, 20, 0, 0, 0});  // a zip file
  CHECK(readError(p) == p + ": bad magic 0x504B0304 at byte 0: not an IDX file (expected 0x000008NN)");
  writeBytes(p, {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0x80, 0x3f});  // float data
  CHECK(readError(p) ==
        p + ": unsupported dtype 0x0D at byte 2 (magic 0x00000D01); only 0x08 (unsigned byte) is supported");
}

TEST_CASE("loaders: a truncated or overlong IDX file names the byte counts") {
  Dir d;
  std::string p = d.file("x.idx");
  std::vector<uint8_t> h = header({10, 28, 28});
  writeBytes(p, std::vector<uint8_t>(h.begin(), h.begin() + 9));
  CHECK(readError(p) == p + ": truncated header: expected 16 bytes for 3 dims, found 9");
  std::vector<uint8_t> f = h;
  f.resize(h.size() + 5000, 1);
  writeBytes(p, f);
  CHECK(readError(p) == p + ": truncated: expected 7840 data bytes, found 5000");
  f.resize(h.size() + 7840 + 2, 1);
  writeBytes(p, f);
  CHECK(readError(p) == p + ": 2 trailing bytes after byte 7856: expected 7840 data bytes, found 7842");
  // dims whose product overflows: refused before anything is allocated
  writeBytes(p, header({0xFFFFFFFF, 0xFFFFFFFF, 4}));
  CHECK(readError(p) == p + ": dims overflow 64 bits");
  // a 4 GiB claim in a 12-byte file: refused by size, not by a failed allocation
  writeBytes(p, header({0xFFFFFFFF, 1}));
  CHECK(readError(p) == p + ": truncated: expected 4294967295 data bytes, found 0");
}

TEST_CASE("loaders: writeIdx refuses what it cannot write") {
  Dir d;
  std::string p = d.file("x.idx");
  IdxArray a = array({2, 2});
  a.data.pop_back();
  CHECK_THROWS_WITH_AS(writeIdx(p, a), (p + ": writeIdx: dims hold 4 elements but data has 3 bytes").c_str(), Error);
  IdxArray big;
  big.dims = {int64_t(1) << 32};
  CHECK_THROWS_WITH_AS(writeIdx(p, big), (p + ": writeIdx: dim 0 is 4294967296, outside 0..4294967295").c_str(), Error);
  IdxArray many;
  many.dims.assign(256, 1);
  many.data = {0};
  CHECK_THROWS_WITH_AS(writeIdx(p, many), (p + ": writeIdx: 256 dims, at most 255 are allowed").c_str(), Error);
  std::string nowhere = d.file("no/such/dir/x.idx");
  CHECK_THROWS_WITH_AS(writeIdx(nowhere, array({1})), (nowhere + ": cannot write: No such file or directory").c_str(),
                       Error);
}

TEST_CASE("loaders: MNIST files that disagree with each other or with MNIST") {
  Dir d;
  const std::string dir = d.path.string();
  const std::string images = d.file("train-images-idx3-ubyte"), labels = d.file("train-labels-idx1-ubyte");
  CHECK(mnistError(dir, "valid") == "loadMnist: unknown split 'valid' (expected 'train' or 'test')");
  CHECK(mnistError(dir + "/nope", "train") ==
        dir + "/nope: MNIST directory not found; run scripts/fetch-data.sh (or make data)");
  CHECK(mnistError(dir, "train") == images + ": MNIST file not found; run scripts/fetch-data.sh (or make data)");

  writeIdx(images, array({4, 2, 3}));
  CHECK(mnistError(dir, "train") == labels + ": MNIST file not found; run scripts/fetch-data.sh (or make data)");
  IdxArray l = array({4});
  l.data = {1, 9, 0, 3};
  writeIdx(labels, l);
  CHECK(loadMnist(dir, "train").count == 4);  // the valid pair loads

  writeIdx(images, array({4, 6}));  // dimension mismatch: images must be [count, rows, cols]
  CHECK(mnistError(dir, "train") == images + ": expected 3 dims (count, rows, cols), found 2");
  writeIdx(images, array({4, 2, 3}));
  writeIdx(labels, array({4, 1}));
  CHECK(mnistError(dir, "train") == labels + ": expected 1 dim (count), found 2");
  writeIdx(labels, array({5}));
  CHECK(mnistError(dir, "train") == labels + ": 5 labels but train-images-idx3-ubyte has 4 images");
  l.data[2] = 12;
  writeIdx(labels, l);
  CHECK(mnistError(dir, "train") == labels + ": label 12 at index 2 (byte 10) is outside 0..9");

  // a damaged file inside the pair is reported by readIdx, naming that file
  writeBytes(labels, {0, 0, 8, 1, 0, 0, 0, 4, 1, 2});
  CHECK(mnistError(dir, "train") == labels + ": truncated: expected 4 data bytes, found 2");
}
