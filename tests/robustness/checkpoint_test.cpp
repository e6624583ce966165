// Checkpoint files (kiln_rt only): round trips, and for each kind of bad
// file or mismatched model the exact message docs/errors.md shows.
#include "kiln/rt/Checkpoint.h"
#include "kiln/rt/Error.h"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace kiln::rt;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("kiln_ckpt_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const char* name) const { return (path / name).string(); }
};

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i)
    s[size_t(i)] = char((v >> (8 * i)) & 0xff);
  return s;
}

std::string checksumOf(const std::string& data) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", (unsigned long long)fnv1a64(data.data(), data.size()));
  return buf;
}

/// A file from a header JSON and data. "$SUM" in the header is replaced by
/// the data's true checksum, so each case breaks exactly one thing.
std::string makeFile(std::string header, const std::string& data) {
  if (size_t at = header.find("$SUM"); at != std::string::npos)
    header.replace(at, 4, checksumOf(data));
  return le64(header.size()) + header + data;
}

/// The message of the Error loading `bytes` throws, or "" if none.
std::string loadError(const TempDir& dir, const std::string& bytes, const std::vector<CheckpointTensor>& expected) {
  std::string path = dir.file("ckpt.safetensors");
  writeBytes(path, bytes);
  try {
    loadCheckpoint(path, expected);
  } catch (const Error& e) {
    std::string msg = e.what();
    // Messages start with the path; compare the rest.
    REQUIRE(msg.rfind(path + ": ", 0) == 0);
    return "ckpt.safetensors" + msg.substr(path.size());
  }
  return "";
}

/// The two tensors most cases use: a F32 [2,3] (24 bytes) and b I32 [2] (8).
struct Model {
  float a[6] = {1, 2, 3, 4, 5, 6};
  int32_t b[2] = {7, -8};
  std::vector<CheckpointTensor> tensors() {
    return {{"a", TensorDType::F32, {2, 3}, a}, {"b", TensorDType::I32, {2}, b}};
  }
};

const std::string kData(32, '\x01');
const std::string kGoodEntries =
    R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I32","shape":[2],"data_offsets":[24,32]})";

std::string withMeta(const std::string& entries) {
  return R"({"__metadata__":{"kiln.checksum":"$SUM"},)" + entries + "}";
}

} // namespace

TEST_CASE("checkpoint: save then load restores every tensor and the metadata") {
  TempDir dir;
  std::string path = dir.file("ckpt.safetensors");
  Model saved;
  saveCheckpoint(path, saved.tensors(), {{"step", "12"}});
  Model loaded;
  std::memset(loaded.a, 0, sizeof loaded.a);
  std::memset(loaded.b, 0, sizeof loaded.b);
  auto meta = loadCheckpoint(path, loaded.tensors());
  CHECK(std::memcmp(loaded.a, saved.a, sizeof saved.a) == 0);
  CHECK(std::memcmp(loaded.b, saved.b, sizeof saved.b) == 0);
  CHECK(meta.at("step") == "12");
  CHECK(meta.at(kChecksumKey).rfind("fnv1a64:", 0) == 0);
  // the temporary file was renamed away
  int files = 0;
  for (auto& e : fs::directory_iterator(dir.path))
    files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("checkpoint: the file is safetensors with 8-aligned data and exact offsets") {
  TempDir dir;
  std::string path = dir.file("ckpt.safetensors");
  Model m;
  saveCheckpoint(path, m.tensors());
  std::string bytes = readBytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | uint8_t(bytes[size_t(i)]);
  CHECK(n % 8 == 0);
  REQUIRE(bytes.size() == 8 + n + 32);
  std::string header = bytes.substr(8, n);
  CHECK(header.find(R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})") != std::string::npos);
  CHECK(header.find(R"("b":{"dtype":"I32","shape":[2],"data_offsets":[24,32]})") != std::string::npos);
  CHECK(std::memcmp(bytes.data() + 8 + n, m.a, 24) == 0);
  CHECK(std::memcmp(bytes.data() + 8 + n + 24, m.b, 8) == 0);
}

TEST_CASE("checkpoint: names with quotes and control characters round-trip") {
  TempDir dir;
  std::string path = dir.file("ckpt.safetensors");
  float x = 3.5f, y = 0;
  saveCheckpoint(path, {{"we\"ird\\name\n", TensorDType::F32, {}, &x}});
  loadCheckpoint(path, {{"we\"ird\\name\n", TensorDType::F32, {}, &y}});
  CHECK(y == 3.5f);
}

TEST_CASE("checkpoint: a valid file written by hand loads") {
  TempDir dir;
  Model m;
  CHECK(loadError(dir, makeFile(withMeta(kGoodEntries), kData), m.tensors()) == "");
  CHECK(m.b[0] == 0x01010101);
}

TEST_CASE("checkpoint: save refuses bad requests and leaves no file") {
  TempDir dir;
  std::string path = dir.file("ckpt.safetensors");
  float x = 0;
  CHECK_THROWS_WITH_AS(saveCheckpoint(path, {{"a", TensorDType::F32, {}, &x}, {"a", TensorDType::F32, {}, &x}}),
                       (path + ": two tensors are named \"a\"").c_str(), Error);
  CHECK_THROWS_WITH_AS(saveCheckpoint(path, {{"a", TensorDType::F32, {}, &x}}, {{kChecksumKey, "x"}}),
                       (path + ": metadata key \"kiln.checksum\" is reserved").c_str(), Error);
  std::string missing = dir.file("no/such/dir/ckpt.safetensors");
  std::string tmp = missing + ".tmp-" + std::to_string(::getpid());
  CHECK_THROWS_WITH_AS(saveCheckpoint(missing, {{"a", TensorDType::F32, {}, &x}}),
                       (tmp + ": cannot create: No such file or directory").c_str(), Error);
  CHECK(!fs::exists(path));
}

TEST_CASE("checkpoint: file-level corruptions give their messages") {
  TempDir dir;
  Model m;
  auto err = [&](const std::string& bytes) { return loadError(dir, bytes, m.tensors()); };
  CHECK(err("abc") == "ckpt.safetensors: truncated: 3 bytes, too short for the 8-byte header length");
  CHECK(err(le64(~0ull) + "{}") ==
        "ckpt.safetensors: header length 18446744073709551615 is over the 104857600-byte limit");
  CHECK(err(le64(40) + "{}") == "ckpt.safetensors: header length 40 exceeds the 2 bytes that follow it; the file "
                                "is truncated or not a safetensors file");
  CHECK(err(le64(8) + "PK\x03\x04zip!") == "ckpt.safetensors: header JSON at byte 8: expected a value");
  CHECK(err(makeFile("[1,2]", "")) == "ckpt.safetensors: header is not a JSON object");
  std::string path = dir.file("absent.safetensors");
  CHECK_THROWS_WITH_AS(loadCheckpoint(path, m.tensors()), (path + ": cannot open: No such file or directory").c_str(),
                       Error);
  CHECK_THROWS_WITH_AS(loadCheckpoint(dir.path.string(), m.tensors()), (dir.path.string() + ": not a regular file").c_str(),
                       Error);
}

TEST_CASE("checkpoint: malformed header JSON names the byte") {
  TempDir dir;
  Model m;
  auto err = [&](const std::string& header) { return loadError(dir, makeFile(header, kData), m.tensors()); };
  CHECK(err(R"({"a":{"dtype":"F32")") == "ckpt.safetensors: header JSON at byte 27: expected ',' or '}'");
  CHECK(err(R"({"a)") == "ckpt.safetensors: header JSON at byte 11: unterminated string");
  CHECK(err(R"({a:1})") == "ckpt.safetensors: header JSON at byte 9: expected a string key");
  CHECK(err(R"({"a":1,"a":2})") == "ckpt.safetensors: header JSON at byte 18: duplicate key \"a\"");
  CHECK(err(R"({"a":-})") == "ckpt.safetensors: header JSON at byte 14: malformed number");
  CHECK(err(R"({"a":"\q"})") == "ckpt.safetensors: header JSON at byte 15: bad escape in string");
  CHECK(err(R"({"a":"\ud800"})") == "ckpt.safetensors: header JSON at byte 20: unpaired surrogate in \\u escape");
  CHECK(err(R"({} {})") == "ckpt.safetensors: header JSON at byte 11: unexpected text after the header object");
  CHECK(err(std::string(40, '[')) == "ckpt.safetensors: header JSON at byte 25: nested too deeply");
  CHECK(err(std::string("{\"a\x01\":1}")) == "ckpt.safetensors: header JSON at byte 11: control character in string");
}

TEST_CASE("checkpoint: bad tensor entries give their messages") {
  TempDir dir;
  Model m;
  auto err = [&](const std::string& entries, const std::string& data = kData) {
    return loadError(dir, makeFile(withMeta(entries), data), m.tensors());
  };
  const std::string b = R"(,"b":{"dtype":"I32","shape":[2],"data_offsets":[24,32]})";
  CHECK(err(R"("a":[1])" + b) == "ckpt.safetensors: tensor \"a\": header entry is not an object");
  CHECK(err(R"("a":{"shape":[2,3],"data_offsets":[0,24]})" + b) ==
        "ckpt.safetensors: tensor \"a\": \"dtype\" is missing or not a string");
  CHECK(err(R"("a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,24]})" + b) ==
        "ckpt.safetensors: tensor \"a\": dtype \"F16\" is not supported (kiln reads F32 and I32)");
  CHECK(err(R"("a":{"dtype":"F32","data_offsets":[0,24]})" + b) ==
        "ckpt.safetensors: tensor \"a\": \"shape\" is missing or not an array");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]})" + b) ==
        "ckpt.safetensors: tensor \"a\": shape has a dimension that is not a non-negative integer");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,3.0],"data_offsets":[0,24]})" + b) ==
        "ckpt.safetensors: tensor \"a\": shape has a dimension that is not a non-negative integer");
  CHECK(err(R"("a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]})" + b) ==
        "ckpt.safetensors: tensor \"a\": shape [4294967296,4294967296] is too large");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0]})" + b) ==
        "ckpt.safetensors: tensor \"a\": \"data_offsets\" must be two non-negative integers [begin,end]");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"crc":1})" + b) ==
        "ckpt.safetensors: tensor \"a\": unknown field \"crc\"");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]})" + b) ==
        "ckpt.safetensors: tensor \"a\": data_offsets [24,0] end before they begin");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})" + b) ==
        "ckpt.safetensors: tensor \"a\": data_offsets [0,20] hold 20 bytes, but F32 [2,3] needs 24");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]})" + b, kData.substr(0, 30)) ==
        "ckpt.safetensors: tensor \"b\": data_offsets [24,32] run past the end of the data (30 bytes); the file is "
        "truncated or the header is corrupt");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I32","shape":[2],"data_offsets":[20,28]})") ==
        "ckpt.safetensors: tensors \"a\" and \"b\" overlap (data_offsets [0,24] and [20,28])");
  CHECK(err(R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I32","shape":[1],"data_offsets":[28,32]})") ==
        "ckpt.safetensors: data bytes [24,28) belong to no tensor");
  CHECK(err(kGoodEntries, kData + "junk") == "ckpt.safetensors: data bytes [32,36) belong to no tensor");
}

TEST_CASE("checkpoint: metadata and checksum problems give their messages") {
  TempDir dir;
  Model m;
  auto err = [&](const std::string& header, const std::string& data = kData) {
    return loadError(dir, makeFile(header, data), m.tensors());
  };
  CHECK(err("{" + kGoodEntries + "}") ==
        "ckpt.safetensors: no \"kiln.checksum\" in __metadata__; kiln writes one with every checkpoint");
  CHECK(err(R"({"__metadata__":[],)" + kGoodEntries + "}") == "ckpt.safetensors: __metadata__ is not an object");
  CHECK(err(R"({"__metadata__":{"kiln.checksum":"$SUM","step":3},)" + kGoodEntries + "}") ==
        "ckpt.safetensors: __metadata__ value for \"step\" is not a string");
  std::string file = makeFile(withMeta(kGoodEntries), kData);
  file[file.size() - 5] ^= 0x10; // one flipped bit in the data
  CHECK(loadError(dir, file, m.tensors()) ==
        "ckpt.safetensors: checksum mismatch: the header records \"" + checksumOf(kData) +
            "\", the data hashes to " + checksumOf(file.substr(file.size() - 32)) + "; the file is corrupt");
}

TEST_CASE("checkpoint: a mismatched model is refused, naming the tensor") {
  TempDir dir;
  std::string path = dir.file("ckpt.safetensors");
  std::vector<float> w(784 * 64), b(64);
  saveCheckpoint(path, {{"l1.w", TensorDType::F32, {784, 64}, w.data()}, {"l1.b", TensorDType::F32, {64}, b.data()}});
  auto err = [&](std::vector<CheckpointTensor> expected) {
    try {
      loadCheckpoint(path, expected);
    } catch (const Error& e) {
      std::string msg = e.what();
      for (size_t at; (at = msg.find(path)) != std::string::npos;)
        msg.replace(at, path.size(), "ckpt.safetensors");
      return msg;
    }
    return std::string();
  };
  std::vector<float> w2(784 * 128, 42.0f), b2(64, 42.0f);
  CHECK(err({{"l1.w", TensorDType::F32, {784, 128}, w2.data()}, {"l1.b", TensorDType::F32, {64}, b2.data()}}) ==
        "ckpt.safetensors: tensor \"l1.w\" has shape [784,64], the model expects [784,128]");
  CHECK(err({{"l1.w", TensorDType::I32, {784, 64}, w2.data()}, {"l1.b", TensorDType::F32, {64}, b2.data()}}) ==
        "ckpt.safetensors: tensor \"l1.w\" has dtype F32, the model expects I32");
  CHECK(err({{"l1.w", TensorDType::F32, {784, 64}, w2.data()}}) ==
        "ckpt.safetensors: tensor \"l1.b\" is in the file but not in the model");
  CHECK(err({{"l1.w", TensorDType::F32, {784, 64}, w2.data()},
             {"l1.b", TensorDType::F32, {64}, b2.data()},
             {"l2.w", TensorDType::F32, {64, 10}, w2.data()}}) ==
        "ckpt.safetensors: tensor \"l2.w\" (F32 [64,10]) is missing from the file");
  // every problem at once, one per line
  CHECK(err({{"l1.w", TensorDType::F32, {784, 128}, w2.data()}, {"l1.bias", TensorDType::F32, {64}, b2.data()}}) ==
        "ckpt.safetensors: tensor \"l1.w\" has shape [784,64], the model expects [784,128]\n"
        "ckpt.safetensors: tensor \"l1.bias\" (F32 [64]) is missing from the file\n"
        "ckpt.safetensors: tensor \"l1.b\" is in the file but not in the model");
  // a refused load changes nothing
  CHECK(w2[0] == 42.0f);
  CHECK(b2[63] == 42.0f);
}

TEST_CASE("checkpoint: every truncation and every single-bit flip is refused") {
  TempDir dir;
  std::string path = dir.file("ckpt.safetensors");
  Model saved;
  saveCheckpoint(path, saved.tensors());
  const std::string good = readBytes(path);
  int refused = 0, total = 0;
  auto tryLoad = [&](const std::string& bytes) {
    Model m;
    std::memset(m.a, 0x55, sizeof m.a);
    ++total;
    try {
      loadCheckpoint(path, m.tensors());
    } catch (const Error&) {
      ++refused;
      CHECK(m.a[0] != 1.0f); // untouched
      return;
    }
    CAPTURE(total);
    FAIL("a damaged file loaded");
  };
  for (size_t n = 0; n < good.size(); ++n) {
    writeBytes(path, good.substr(0, n));
    tryLoad(good.substr(0, n));
  }
  for (size_t i = 0; i < good.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = char(bad[i] ^ (1 << bit));
      writeBytes(path, bad);
      tryLoad(bad);
    }
  CHECK(refused == total);
  CHECK(total == int(good.size() * 9));
}
