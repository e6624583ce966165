// The compile cache (Cache.h): keys, the entry format, atomic writes.
#include "Cache.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <link.h>
#include <unistd.h>

#include <llvm/ADT/ArrayRef.h>
#include <llvm/Support/SHA256.h>

namespace kiln::driver {

namespace fs = std::filesystem;

namespace {

// Bump when the entry layout or anything the key leaves out changes.
constexpr std::string_view kFormat = "kiln object cache 1";
constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'O', 'B', 'J', '1'};
constexpr size_t kHeader = 8 + 8 + 32 + 32;

using Digest = std::array<uint8_t, 32>;

Digest sha256(std::string_view data) {
  return llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

std::string hex(const Digest& d) {
  std::string s;
  for (uint8_t b : d) s += fmt::format("{:02x}", b);
  return s;
}

bool unhex(const std::string& s, Digest& out) {
  if (s.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    unsigned v = 0;
    for (size_t j = 0; j < 2; ++j) {
      char c = s[2 * i + j];
      unsigned d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 16;
      if (d == 16) return false;
      v = v * 16 + d;
    }
    out[i] = static_cast<uint8_t>(v);
  }
  return true;
}

// The GNU build id of the loaded object that contains this code (the
// program or shared library kiln is linked into), as hex; empty if none.
std::string buildId() {
  struct Search {
    uintptr_t addr;
    std::string id;
  } search{reinterpret_cast<uintptr_t>(&buildId), {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* s = static_cast<Search*>(data);
        bool contains = false;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& ph = info->dlpi_phdr[i];
          uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
          if (ph.p_type == PT_LOAD && s->addr >= lo && s->addr < lo + ph.p_memsz) contains = true;
        }
        if (!contains) return 0;
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const auto& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
          const char* end = p + ph.p_memsz;
          while (p + sizeof(ElfW(Nhdr)) <= end) {
            ElfW(Nhdr) nh;
            std::memcpy(&nh, p, sizeof nh);
            const char* name = p + sizeof nh;
            const char* desc = name + ((nh.n_namesz + 3) & ~3u);
            if (desc + nh.n_descsz > end) break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
              for (uint32_t b = 0; b < nh.n_descsz; ++b)
                s->id += fmt::format("{:02x}", static_cast<uint8_t>(desc[b]));
              return 1;
            }
            p = desc + ((nh.n_descsz + 3) & ~3u);
          }
        }
        return 1;
      },
      &search);
  return search.id;
}

const std::string& kilnIdentity() {
  static const std::string id = buildId();
  return id;
}

}  // namespace

CacheConfig cacheConfig() {
  CacheConfig c;
  const char* on = std::getenv("KILN_CACHE");
  if (on && std::string_view(on) == "0") return c;
  if (kilnIdentity().empty()) return c;  // no way to tell one build of kiln from another
  if (const char* dir = std::getenv("KILN_CACHE_DIR"); dir && *dir) c.dir = dir;
  else if (const char* home = std::getenv("HOME"); home && *home) c.dir = (fs::path(home) / ".cache" / "kiln").string();
  c.enabled = !c.dir.empty();
  return c;
}

std::string cacheKey(const std::vector<std::string>& parts) {
  std::string all = fmt::format("{}\n{}\n", kFormat, kilnIdentity());
  for (const std::string& p : parts) all += fmt::format("{}:{}\n", p.size(), p);
  return hex(sha256(all));
}

std::string cachePath(const CacheConfig& c, const std::string& key) {
  return (fs::path(c.dir) / (key + ".kobj")).string();
}

std::optional<std::vector<char>> cacheLoad(const CacheConfig& c, const std::string& key) {
  Digest want;
  if (!c.enabled || !unhex(key, want)) return std::nullopt;
  std::ifstream f(cachePath(c, key), std::ios::binary);
  if (!f) return std::nullopt;
  std::vector<char> all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (all.size() < kHeader || std::memcmp(all.data(), kMagic, 8) != 0) return std::nullopt;
  uint64_t bytes;
  std::memcpy(&bytes, all.data() + 8, 8);
  if (bytes != all.size() - kHeader || std::memcmp(all.data() + 16, want.data(), 32) != 0) return std::nullopt;
  std::string_view payload(all.data() + kHeader, bytes);
  Digest sum = sha256(payload);
  if (std::memcmp(all.data() + 48, sum.data(), 32) != 0) return std::nullopt;
  return std::vector<char>(payload.begin(), payload.end());
}

bool cacheStore(const CacheConfig& c, const std::string& key, const std::vector<char>& object) {
  Digest k;
  if (!c.enabled || !unhex(key, k)) return false;
  std::error_code ec;
  fs::create_directories(c.dir, ec);
  if (ec) return false;
  std::string path = cachePath(c, key);
  // unique per process and call, in the same directory so rename is atomic
  static std::atomic<uint64_t> counter{0};
  std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    uint64_t bytes = object.size();
    Digest sum = sha256(std::string_view(object.data(), object.size()));
    f.write(kMagic, 8);
    f.write(reinterpret_cast<const char*>(&bytes), 8);
    f.write(reinterpret_cast<const char*>(k.data()), 32);
    f.write(reinterpret_cast<const char*>(sum.data()), 32);
    f.write(object.data(), static_cast<std::streamsize>(object.size()));
    f.close();
    if (!f) {
      fs::remove(tmp, ec);
      return false;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

}  // namespace kiln::driver
