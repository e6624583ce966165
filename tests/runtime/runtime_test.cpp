// Unit tests for kiln_rt: memory, random numbers and initializers, IDX and
// MNIST loading, batching, progress output and argument parsing.
#include "kiln/rt/Runtime.h"
#include "kiln/rt/Parallel.h"

#include <atomic>
#include <thread>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

using namespace kiln::rt;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path Path;
  TempDir() {
    static int counter = 0;
    Path = fs::temp_directory_path() /
           ("kiln_rt_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(Path);
    fs::create_directories(Path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(Path, ec);
  }
  std::string file(const char* name) const { return (Path / name).string(); }
};

void writeBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
}

std::vector<uint8_t> readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

IdxArray iotaArray(std::vector<int64_t> dims) {
  IdxArray a;
  a.dims = std::move(dims);
  int64_t n = 1;
  for (int64_t d : a.dims)
    n *= d;
  a.data.resize((size_t)n);
  for (size_t i = 0; i < a.data.size(); ++i)
    a.data[i] = uint8_t(i * 7 + 1);
  return a;
}

uint32_t floatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

struct Moments {
  double Mean = 0, Var = 0, Min = 0, Max = 0;
};

Moments moments(const std::vector<float>& v) {
  Moments m;
  m.Min = m.Max = v[0];
  for (float x : v) {
    m.Mean += x;
    m.Min = std::min(m.Min, (double)x);
    m.Max = std::max(m.Max, (double)x);
  }
  m.Mean /= (double)v.size();
  for (float x : v)
    m.Var += (x - m.Mean) * (x - m.Mean);
  m.Var /= (double)v.size();
  return m;
}

std::vector<float> initVector(int64_t n, InitKind kind, float a, float b, int64_t fanIn,
                              int64_t fanOut, uint64_t seed, uint64_t stream) {
  std::vector<float> v((size_t)n, -123.0f);
  initTensor(v.data(), n, kind, a, b, fanIn, fanOut, seed, stream);
  return v;
}

/// argv for Args from a list of strings (the strings must outlive the result).
std::vector<char*> makeArgv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& s : args)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  return argv;
}

/// Where scripts/fetch-data.sh put the data, or "" if it has not been run.
std::string findMnistDir() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("KILN_MNIST_DIR"))
    candidates.emplace_back(env);
  candidates.push_back(fs::path(__FILE__).parent_path() / "../../data/mnist");
  for (fs::path dir = fs::current_path(); !dir.empty(); dir = dir.parent_path()) {
    candidates.push_back(dir / "data/mnist");
    if (dir == dir.root_path())
      break;
  }
  for (const fs::path& dir : candidates)
    if (fs::exists(dir / "train-images-idx3-ubyte") && fs::exists(dir / "t10k-labels-idx1-ubyte"))
      return dir.string();
  return "";
}

std::string readAll(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    out.append(buf, n);
  return out;
}

} // namespace

TEST_SUITE("runtime") {

TEST_CASE("strFormat and fail build messages") {
  CHECK(strFormat("%s:%d: %s", "model.cpp", 14, "matmul") == "model.cpp:14: matmul");
  std::string longText(1000, 'x');
  CHECK(strFormat("<%s>", longText.c_str()).size() == 1002);
  CHECK_THROWS_WITH_AS(fail("bad %d", 3), "bad 3", Error);
}

TEST_CASE("alignedAlloc returns aligned zero-filled memory") {
  for (size_t bytes : {size_t(1), size_t(63), size_t(64), size_t(1000), size_t(1) << 20}) {
    auto* p = static_cast<unsigned char*>(alignedAlloc(bytes));
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    CHECK(std::all_of(p, p + bytes, [](unsigned char c) { return c == 0; }));
    alignedFree(p);
  }
  void* a = alignedAlloc(0);
  void* b = alignedAlloc(0);
  CHECK(a != nullptr);
  CHECK(b != nullptr);
  CHECK(a != b);
  alignedFree(a);
  alignedFree(b);
  void* page = alignedAlloc(10, 4096);
  CHECK(reinterpret_cast<uintptr_t>(page) % 4096 == 0);
  alignedFree(page);
  alignedFree(nullptr);

  CHECK_THROWS_WITH_AS(alignedAlloc(10, 48), "alignedAlloc: alignment 48 is not a power of two",
                       Error);
  CHECK_THROWS_AS(alignedAlloc(SIZE_MAX - 10), Error);

  AlignedPtr buf = makeAligned(256);
  CHECK(reinterpret_cast<uintptr_t>(buf.get()) % 64 == 0);
  CHECK(buf[255] == 0);
}

TEST_CASE("mix64 is the SplitMix64 finalizer") {
  // The first three outputs of the reference splitmix64 seeded with 0.
  const uint64_t golden = 0x9E3779B97F4A7C15ull;
  CHECK(mix64(golden * 1) == 0xE220A8397B1DCDAFull);
  CHECK(mix64(golden * 2) == 0x6E789E6AA1B965F4ull);
  CHECK(mix64(golden * 3) == 0x06C45D188009454Full);
  CHECK(mix64(0) == 0);
}

TEST_CASE("random values are pinned functions of (seed, stream, counter)") {
  // Checkpoints and tests depend on these bits: a change here is a format break.
  CHECK(floatBits(uniform01(42, 0, 0)) == 0x3ec6217eu);
  CHECK(floatBits(normal01(42, 0, 0)) == 0x3f44e549u);
  CHECK(random64(42, 7, 3) == 0xcac75112efad24e6ull);

  CHECK(random64(1, 2, 3) == random64(1, 2, 3));
  CHECK(random64(1, 2, 3) != random64(2, 2, 3));
  CHECK(random64(1, 2, 3) != random64(1, 3, 3));
  CHECK(random64(1, 2, 3) != random64(1, 2, 4));

  std::set<uint64_t> seen;
  for (uint64_t c = 0; c < 10000; ++c)
    seen.insert(random64(5, 0, c));
  CHECK(seen.size() == 10000);
}

TEST_CASE("uniform01 lies in 0 to 1 (exclusive) on a 2^-24 grid with the right moments") {
  std::vector<float> v(200000);
  for (size_t i = 0; i < v.size(); ++i) {
    float u = uniform01(7, 1, i);
    REQUIRE(u >= 0.0f);
    REQUIRE(u < 1.0f);
    float scaled = u * 16777216.0f;
    REQUIRE(scaled == std::floor(scaled));
    v[i] = u;
  }
  Moments m = moments(v);
  CHECK(m.Mean == doctest::Approx(0.5).epsilon(0.01));
  CHECK(m.Var == doctest::Approx(1.0 / 12).epsilon(0.02));
  CHECK(m.Min < 0.001);
  CHECK(m.Max > 0.999);
}

TEST_CASE("normal01 is finite with mean 0 and variance 1") {
  std::vector<float> v(200000);
  int beyond2 = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = normal01(11, 3, i);
    REQUIRE(std::isfinite(v[i]));
    REQUIRE(std::fabs(v[i]) < 6.7f);
    beyond2 += std::fabs(v[i]) > 2.0f;
  }
  Moments m = moments(v);
  CHECK(std::fabs(m.Mean) < 0.01);
  CHECK(m.Var == doctest::Approx(1.0).epsilon(0.02));
  // P(|z| > 2) = 0.0455.
  CHECK((double)beyond2 / (double)v.size() == doctest::Approx(0.0455).epsilon(0.06));
}

TEST_CASE("uniformBelow is the high half of a 128-bit product") {
  for (uint64_t n : {uint64_t(1), uint64_t(2), uint64_t(10), uint64_t(1) << 40,
                     ~uint64_t(0)}) {
    for (uint64_t c = 0; c < 1000; ++c) {
      uint64_t r = random64(3, 4, c);
      __extension__ using U128 = unsigned __int128;
      auto expected = (uint64_t)(((U128)r * n) >> 64);
      REQUIRE(uniformBelow(n, 3, 4, c) == expected);
      REQUIRE(uniformBelow(n, 3, 4, c) < n);
    }
  }
  std::vector<int> counts(6);
  for (uint64_t c = 0; c < 60000; ++c)
    counts[uniformBelow(6, 9, 0, c)]++;
  for (int k : counts)
    CHECK(std::abs(k - 10000) < 400);
}

TEST_CASE("init kind names round-trip") {
  const char* names[] = {"zeros",  "constant",   "uniform",  "normal",
                         "xavier_uniform", "he_uniform", "he_normal"};
  for (int i = 0; i < 7; ++i) {
    CHECK(std::string(initKindName(static_cast<InitKind>(i))) == names[i]);
    InitKind kind = InitKind::Zeros;
    CHECK(parseInitKind(names[i], kind));
    CHECK(static_cast<int>(kind) == i);
  }
  InitKind kind = InitKind::Normal;
  CHECK_FALSE(parseInitKind("glorot", kind));
  CHECK(kind == InitKind::Normal);
  CHECK(std::string(initKindName(static_cast<InitKind>(99))) == "?");
}

TEST_CASE("initTensor is deterministic and independent of the tensor size") {
  auto a = initVector(1000, InitKind::HeNormal, 0, 0, 128, 64, 42, 3);
  auto b = initVector(1000, InitKind::HeNormal, 0, 0, 128, 64, 42, 3);
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  auto otherSeed = initVector(1000, InitKind::HeNormal, 0, 0, 128, 64, 43, 3);
  auto otherStream = initVector(1000, InitKind::HeNormal, 0, 0, 128, 64, 42, 4);
  CHECK(std::memcmp(a.data(), otherSeed.data(), a.size() * sizeof(float)) != 0);
  CHECK(std::memcmp(a.data(), otherStream.data(), a.size() * sizeof(float)) != 0);
  // Element i uses counter i: a shorter tensor is a prefix of a longer one.
  auto prefix = initVector(10, InitKind::HeNormal, 0, 0, 128, 64, 42, 3);
  CHECK(std::memcmp(a.data(), prefix.data(), prefix.size() * sizeof(float)) == 0);
  CHECK(a[5] == normal01(42, 3, 5) * (float)std::sqrt(2.0 / 128));
}

TEST_CASE("initTensor kinds have the documented values and moments") {
  const int64_t n = 100000;
  auto zeros = initVector(n, InitKind::Zeros, 5, 6, 1, 1, 1, 0);
  CHECK(std::all_of(zeros.begin(), zeros.end(), [](float x) { return x == 0.0f; }));
  auto constant = initVector(n, InitKind::Constant, 0.25f, 9, 1, 1, 1, 0);
  CHECK(std::all_of(constant.begin(), constant.end(), [](float x) { return x == 0.25f; }));

  SUBCASE("uniform") {
    Moments m = moments(initVector(n, InitKind::Uniform, 2, 5, 0, 0, 1, 0));
    CHECK(m.Min >= 2.0);
    CHECK(m.Max < 5.0);
    CHECK(m.Mean == doctest::Approx(3.5).epsilon(0.01));
    CHECK(m.Var == doctest::Approx(9.0 / 12).epsilon(0.03));
  }
  SUBCASE("normal") {
    Moments m = moments(initVector(n, InitKind::Normal, 1, 2, 0, 0, 1, 0));
    CHECK(m.Mean == doctest::Approx(1.0).epsilon(0.03));
    CHECK(std::sqrt(m.Var) == doctest::Approx(2.0).epsilon(0.02));
  }
  SUBCASE("xavier_uniform") {
    double limit = std::sqrt(6.0 / (300 + 100));
    Moments m = moments(initVector(n, InitKind::XavierUniform, 0, 0, 300, 100, 1, 0));
    CHECK(m.Min >= -limit);
    CHECK(m.Max < limit);
    CHECK(m.Max > 0.99 * limit);
    CHECK(std::fabs(m.Mean) < 0.01 * limit);
    CHECK(m.Var == doctest::Approx(limit * limit / 3).epsilon(0.03));
  }
  SUBCASE("he_uniform") {
    double limit = std::sqrt(6.0 / 50);
    Moments m = moments(initVector(n, InitKind::HeUniform, 0, 0, 50, 7, 1, 0));
    CHECK(m.Min >= -limit);
    CHECK(m.Max < limit);
    CHECK(m.Var == doctest::Approx(limit * limit / 3).epsilon(0.03));
  }
  SUBCASE("he_normal") {
    Moments m = moments(initVector(n, InitKind::HeNormal, 0, 0, 200, 7, 1, 0));
    CHECK(std::fabs(m.Mean) < 0.01 * std::sqrt(2.0 / 200) * 3);
    CHECK(std::sqrt(m.Var) == doctest::Approx(std::sqrt(2.0 / 200)).epsilon(0.02));
  }
}

TEST_CASE("initTensor rejects bad arguments") {
  float x[4];
  CHECK_THROWS_WITH_AS(initTensor(x, 4, InitKind::HeNormal, 0, 0, 0, 10, 1, 0),
                       "initTensor: he_normal: fanIn must be positive, got 0", Error);
  CHECK_THROWS_WITH_AS(initTensor(x, 4, InitKind::XavierUniform, 0, 0, 0, 0, 1, 0),
                       "initTensor: xavier_uniform: fanIn + fanOut must be positive, got 0",
                       Error);
  CHECK_THROWS_WITH_AS(initTensor(x, -1, InitKind::Zeros, 0, 0, 1, 1, 1, 0),
                       "initTensor: zeros: negative element count -1", Error);
  CHECK_THROWS_AS(initTensor(x, 4, static_cast<InitKind>(42), 0, 0, 1, 1, 1, 0), Error);
  initTensor(nullptr, 0, InitKind::Normal, 0, 1, 1, 1, 1, 0); // empty is fine
}

TEST_CASE("writeIdx and readIdx round-trip") {
  TempDir tmp;
  std::string path = tmp.file("a.idx");
  IdxArray a = iotaArray({2, 3, 4});
  writeIdx(path, a);
  std::vector<uint8_t> bytes = readBytes(path);
  REQUIRE(bytes.size() == 16 + 24);
  CHECK(bytes[0] == 0x00);
  CHECK(bytes[1] == 0x00);
  CHECK(bytes[2] == 0x08);
  CHECK(bytes[3] == 0x03);
  CHECK(bytes[7] == 2); // big-endian dims
  CHECK(bytes[11] == 3);
  CHECK(bytes[15] == 4);
  IdxArray b = readIdx(path);
  CHECK(b.dims == a.dims);
  CHECK(b.data == a.data);

  IdxArray big;
  big.dims = {300};
  big.data.assign(300, 9);
  writeIdx(path, big);
  bytes = readBytes(path);
  CHECK(bytes[3] == 1);
  CHECK(bytes[6] == 0x01); // 300 = 0x012C
  CHECK(bytes[7] == 0x2C);
  CHECK(readIdx(path).dims == std::vector<int64_t>{300});

  IdxArray bad;
  bad.dims = {2, 2};
  bad.data.assign(3, 0);
  CHECK_THROWS_WITH_AS(writeIdx(path, bad),
                       (path + ": writeIdx: dims hold 4 elements but data has 3 bytes").c_str(),
                       Error);
}

TEST_CASE("readIdx rejects malformed files with what and where") {
  TempDir tmp;
  std::string path = tmp.file("x.idx");
  IdxArray good = iotaArray({8, 28, 28});
  writeIdx(path, good);
  const std::vector<uint8_t> full = readBytes(path);

  SUBCASE("missing file") {
    std::string missing = tmp.file("nope.idx");
    CHECK_THROWS_WITH_AS(readIdx(missing),
                         (missing + ": cannot open: No such file or directory").c_str(), Error);
  }
  SUBCASE("truncated data") {
    writeBytes(path, std::vector<uint8_t>(full.begin(), full.begin() + 16 + 100));
    CHECK_THROWS_WITH_AS(readIdx(path),
                         (path + ": truncated: expected 6272 data bytes, found 100").c_str(),
                         Error);
  }
  SUBCASE("truncated header") {
    writeBytes(path, std::vector<uint8_t>(full.begin(), full.begin() + 6));
    CHECK_THROWS_WITH_AS(
        readIdx(path),
        (path + ": truncated header: expected 16 bytes for 3 dims, found 6").c_str(), Error);
    writeBytes(path, {0, 0});
    CHECK_THROWS_WITH_AS(
        readIdx(path), (path + ": truncated header: expected at least 4 bytes, found 2").c_str(),
        Error);
  }
  SUBCASE("wrong magic") {
    writeBytes(path, {'P', 'K', 3, 4, 0, 0, 0, 0});
    CHECK_THROWS_WITH_AS(
        readIdx(path),
        (path + ": bad magic 0x504B0304 at byte 0: not an IDX file (expected 0x000008NN)").c_str(),
        Error);
  }
  SUBCASE("unsupported dtype") {
    std::vector<uint8_t> floats = full;
    floats[2] = 0x0D;
    writeBytes(path, floats);
    CHECK_THROWS_WITH_AS(readIdx(path),
                         (path + ": unsupported dtype 0x0D at byte 2 (magic 0x00000D03); only "
                                 "0x08 (unsigned byte) is supported")
                             .c_str(),
                         Error);
  }
  SUBCASE("trailing bytes") {
    std::vector<uint8_t> longer = full;
    longer.insert(longer.end(), {1, 2, 3});
    writeBytes(path, longer);
    CHECK_THROWS_WITH_AS(readIdx(path),
                         (path + ": 3 trailing bytes after byte 6288: expected 6272 data "
                                 "bytes, found 6275")
                             .c_str(),
                         Error);
  }
  SUBCASE("directory") {
    CHECK_THROWS_WITH_AS(readIdx(tmp.Path.string()),
                         (tmp.Path.string() + ": not a regular file").c_str(), Error);
  }
}

TEST_CASE("loadMnist reads, scales and checks a split") {
  TempDir tmp;
  IdxArray images = iotaArray({5, 2, 3});
  IdxArray labels;
  labels.dims = {5};
  labels.data = {3, 0, 9, 1, 7};
  writeIdx(tmp.file("train-images-idx3-ubyte"), images);
  writeIdx(tmp.file("train-labels-idx1-ubyte"), labels);
  std::string dir = tmp.Path.string();

  Dataset ds = loadMnist(dir, "train");
  CHECK(ds.count == 5);
  CHECK(ds.features == 6);
  REQUIRE(ds.images.size() == 30);
  for (size_t i = 0; i < 30; ++i)
    REQUIRE(ds.images[i] == (float)images.data[i] / 255.0f);
  CHECK(ds.labels == std::vector<int32_t>{3, 0, 9, 1, 7});

  std::string testLabels = tmp.file("t10k-labels-idx1-ubyte");
  CHECK_THROWS_WITH_AS(
      loadMnist(dir, "test"),
      (tmp.file("t10k-images-idx3-ubyte") +
       ": MNIST file not found; run scripts/fetch-data.sh (or make data)")
          .c_str(),
      Error);
  CHECK_THROWS_WITH_AS(loadMnist(dir, "valid"),
                       "loadMnist: unknown split 'valid' (expected 'train' or 'test')", Error);
  CHECK_THROWS_WITH_AS(
      loadMnist(dir + "/missing", "train"),
      (dir + "/missing: MNIST directory not found; run scripts/fetch-data.sh (or make data)")
          .c_str(),
      Error);

  labels.data[3] = 10;
  writeIdx(tmp.file("train-labels-idx1-ubyte"), labels);
  CHECK_THROWS_WITH_AS(loadMnist(dir, "train"),
                       (tmp.file("train-labels-idx1-ubyte") +
                        ": label 10 at index 3 (byte 11) is outside 0..9")
                           .c_str(),
                       Error);

  labels.dims = {4};
  labels.data = {1, 2, 3, 4};
  writeIdx(tmp.file("train-labels-idx1-ubyte"), labels);
  CHECK_THROWS_WITH_AS(loadMnist(dir, "train"),
                       (tmp.file("train-labels-idx1-ubyte") +
                        ": 4 labels but train-images-idx3-ubyte has 5 images")
                           .c_str(),
                       Error);

  writeIdx(tmp.file("train-images-idx3-ubyte"), iotaArray({4, 6}));
  CHECK_THROWS_WITH_AS(loadMnist(dir, "train"),
                       (tmp.file("train-images-idx3-ubyte") +
                        ": expected 3 dims (count, rows, cols), found 2")
                           .c_str(),
                       Error);
}

TEST_CASE("loadMnist on the fetched data gives the fixed 8000/2000 split") {
  std::string dir = findMnistDir();
  if (dir.empty()) {
    // CI sets KILN_REQUIRE_MNIST after fetching, so a lost data dir fails there.
    if (std::getenv("KILN_REQUIRE_MNIST"))
      FAIL("data/mnist not found but KILN_REQUIRE_MNIST is set");
    MESSAGE("data/mnist not found (run scripts/fetch-data.sh); real-data checks skipped");
    return;
  }
  Dataset train = loadMnist(dir, "train");
  Dataset test = loadMnist(dir, "test");
  CHECK(train.count == 8000);
  CHECK(test.count == 2000);
  CHECK(train.features == 784);
  CHECK(test.features == 784);
  CHECK(train.images.size() == 8000u * 784);
  CHECK(train.labels.size() == 8000u);

  // Per-class counts that scripts/mnist_to_idx.py's fixed shuffle produces.
  std::vector<int> perClass(10);
  for (int32_t label : train.labels) {
    REQUIRE(label >= 0);
    REQUIRE(label <= 9);
    perClass[(size_t)label]++;
  }
  CHECK(perClass == std::vector<int>{798, 886, 783, 826, 790, 708, 810, 858, 778, 763});
  for (int32_t label : test.labels)
    REQUIRE((label >= 0 && label <= 9));

  auto [lo, hi] = std::minmax_element(train.images.begin(), train.images.end());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);
  double mean = std::accumulate(train.images.begin(), train.images.end(), 0.0) /
                (double)train.images.size();
  CHECK(mean == doctest::Approx(0.1307).epsilon(0.1)); // MNIST's well-known pixel mean
}

TEST_CASE("Batcher covers every index once per epoch and reshuffles") {
  Batcher b(100, 10, 42);
  CHECK(b.batchesPerEpoch() == 10);
  auto collect = [&](int64_t epoch) {
    b.startEpoch(epoch);
    std::vector<int64_t> all;
    std::span<const int64_t> idx;
    int batches = 0;
    while (b.next(idx)) {
      REQUIRE(idx.size() == 10);
      all.insert(all.end(), idx.begin(), idx.end());
      ++batches;
    }
    CHECK(batches == 10);
    CHECK_FALSE(b.next(idx));
    return all;
  };
  std::vector<int64_t> e0 = collect(0);
  std::vector<int64_t> e1 = collect(1);
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(100);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(sorted == identity);
  CHECK(e0 != identity);
  sorted = e1;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == identity);
  CHECK(e0 != e1);
  CHECK(collect(0) == e0); // same (seed, epoch) -> same order

  Batcher same(100, 10, 42);
  CHECK(std::vector<int64_t>(same.order().begin(), same.order().end()) == e0);
  Batcher other(100, 10, 43);
  CHECK(std::vector<int64_t>(other.order().begin(), other.order().end()) != e0);
}

TEST_CASE("Batcher drops the last partial batch") {
  Batcher b(103, 10, 1);
  CHECK(b.batchesPerEpoch() == 10);
  std::set<int64_t> seen;
  std::span<const int64_t> idx;
  int batches = 0;
  while (b.next(idx)) {
    ++batches;
    seen.insert(idx.begin(), idx.end());
  }
  CHECK(batches == 10);
  CHECK(seen.size() == 100);
  CHECK(*seen.rbegin() <= 102);

  CHECK_THROWS_WITH_AS(Batcher(5, 0, 1), "Batcher: batch size must be positive, got 0", Error);
  CHECK_THROWS_WITH_AS(Batcher(5, 8, 1), "Batcher: batch size 8 exceeds dataset size 5", Error);
}

TEST_CASE("Batcher shuffles uniformly") {
  // All 24 orders of 4 items should appear about equally often.
  Batcher b(4, 4, 7);
  std::map<std::vector<int64_t>, int> counts;
  const int epochs = 24000;
  for (int e = 0; e < epochs; ++e) {
    b.startEpoch(e);
    counts[std::vector<int64_t>(b.order().begin(), b.order().end())]++;
  }
  CHECK(counts.size() == 24);
  for (auto& [order, count] : counts)
    CHECK(std::abs(count - 1000) < 150);
}

TEST_CASE("gatherBatch copies rows and labels") {
  Dataset ds;
  ds.count = 3;
  ds.features = 2;
  ds.images = {0.f, 1.f, 10.f, 11.f, 20.f, 21.f};
  ds.labels = {5, 6, 7};
  std::vector<int64_t> idx = {2, 0, 2};
  float x[6];
  int32_t y[3];
  gatherBatch(ds, idx, x, y);
  CHECK(std::vector<float>(x, x + 6) == std::vector<float>{20, 21, 0, 1, 20, 21});
  CHECK(std::vector<int32_t>(y, y + 3) == std::vector<int32_t>{7, 5, 7});
  gatherBatch(ds, idx, x, nullptr);

  std::vector<int64_t> bad = {1, 3};
  CHECK_THROWS_WITH_AS(
      gatherBatch(ds, bad, x, y),
      "gatherBatch: index 3 at batch row 1 is outside the dataset (3 examples)", Error);
}

TEST_CASE("formatDuration") {
  CHECK(formatDuration(0.04) == "0.0s");
  CHECK(formatDuration(4.2) == "4.2s");
  CHECK(formatDuration(187) == "3m07s");
  CHECK(formatDuration(3720) == "1h02m");
}

TEST_CASE("Progress off a terminal prints one line at finish") {
  std::FILE* out = std::tmpfile();
  REQUIRE(out);
  {
    Progress p("train", 100, out, false);
    for (int i = 1; i <= 50; ++i)
      p.update(i, "loss 0.9");
    CHECK(readAll(out).empty());
    p.finish("loss 0.3124");
    p.finish("again");
  }
  std::string text = readAll(out);
  CHECK(text.rfind("train [############............] 50/100  ", 0) == 0);
  CHECK(text.find(" it/s  ") != std::string::npos);
  CHECK(text.size() > 12);
  CHECK(text.substr(text.size() - 12) == "loss 0.3124\n");
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.find('\r') == std::string::npos);
  std::fclose(out);
}

TEST_CASE("Progress on a terminal redraws in place") {
  std::FILE* out = std::tmpfile();
  REQUIRE(out);
  {
    Progress p("eval", 10, out, true);
    p.update(1, "a");
    std::string first = readAll(out);
    CHECK(first.rfind("\reval [##......................] 1/10", 0) == 0);
    CHECK(first.back() == 'a');
    std::fseek(out, 0, SEEK_END);
    p.update(10); // completion always redraws
    p.finish("done");
  }
  std::string text = readAll(out);
  CHECK(text.find("\reval [########################] 10/10") != std::string::npos);
  CHECK(text.back() == '\n');
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  std::fclose(out);

  out = std::tmpfile();
  { // unknown total, and an unfinished line is closed by the destructor
    Progress p("steps", 0, out, true);
    p.update(7);
  }
  text = readAll(out);
  CHECK(text.rfind("\rsteps 7", 0) == 0);
  CHECK(text.back() == '\n');
  std::fclose(out);
}

TEST_CASE("Args parses --name value and --name=value") {
  std::vector<std::string> args = {"/bin/mnist_train", "--epochs", "3", "--lr=0.5", "--out",
                                   "m.bin", "--verbose", "--quiet=false", "--epochs", "5",
                                   "--shift", "-2"};
  auto argv = makeArgv(args);
  Args a((int)args.size(), argv.data(), "usage: mnist_train [options]");
  CHECK(a.program() == "mnist_train");
  CHECK(a.getInt("epochs", 1) == 5); // last one wins
  CHECK(a.getInt("epochs", 1) == 5); // asking twice gives the same answer
  CHECK(a.getDouble("lr", 0.1) == 0.5);
  CHECK(a.getString("out", "x") == "m.bin");
  CHECK(a.flag("verbose"));
  CHECK_FALSE(a.flag("quiet"));
  CHECK(a.getInt("shift", 0) == -2);
  CHECK(a.getInt("batch", 64) == 64);
  CHECK(a.getDouble("momentum", 0.9) == 0.9);
  CHECK(a.getString("data", "data/mnist") == "data/mnist");
  CHECK_FALSE(a.flag("fast"));
  CHECK(a.positional().empty());
  a.finish();
}

TEST_CASE("Args reports bad values and unused arguments") {
  auto parse = [](std::vector<std::string> args) {
    args.insert(args.begin(), "prog");
    auto argv = makeArgv(args);
    return Args((int)args.size(), argv.data(), "usage");
  };
  {
    Args a = parse({"--epochs", "x3"});
    CHECK_THROWS_WITH_AS(a.getInt("epochs", 1), "--epochs: expected an integer, got 'x3'", Error);
  }
  {
    Args a = parse({"--epochs=99999999999999999999"});
    CHECK_THROWS_WITH_AS(a.getInt("epochs", 1),
                         "--epochs: integer '99999999999999999999' is out of range", Error);
  }
  {
    Args a = parse({"--lr", "fast"});
    CHECK_THROWS_WITH_AS(a.getDouble("lr", 1), "--lr: expected a finite number, got 'fast'",
                         Error);
  }
  {
    Args a = parse({"--lr", "--epochs", "3"});
    CHECK_THROWS_WITH_AS(a.getDouble("lr", 1), "--lr: missing value", Error);
  }
  {
    Args a = parse({"--verbose=maybe"});
    CHECK_THROWS_WITH_AS(a.flag("verbose"), "--verbose: expected true or false, got 'maybe'",
                         Error);
  }
  {
    Args a = parse({"--lrr", "0.1", "--lr-decay", "2", "extra"});
    CHECK(a.getDouble("lr", 0.5) == 0.5);
    CHECK_THROWS_WITH_AS(a.finish(),
                         "unknown option --lrr, unexpected argument '0.1', unknown option "
                         "--lr-decay, unexpected argument '2', unexpected argument 'extra' (see "
                         "--help)",
                         Error);
  }
  {
    Args a = parse({"--verbose", "3"});
    CHECK(a.flag("verbose"));
    CHECK_THROWS_WITH_AS(a.finish(), "unexpected argument '3' (see --help)", Error);
  }
  {
    Args a = parse({"in.txt", "--n", "2", "--", "--not-an-option"});
    CHECK(a.getInt("n", 0) == 2);
    CHECK(a.positional() == std::vector<std::string>{"in.txt", "--not-an-option"});
    a.finish();
  }
}

TEST_CASE("Args --help prints usage to stdout and exits 0") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    std::vector<std::string> args = {"prog", "--epochs", "3", "--help"};
    auto argv = makeArgv(args);
    Args a((int)args.size(), argv.data(), "usage: prog [--epochs N]");
    ::_exit(3); // not reached when --help works
  }
  ::close(fds[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
    text.append(buf, (size_t)n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(text == "usage: prog [--epochs N]\n");
}

} // TEST_SUITE

// The thread pool: every item runs exactly once, large or small, and two
// callers at once (one finds the pool busy and runs its items itself) both
// finish with every item done.
TEST_CASE("parallel_for runs every item exactly once, from one caller or two at once") {
  struct Counts {
    std::vector<std::atomic<int>> hits;
    explicit Counts(size_t n) : hits(n) {}
  };
  auto body = [](void* ctx, int64_t i) { static_cast<Counts*>(ctx)->hits[static_cast<size_t>(i)].fetch_add(1); };
  for (int64_t n : {0, 1, 7, 1000}) {
    for (int64_t cost : {int64_t(0), int64_t(1) << 30}) {  // inline, and worth the threads
      Counts c(static_cast<size_t>(n));
      kiln_rt_parallel_for(n, body, &c, cost);
      for (int64_t i = 0; i < n; ++i) CHECK(c.hits[static_cast<size_t>(i)].load() == 1);
    }
  }
  Counts a(5000), b(5000);
  std::thread other([&] {
    for (int r = 0; r < 20; ++r) kiln_rt_parallel_for(250, body, &a, int64_t(1) << 30);
  });
  for (int r = 0; r < 20; ++r) kiln_rt_parallel_for(250, body, &b, int64_t(1) << 30);
  other.join();
  for (size_t i = 0; i < 250; ++i) {
    CHECK(a.hits[i].load() == 20);
    CHECK(b.hits[i].load() == 20);
  }
  CHECK(kiln::rt::threads() >= 1);
}

// Back-to-back calls with different functions, contexts and item counts: a
// worker that wakes late (after the call it woke for has ended) must claim
// nothing or an item of the current call, run with the current call's
// function and context. Run at 2 threads and at 3 (more threads than this
// machine's cores, so workers are often descheduled mid-call).
TEST_CASE("parallel_for: late workers never run an old call's items with a new call's function") {
  struct Call {
    int64_t n;
    std::vector<std::atomic<int>> hits;
    std::atomic<int> outOfRange{0};
    explicit Call(int64_t n) : n(n), hits(static_cast<size_t>(n)) {}
  };
  auto body = [](void* ctx, int64_t i) {
    auto& c = *static_cast<Call*>(ctx);
    if (i < 0 || i >= c.n) c.outOfRange.fetch_add(1);
    else c.hits[static_cast<size_t>(i)].fetch_add(1);
  };
  auto other = [](void* ctx, int64_t i) { static_cast<Call*>(ctx)->hits[static_cast<size_t>(i)].fetch_add(2); };
  Call a(3), b(17), c(2);
  constexpr int kRounds = 3000;
  for (int r = 0; r < kRounds; ++r) {
    kiln_rt_parallel_for(a.n, body, &a, int64_t(1) << 30);
    kiln_rt_parallel_for(b.n, body, &b, int64_t(1) << 30);
    kiln_rt_parallel_for(c.n, other, &c, int64_t(1) << 30);
  }
  CHECK(a.outOfRange.load() == 0);
  CHECK(b.outOfRange.load() == 0);
  for (auto* call : {&a, &b})
    for (auto& h : call->hits) CHECK(h.load() == kRounds);
  for (auto& h : c.hits) CHECK(h.load() == 2 * kRounds);
}

// A forked child has none of the pool's worker threads: its parallel_for
// must run the items itself, not wait for workers forever.
TEST_CASE("parallel_for after fork runs in the child instead of waiting for absent workers") {
  std::vector<std::atomic<int>> hits(64);
  auto body = [](void* ctx, int64_t i) {
    (*static_cast<std::vector<std::atomic<int>>*>(ctx))[static_cast<size_t>(i)].fetch_add(1);
  };
  kiln_rt_parallel_for(64, body, &hits, int64_t(1) << 30);  // the pool exists now
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    alarm(20);  // a hang ends the child with SIGALRM, which the parent reports
    kiln_rt_parallel_for(64, body, &hits, int64_t(1) << 30);
    bool ok = true;
    for (auto& h : hits) ok = ok && h.load() == 2;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
