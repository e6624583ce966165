// Text data for the example programs: fortune-cookie files (entries separated
// by lines holding only "%"), a word tokenizer and a word vocabulary.
// (Fortunes.h has the other fortune reader, with the same FortuneEntry.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kiln/rt/Fortunes.h"  // FortuneEntry
#include "kiln/rt/Utf8.h"

namespace kiln::rt {

/// Where the Debian `fortunes` / `fortunes-min` packages put their files.
inline constexpr const char* kFortunesDir = "/usr/share/games/fortunes";

/// Reads a fortune file as readFortuneFile does (the same checks and
/// errors), but each entry's text is its lines joined with '\n' (no
/// trailing newline), leading blank lines dropped, and its line the 1-based
/// line of its first line of text.
std::vector<FortuneEntry> readFortunes(const std::string& path, NonUtf8 nonUtf8 = NonUtf8::DecodeLatin1);

/// Lowercased words of `text`: maximal runs of ASCII letters, digits and
/// non-ASCII bytes (UTF-8 letters stay whole), plus apostrophes inside a word
/// ("don't" is one word, "'quoted'" is "quoted"). Everything else separates.
std::vector<std::string> tokenizeWords(std::string_view text);

/// A word <-> id table built from tokenized documents. Ids are 0-based and
/// ordered by decreasing count, ties broken alphabetically, so the same corpus
/// always gives the same ids.
class Vocabulary {
public:
  /// Keeps words seen at least `minCount` times, at most `maxSize` of them
  /// (maxSize <= 0: no limit).
  static Vocabulary build(const std::vector<std::vector<std::string>>& docs, int64_t minCount,
                          int64_t maxSize = 0);

  /// The word's id, or -1 if it is not in the vocabulary.
  int32_t id(std::string_view word) const;
  const std::string& word(int32_t id) const { return Words.at(static_cast<size_t>(id)); }
  /// How often the word occurred in the documents it was built from.
  int64_t count(int32_t id) const { return Counts.at(static_cast<size_t>(id)); }
  int64_t size() const { return static_cast<int64_t>(Words.size()); }
  /// Sum of count() over the vocabulary.
  int64_t totalCount() const { return Total; }

  /// Ids of the tokens that are in the vocabulary, in order (others dropped).
  std::vector<int32_t> encode(const std::vector<std::string>& tokens) const;

private:
  std::vector<std::string> Words;
  std::vector<int64_t> Counts;
  std::unordered_map<std::string, int32_t> Ids; // lookup only, never iterated
  int64_t Total = 0;
};

} // namespace kiln::rt
