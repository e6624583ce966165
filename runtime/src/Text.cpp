// Fortune files, word tokenizer and vocabulary (see Text.h).
#include "kiln/rt/Text.h"

#include "kiln/rt/Error.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace kiln::rt {

std::vector<FortuneEntry> readFortunes(const std::string& path, NonUtf8 nonUtf8) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    fail("%s: cannot open fortune file (install the Debian packages fortunes and fortunes-min)",
         path.c_str());
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad())
    fail("%s: read error", path.c_str());
  if (size_t nul = bytes.find('\0'); nul != std::string::npos) {
    long long line, column;
    lineColumnOf(bytes, nul, line, column);
    fail("%s:%lld: NUL byte in a fortune file (is this a .dat index?)", path.c_str(), line);
  }
  std::istringstream in(decodeText(path, std::move(bytes), nonUtf8));
  const std::string category = std::filesystem::path(path).filename().string();
  std::vector<FortuneEntry> entries;
  FortuneEntry cur;
  std::string line;
  int64_t lineNo = 0;
  auto flush = [&] {
    while (!cur.text.empty() && cur.text.back() == '\n')
      cur.text.pop_back();
    if (!cur.text.empty()) {
      cur.category = category;
      entries.push_back(std::move(cur));
    }
    cur = FortuneEntry();
  };
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line == "%") {
      flush();
      continue;
    }
    if (cur.text.empty()) {
      if (line.find_first_not_of(" \t") == std::string::npos)
        continue; // leading blank lines are not part of the entry
      cur.line = lineNo;
    } else {
      cur.text += '\n';
    }
    cur.text += line;
  }
  flush();
  if (entries.empty())
    fail("%s: no fortune entries (entries are separated by lines holding only %%)", path.c_str());
  return entries;
}

static bool isWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

std::vector<std::string> tokenizeWords(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (isWordByte(c)) {
      cur += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
      continue;
    }
    // an apostrophe joins two word runs ("don't"); anywhere else it separates
    if (c == '\'' && !cur.empty() && i + 1 < text.size() &&
        isWordByte(static_cast<unsigned char>(text[i + 1]))) {
      cur += '\'';
      continue;
    }
    if (!cur.empty())
      words.push_back(std::move(cur));
    cur.clear();
  }
  if (!cur.empty())
    words.push_back(std::move(cur));
  return words;
}

Vocabulary Vocabulary::build(const std::vector<std::vector<std::string>>& docs, int64_t minCount,
                             int64_t maxSize) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& doc : docs)
    for (const std::string& w : doc)
      ++counts[w];
  std::vector<std::pair<std::string, int64_t>> sorted;
  for (const auto& [w, n] : counts) // order fixed by the sort below
    if (n >= minCount)
      sorted.emplace_back(w, n);
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (maxSize > 0 && static_cast<int64_t>(sorted.size()) > maxSize)
    sorted.resize(static_cast<size_t>(maxSize));
  Vocabulary v;
  for (auto& [w, n] : sorted) {
    v.Ids.emplace(w, static_cast<int32_t>(v.Words.size()));
    v.Words.push_back(w);
    v.Counts.push_back(n);
    v.Total += n;
  }
  return v;
}

int32_t Vocabulary::id(std::string_view word) const {
  auto it = Ids.find(std::string(word));
  return it == Ids.end() ? -1 : it->second;
}

std::vector<int32_t> Vocabulary::encode(const std::vector<std::string>& tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& t : tokens)
    if (int32_t i = id(t); i >= 0)
      ids.push_back(i);
  return ids;
}

} // namespace kiln::rt
