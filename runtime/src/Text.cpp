// Fortune files, word tokenizer and vocabulary (see Text.h).
#include "kiln/rt/Text.h"

#include "kiln/rt/Error.h"

#include <algorithm>

namespace kiln::rt {

// The same reader as readFortuneFile (one set of checks and errors), with
// each entry's leading blank lines dropped (its line moves to its first
// text line) and its lines joined without a final newline.
std::vector<FortuneEntry> readFortunes(const std::string& path, NonUtf8 nonUtf8) {
  std::vector<FortuneEntry> entries = readFortuneFile(path, nonUtf8);
  for (FortuneEntry& e : entries) {
    size_t start = 0;
    while (start < e.text.size()) {
      size_t eol = e.text.find('\n', start);
      if (e.text.find_first_not_of(" \t", start) < eol) break;  // a line with text
      start = eol + 1;
      ++e.line;
    }
    e.text.erase(0, start);
    while (!e.text.empty() && e.text.back() == '\n') e.text.pop_back();
  }
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
