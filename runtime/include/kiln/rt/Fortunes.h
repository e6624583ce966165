// Reads fortune-cookie files (Debian's `fortunes`, `fortunes-min`): plain
// text, entries separated by lines holding only `%`. Used by the text
// examples (char_rnn; category = file name for classifiers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/rt/Utf8.h"

namespace kiln::rt {

struct FortuneEntry {
  /// The entry's lines, each ending in '\n' (readFortuneFile), or joined with
  /// '\n' without a final one (Text.h's readFortunes). UTF-8.
  std::string text;
  std::string category;  ///< The file's base name, e.g. "computers".
  int64_t line = 0;      ///< 1-based line of the entry's first line.
};

/// Reads one fortune file. Text is UTF-8: a file that is not is decoded as
/// Latin-1 with a note on stderr, or refused with file:line and byte offset
/// under NonUtf8::Reject (Utf8.h). Throws Error naming the file and line for
/// input that is not fortune text: a NUL byte, a line longer than 4096 bytes,
/// or a file without a single entry.
std::vector<FortuneEntry> readFortuneFile(const std::string& path, NonUtf8 nonUtf8 = NonUtf8::DecodeLatin1);

/// `path` is a fortune file or a directory; for a directory every regular
/// file whose name has no '.' (so not the .dat indexes or .u8 links) is read,
/// in name order. Throws Error if the path is missing or holds no fortune file.
std::vector<FortuneEntry> loadFortunes(const std::string& path, NonUtf8 nonUtf8 = NonUtf8::DecodeLatin1);

/// Deterministic train/validation split by position: entry i goes to
/// validation when i % every == every - 1 (every >= 2).
void splitFortunes(const std::vector<FortuneEntry>& all, int64_t every, std::vector<FortuneEntry>& train,
                   std::vector<FortuneEntry>& validation);

} // namespace kiln::rt
