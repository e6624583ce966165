// UTF-8 validation and the Latin-1 fallback of the text loaders (see Utf8.h).
#include "kiln/rt/Utf8.h"

#include "kiln/rt/Error.h"

#include <cstdio>

namespace kiln::rt {

size_t firstInvalidUtf8(std::string_view s) {
  const size_t n = s.size();
  auto at = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  size_t i = 0;
  while (i < n) {
    unsigned char c = at(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // the lead byte fixes the length and the range of the second byte
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;               // no overlong 3-byte forms
    else if (c == 0xED) len = 3, hi = 0x9F;               // no surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;               // no overlong 4-byte forms
    else if (c == 0xF4) len = 4, hi = 0x8F;               // nothing past U+10FFFF
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else return i;                                        // 0x80..0xC1, 0xF5..0xFF
    if (i + len > n || at(i + 1) < lo || at(i + 1) > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((at(i + k) & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string latin1ToUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

void lineColumnOf(std::string_view s, size_t offset, long long& line, long long& column) {
  line = 1;
  size_t start = 0;
  for (size_t i = 0; i < offset && i < s.size(); ++i)
    if (s[i] == '\n') {
      ++line;
      start = i + 1;
    }
  column = static_cast<long long>(offset - start) + 1;
}

std::string decodeText(const std::string& path, std::string bytes, NonUtf8 mode, bool* decodedLatin1) {
  if (decodedLatin1)
    *decodedLatin1 = false;
  size_t bad = firstInvalidUtf8(bytes);
  if (bad == std::string_view::npos)
    return bytes;
  long long line, column;
  lineColumnOf(bytes, bad, line, column);
  unsigned byte = static_cast<unsigned char>(bytes[bad]);
  if (mode == NonUtf8::Reject)
    fail("%s:%lld: invalid UTF-8 (byte 0x%02X at offset %zu, column %lld)", path.c_str(), line, byte, bad, column);
  std::fprintf(stderr, "%s: not UTF-8 (byte 0x%02X at line %lld, offset %zu); decoded as Latin-1\n", path.c_str(), byte,
               line, bad);
  if (decodedLatin1)
    *decodedLatin1 = true;
  return latin1ToUtf8(bytes);
}

} // namespace kiln::rt
