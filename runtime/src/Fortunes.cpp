// Fortune-file reader: splits on `%` lines and rejects what is not text.
#include "kiln/rt/Fortunes.h"

#include "kiln/rt/Error.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace kiln::rt {

static constexpr size_t kMaxLine = 4096;

static void checkLine(const std::string& path, int64_t lineNo, const std::string& line) {
  if (line.size() > kMaxLine)
    fail("%s:%lld: line of %zu bytes is longer than %zu; not a fortune file", path.c_str(), (long long)lineNo,
         line.size(), kMaxLine);
}

std::vector<FortuneEntry> readFortuneFile(const std::string& path, NonUtf8 nonUtf8) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    fail("%s: cannot open fortune file", path.c_str());
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad())
    fail("%s: read error", path.c_str());
  // a binary file is named as such before its bytes are taken for Latin-1
  if (size_t nul = bytes.find('\0'); nul != std::string::npos) {
    long long line, column;
    lineColumnOf(bytes, nul, line, column);
    fail("%s:%lld: NUL byte at column %lld; not a fortune file (a .dat index?)", path.c_str(), line, column);
  }
  std::istringstream in(decodeText(path, std::move(bytes), nonUtf8));
  std::string category = std::filesystem::path(path).filename().string();
  std::vector<FortuneEntry> out;
  FortuneEntry cur;
  cur.category = category;
  std::string line;
  int64_t lineNo = 0;
  auto flush = [&] {
    if (cur.text.find_first_not_of(" \t\r\n") != std::string::npos)
      out.push_back(cur);
    cur.text.clear();
  };
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    checkLine(path, lineNo, line);
    if (line == "%") {
      flush();
      continue;
    }
    if (cur.text.empty())
      cur.line = lineNo;
    cur.text += line;
    cur.text += '\n';
  }
  flush();
  if (out.empty())
    fail("%s:%lld: no fortune entries (entries are separated by lines holding only %%)", path.c_str(),
         (long long)lineNo);
  return out;
}

std::vector<FortuneEntry> loadFortunes(const std::string& path, NonUtf8 nonUtf8) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec))
    fail("%s: not found; install Debian's fortunes or fortunes-min (scripts/install-deps.sh)", path.c_str());
  if (!fs::is_directory(path, ec))
    return readFortuneFile(path, nonUtf8);
  std::vector<std::string> files;
  for (const fs::directory_entry& e : fs::directory_iterator(path, ec)) {
    std::string name = e.path().filename().string();
    if (name.find('.') == std::string::npos && e.is_regular_file(ec))
      files.push_back(e.path().string());
  }
  if (files.empty())
    fail("%s: no fortune files (names without '.') in this directory", path.c_str());
  std::sort(files.begin(), files.end());
  std::vector<FortuneEntry> all;
  for (const std::string& f : files) {
    std::vector<FortuneEntry> part = readFortuneFile(f, nonUtf8);
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

void splitFortunes(const std::vector<FortuneEntry>& all, int64_t every, std::vector<FortuneEntry>& train,
                   std::vector<FortuneEntry>& validation) {
  if (every < 2)
    fail("splitFortunes: every must be at least 2, got %lld", (long long)every);
  train.clear();
  validation.clear();
  for (size_t i = 0; i < all.size(); ++i)
    (static_cast<int64_t>(i) % every == every - 1 ? validation : train).push_back(all[i]);
}

} // namespace kiln::rt
