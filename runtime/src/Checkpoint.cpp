// safetensors checkpoints: atomic writer, a small JSON reader for the
// header, and a loader that validates every byte it trusts.
#include "kiln/rt/Checkpoint.h"

#include "kiln/rt/Error.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::rt {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

/// Header lengths above this are refused before any allocation (the
/// safetensors reference implementation uses the same bound).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
/// JSON nesting deeper than this is refused (a valid header needs 3).
constexpr int kMaxDepth = 16;

/// A name or string from the file, printable and bounded, for messages.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  size_t n = 0;
  for (unsigned char c : s) {
    if (++n > 64) {
      out += "...";
      break;
    }
    if (c == '"' || c == '\\')
      out += strFormat("\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      out += strFormat("\\x%02x", c);
    else
      out += char(c);
  }
  return out + "\"";
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// ---------------------------------------------------------------- JSON

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  size_t pos = 0;  ///< Byte offset of the value within the file.
  std::string str; ///< String contents, or a number's text.
  std::vector<Json> items;       ///< Array elements, or object values.
  std::vector<std::string> keys; ///< Object keys, in file order.

  const Json* get(const char* key) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key)
        return &items[i];
    return nullptr;
  }
};

/// Recursive-descent JSON reader (RFC 8259) with a depth bound; positions in
/// messages are byte offsets within the file.
class JsonReader {
public:
  JsonReader(const std::string& path, const char* text, size_t size, size_t base)
      : path_(path), s_(text), n_(size), base_(base) {}

  Json parseDocument() {
    Json v = value(0);
    skipSpace();
    if (i_ != n_)
      error("unexpected text after the header object");
    return v;
  }

private:
  [[noreturn]] void error(const char* what) {
    fail("%s: header JSON at byte %zu: %s", path_.c_str(), base_ + i_, what);
  }

  void skipSpace() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  bool consume(const char* word) {
    size_t len = std::strlen(word);
    if (n_ - i_ < len || std::memcmp(s_ + i_, word, len) != 0)
      return false;
    i_ += len;
    return true;
  }

  Json value(int depth) {
    if (depth > kMaxDepth)
      error("nested too deeply");
    skipSpace();
    if (i_ == n_)
      error("unexpected end of header");
    Json v;
    v.pos = base_ + i_;
    char c = s_[i_];
    if (c == '{') {
      v.kind = Json::Object;
      std::set<std::string> keys;
      ++i_;
      skipSpace();
      if (i_ < n_ && s_[i_] == '}') {
        ++i_;
        return v;
      }
      for (;;) {
        skipSpace();
        if (i_ == n_ || s_[i_] != '"')
          error("expected a string key");
        std::string key = string();
        if (!keys.insert(key).second)
          error(("duplicate key " + quoted(key)).c_str());
        skipSpace();
        if (i_ == n_ || s_[i_] != ':')
          error("expected ':'");
        ++i_;
        v.keys.push_back(std::move(key));
        v.items.push_back(value(depth + 1));
        skipSpace();
        if (i_ < n_ && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < n_ && s_[i_] == '}') {
          ++i_;
          return v;
        }
        error("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++i_;
      skipSpace();
      if (i_ < n_ && s_[i_] == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        v.items.push_back(value(depth + 1));
        skipSpace();
        if (i_ < n_ && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < n_ && s_[i_] == ']') {
          ++i_;
          return v;
        }
        error("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.kind = Json::String;
      v.str = string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Number;
      v.str = number();
      return v;
    }
    if (consume("true") || consume("false")) {
      v.kind = Json::Bool;
      return v;
    }
    if (consume("null"))
      return v;
    error("expected a value");
  }

  std::string number() {
    size_t start = i_;
    auto digits = [&] {
      size_t d = i_;
      while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9')
        ++i_;
      return i_ > d;
    };
    if (s_[i_] == '-')
      ++i_;
    if (i_ < n_ && s_[i_] == '0')
      ++i_;
    else if (!digits())
      error("malformed number");
    if (i_ < n_ && s_[i_] == '.') {
      ++i_;
      if (!digits())
        error("malformed number");
    }
    if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < n_ && (s_[i_] == '+' || s_[i_] == '-'))
        ++i_;
      if (!digits())
        error("malformed number");
    }
    return std::string(s_ + start, i_ - start);
  }

  unsigned hex4() {
    if (n_ - i_ < 4)
      error("truncated \\u escape");
    unsigned u = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      u <<= 4;
      if (c >= '0' && c <= '9')
        u |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f')
        u |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        u |= unsigned(c - 'A' + 10);
      else
        error("bad \\u escape");
    }
    return u;
  }

  static void appendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xc0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += char(0xe0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    } else {
      out += char(0xf0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3f));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    }
  }

  std::string string() {
    ++i_; // opening quote
    std::string out;
    for (;;) {
      if (i_ == n_)
        error("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20)
        error("control character in string");
      if (c != '\\') {
        out += char(c);
        ++i_;
        continue;
      }
      if (++i_ == n_)
        error("unterminated string");
      char e = s_[i_++];
      switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        unsigned cp = hex4();
        if (cp >= 0xd800 && cp < 0xdc00) {
          if (!consume("\\u"))
            error("unpaired surrogate in \\u escape");
          unsigned lo = hex4();
          if (lo < 0xdc00 || lo >= 0xe000)
            error("unpaired surrogate in \\u escape");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          error("unpaired surrogate in \\u escape");
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        --i_;
        error("bad escape in string");
      }
    }
  }

  const std::string& path_;
  const char* s_;
  size_t n_;
  size_t base_;
  size_t i_ = 0;
};

void jsonString(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      out += strFormat("\\%c", c);
    else if (c < 0x20)
      out += strFormat("\\u%04x", c);
    else
      out += char(c);
  }
  out += '"';
}

// ---------------------------------------------------------------- validation

/// A JSON number that must be a non-negative integer; returns false if not.
bool toUint(const Json& v, uint64_t& out) {
  if (v.kind != Json::Number || v.str.empty() || v.str[0] == '-')
    return false;
  uint64_t x = 0;
  for (char c : v.str) {
    if (c < '0' || c > '9')
      return false;
    unsigned d = unsigned(c - '0');
    if (x > (UINT64_MAX - d) / 10)
      return false;
    x = x * 10 + d;
  }
  out = x;
  return true;
}

uint64_t readLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// Bytes of `shape` at 4 bytes per element, or false on overflow.
bool byteSize(const std::vector<int64_t>& shape, uint64_t& bytes) {
  uint64_t n = 4;
  for (int64_t d : shape) {
    if (d < 0)
      return false;
    if (d != 0 && n > UINT64_MAX / uint64_t(d))
      return false;
    n *= uint64_t(d);
  }
  bytes = n;
  return true;
}

CheckpointFile::Entry parseEntry(const std::string& path, const std::string& name, const Json& v,
                                 uint64_t dataSize) {
  const char* p = path.c_str();
  std::string q = quoted(name);
  if (v.kind != Json::Object)
    fail("%s: tensor %s: header entry is not an object", p, q.c_str());
  for (const std::string& k : v.keys)
    if (k != "dtype" && k != "shape" && k != "data_offsets")
      fail("%s: tensor %s: unknown field %s", p, q.c_str(), quoted(k).c_str());
  CheckpointFile::Entry e;
  e.name = name;

  const Json* dtype = v.get("dtype");
  if (!dtype || dtype->kind != Json::String)
    fail("%s: tensor %s: \"dtype\" is missing or not a string", p, q.c_str());
  if (dtype->str == "F32")
    e.dtype = TensorDType::F32;
  else if (dtype->str == "I32")
    e.dtype = TensorDType::I32;
  else
    fail("%s: tensor %s: dtype %s is not supported (kiln reads F32 and I32)", p, q.c_str(),
         quoted(dtype->str).c_str());

  const Json* shape = v.get("shape");
  if (!shape || shape->kind != Json::Array)
    fail("%s: tensor %s: \"shape\" is missing or not an array", p, q.c_str());
  for (const Json& d : shape->items) {
    uint64_t x;
    if (!toUint(d, x) || x > uint64_t(INT64_MAX))
      fail("%s: tensor %s: shape has a dimension that is not a non-negative integer", p, q.c_str());
    e.shape.push_back(int64_t(x));
  }
  uint64_t bytes;
  if (!byteSize(e.shape, bytes))
    fail("%s: tensor %s: shape %s is too large", p, q.c_str(), shapeText(e.shape).c_str());

  const Json* offs = v.get("data_offsets");
  if (!offs || offs->kind != Json::Array || offs->items.size() != 2 || !toUint(offs->items[0], e.begin) ||
      !toUint(offs->items[1], e.end))
    fail("%s: tensor %s: \"data_offsets\" must be two non-negative integers [begin,end]", p, q.c_str());
  if (e.begin > e.end)
    fail("%s: tensor %s: data_offsets [%llu,%llu] end before they begin", p, q.c_str(),
         (unsigned long long)e.begin, (unsigned long long)e.end);
  if (e.end > dataSize)
    fail("%s: tensor %s: data_offsets [%llu,%llu] run past the end of the data (%llu bytes); the file is "
         "truncated or the header is corrupt",
         p, q.c_str(), (unsigned long long)e.begin, (unsigned long long)e.end, (unsigned long long)dataSize);
  if (e.end - e.begin != bytes)
    fail("%s: tensor %s: data_offsets [%llu,%llu] hold %llu bytes, but %s %s needs %llu", p, q.c_str(),
         (unsigned long long)e.begin, (unsigned long long)e.end, (unsigned long long)(e.end - e.begin),
         dtypeName(e.dtype), shapeText(e.shape).c_str(), (unsigned long long)bytes);
  return e;
}

/// The byte ranges must tile the data section exactly: no overlap, no hole.
void checkTiling(const std::string& path, const std::vector<CheckpointFile::Entry>& entries, uint64_t dataSize) {
  std::vector<const CheckpointFile::Entry*> order;
  for (const auto& e : entries)
    order.push_back(&e);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
    if (a->begin != b->begin)
      return a->begin < b->begin;
    return a->end != b->end ? a->end < b->end : a->name < b->name;
  });
  uint64_t covered = 0;
  const CheckpointFile::Entry* prev = nullptr;
  for (const auto* e : order) {
    if (e->begin < covered)
      fail("%s: tensors %s and %s overlap (data_offsets [%llu,%llu] and [%llu,%llu])", path.c_str(),
           quoted(prev->name).c_str(), quoted(e->name).c_str(), (unsigned long long)prev->begin,
           (unsigned long long)prev->end, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->begin > covered)
      fail("%s: data bytes [%llu,%llu) belong to no tensor", path.c_str(), (unsigned long long)covered,
           (unsigned long long)e->begin);
    covered = e->end;
    prev = e;
  }
  if (covered != dataSize)
    fail("%s: data bytes [%llu,%llu) belong to no tensor", path.c_str(), (unsigned long long)covered,
         (unsigned long long)dataSize);
}

std::string checksumText(uint64_t h) { return strFormat("fnv1a64:%016llx", (unsigned long long)h); }

// ---------------------------------------------------------------- file I/O

std::string errnoText() { return std::strerror(errno); }

void writeAll(int fd, const char* p, size_t n, const std::string& tmp) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      fail("%s: cannot write: %s", tmp.c_str(), w < 0 ? errnoText().c_str() : "no progress");
    p += w;
    n -= size_t(w);
  }
}

std::vector<char> readWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail("%s: cannot open: %s", path.c_str(), errnoText().c_str());
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("%s: not a regular file", path.c_str());
  }
  std::vector<char> bytes(size_t(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      std::string why = r < 0 ? errnoText() : "file shrank while reading";
      ::close(fd);
      fail("%s: cannot read: %s", path.c_str(), why.c_str());
    }
    got += size_t(r);
  }
  ::close(fd);
  return bytes;
}

/// Removes PATH.tmp-PID files whose process is gone: what a save killed
/// mid-write leaves behind. A live process's file is never touched.
void removeStaleTemps(const std::string& dir, const std::string& path) {
  size_t slash = path.rfind('/');
  std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp-";
  DIR* d = ::opendir(dir.c_str());
  if (!d)
    return;
  while (const dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0)
      continue;
    std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    long pid = std::stol(digits);
    if (pid > 0 && pid != long(::getpid()) && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH)
      ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

} // namespace

const char* dtypeName(TensorDType t) { return t == TensorDType::F32 ? "F32" : "I32"; }

uint64_t fnv1a64(const void* bytes, size_t size) {
  const unsigned char* p = static_cast<const unsigned char*>(bytes);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static uint64_t fnv1a64Continue(uint64_t h, const void* bytes, size_t size) {
  const unsigned char* p = static_cast<const unsigned char*>(bytes);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void saveCheckpoint(const std::string& path, const std::vector<CheckpointTensor>& tensors,
                    const std::map<std::string, std::string>& metadata) {
  if (metadata.count(kChecksumKey))
    fail("%s: metadata key \"%s\" is reserved", path.c_str(), kChecksumKey);
  std::vector<uint64_t> sizes;
  std::set<std::string> names;
  uint64_t hash = 0xcbf29ce484222325ull, offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const CheckpointTensor& t = tensors[i];
    if (t.name.empty() || t.name == "__metadata__")
      fail("%s: cannot save a tensor named %s", path.c_str(), quoted(t.name).c_str());
    if (!names.insert(t.name).second)
      fail("%s: two tensors are named %s", path.c_str(), quoted(t.name).c_str());
    uint64_t bytes;
    if (!byteSize(t.shape, bytes))
      fail("%s: tensor %s: bad shape %s", path.c_str(), quoted(t.name).c_str(), shapeText(t.shape).c_str());
    if (bytes && !t.data)
      fail("%s: tensor %s has no data", path.c_str(), quoted(t.name).c_str());
    hash = fnv1a64Continue(hash, t.data, size_t(bytes));
    sizes.push_back(bytes);
  }

  std::string header = "{\"__metadata__\":{";
  std::map<std::string, std::string> meta = metadata;
  meta[kChecksumKey] = checksumText(hash);
  bool first = true;
  for (const auto& [k, v] : meta) {
    header += first ? "" : ",";
    first = false;
    jsonString(header, k);
    header += ':';
    jsonString(header, v);
  }
  header += '}';
  for (size_t i = 0; i < tensors.size(); ++i) {
    header += ',';
    jsonString(header, tensors[i].name);
    header += strFormat(":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%llu,%llu]}",
                        dtypeName(tensors[i].dtype), shapeText(tensors[i].shape).c_str(),
                        (unsigned long long)offset, (unsigned long long)(offset + sizes[i]));
    offset += sizes[i];
  }
  header += '}';
  while (header.size() % 8)
    header += ' '; // data starts 8-byte aligned, as the format recommends
  char len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);

  std::string dir = ".";
  if (size_t slash = path.rfind('/'); slash != std::string::npos)
    dir = slash == 0 ? "/" : path.substr(0, slash);
  removeStaleTemps(dir, path);
  std::string tmp = path + strFormat(".tmp-%ld", (long)::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    fail("%s: cannot create: %s", tmp.c_str(), errnoText().c_str());
  try {
    writeAll(fd, len, 8, tmp);
    writeAll(fd, header.data(), header.size(), tmp);
    for (size_t i = 0; i < tensors.size(); ++i)
      writeAll(fd, static_cast<const char*>(tensors[i].data), size_t(sizes[i]), tmp);
    if (::fsync(fd) != 0)
      fail("%s: fsync failed: %s", tmp.c_str(), errnoText().c_str());
    if (::close(fd) != 0) {
      fd = -1;
      fail("%s: close failed: %s", tmp.c_str(), errnoText().c_str());
    }
    fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      fail("%s: cannot rename %s over it: %s", path.c_str(), tmp.c_str(), errnoText().c_str());
  } catch (...) {
    if (fd >= 0)
      ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    fail("%s: saved, but cannot open directory %s to sync it: %s", path.c_str(), dir.c_str(), errnoText().c_str());
  int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0)
    fail("%s: saved, but syncing directory %s failed: %s", path.c_str(), dir.c_str(), errnoText().c_str());
}

/// Validates `bytes` and returns everything but the data, which starts at
/// byte `dataStart`.
static CheckpointFile parseLayout(const std::string& path, const char* bytes, size_t size, size_t& dataStart) {
  const char* p = path.c_str();
  if (size < 8)
    fail("%s: truncated: %zu bytes, too short for the 8-byte header length", p, size);
  uint64_t headerLen = readLe64(bytes);
  if (headerLen > kMaxHeaderBytes)
    fail("%s: header length %llu is over the %llu-byte limit", p, (unsigned long long)headerLen,
         (unsigned long long)kMaxHeaderBytes);
  if (headerLen > size - 8)
    fail("%s: header length %llu exceeds the %zu bytes that follow it; the file is truncated or not a "
         "safetensors file",
         p, (unsigned long long)headerLen, size - 8);
  JsonReader reader(path, bytes + 8, size_t(headerLen), 8);
  Json root = reader.parseDocument();
  if (root.kind != Json::Object)
    fail("%s: header is not a JSON object", p);

  CheckpointFile file;
  uint64_t dataSize = size - 8 - headerLen;
  bool sawMeta = false;
  for (size_t i = 0; i < root.keys.size(); ++i) {
    const std::string& name = root.keys[i];
    const Json& v = root.items[i];
    if (name != "__metadata__") {
      file.entries.push_back(parseEntry(path, name, v, dataSize));
      continue;
    }
    sawMeta = true;
    if (v.kind != Json::Object)
      fail("%s: __metadata__ is not an object", p);
    for (size_t j = 0; j < v.keys.size(); ++j) {
      if (v.items[j].kind != Json::String)
        fail("%s: __metadata__ value for %s is not a string", p, quoted(v.keys[j]).c_str());
      file.metadata[v.keys[j]] = v.items[j].str;
    }
  }
  checkTiling(path, file.entries, dataSize);

  auto sum = file.metadata.find(kChecksumKey);
  if (!sawMeta || sum == file.metadata.end())
    fail("%s: no \"%s\" in __metadata__; kiln writes one with every checkpoint", p, kChecksumKey);
  const char* data = bytes + 8 + headerLen;
  std::string actual = checksumText(fnv1a64(data, size_t(dataSize)));
  if (sum->second != actual)
    fail("%s: checksum mismatch: the header records %s, the data hashes to %s; the file is corrupt", p,
         quoted(sum->second).c_str(), actual.c_str());
  dataStart = size_t(8 + headerLen);
  return file;
}

CheckpointFile parseCheckpoint(const std::string& path, const char* bytes, size_t size) {
  size_t start = 0;
  CheckpointFile file = parseLayout(path, bytes, size, start);
  file.data.assign(bytes + start, bytes + size);
  return file;
}

CheckpointFile readCheckpoint(const std::string& path) {
  std::vector<char> bytes = readWholeFile(path);
  size_t start = 0;
  CheckpointFile file = parseLayout(path, bytes.data(), bytes.size(), start);
  bytes.erase(bytes.begin(), bytes.begin() + std::ptrdiff_t(start)); // no second copy of the data
  file.data = std::move(bytes);
  return file;
}

std::map<std::string, std::string> loadCheckpoint(const std::string& path,
                                                  const std::vector<CheckpointTensor>& expected) {
  CheckpointFile file = readCheckpoint(path);
  const char* p = path.c_str();
  std::string problems;
  auto problem = [&](const std::string& line) { problems += (problems.empty() ? "" : "\n") + line; };
  std::map<std::string, const CheckpointFile::Entry*> byName;
  for (const auto& e : file.entries)
    byName[e.name] = &e;
  std::set<std::string> expectedNames;
  std::vector<const CheckpointFile::Entry*> match;
  for (const CheckpointTensor& t : expected) {
    expectedNames.insert(t.name);
    auto it = byName.find(t.name);
    const CheckpointFile::Entry* found = it == byName.end() ? nullptr : it->second;
    match.push_back(found);
    std::string q = quoted(t.name);
    if (!found)
      problem(strFormat("%s: tensor %s (%s %s) is missing from the file", p, q.c_str(), dtypeName(t.dtype),
                        shapeText(t.shape).c_str()));
    else if (found->dtype != t.dtype)
      problem(strFormat("%s: tensor %s has dtype %s, the model expects %s", p, q.c_str(), dtypeName(found->dtype),
                        dtypeName(t.dtype)));
    else if (found->shape != t.shape)
      problem(strFormat("%s: tensor %s has shape %s, the model expects %s", p, q.c_str(),
                        shapeText(found->shape).c_str(), shapeText(t.shape).c_str()));
  }
  for (const auto& e : file.entries) {
    if (!expectedNames.count(e.name))
      problem(strFormat("%s: tensor %s is in the file but not in the model", p, quoted(e.name).c_str()));
  }
  if (!problems.empty())
    throw Error(problems);
  for (size_t i = 0; i < expected.size(); ++i)
    if (match[i]->end > match[i]->begin)
      std::memcpy(expected[i].data, file.data.data() + match[i]->begin, size_t(match[i]->end - match[i]->begin));
  return file.metadata;
}

} // namespace kiln::rt
