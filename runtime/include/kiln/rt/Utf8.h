// The text encoding of data files: every text loader hands out UTF-8, and a
// file that is not UTF-8 is either decoded as Latin-1 (saying so) or refused
// with its file, line and byte offset — never passed on mangled.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::rt {

/// What a text loader does with a file that is not valid UTF-8.
enum class NonUtf8 {
  /// Throw Error "FILE:LINE: invalid UTF-8 (byte 0xNN at offset B, column C)".
  Reject,
  /// Decode the whole file as Latin-1 (ISO-8859-1: byte N is U+00NN), which
  /// every byte string is, and print once on stderr
  /// "FILE: not UTF-8 (byte 0xNN at line L, offset B); decoded as Latin-1".
  /// For files such as MovieLens' u.item, written in Latin-1.
  DecodeLatin1,
};

/// Offset of the first byte of `s` that does not belong to a well-formed
/// UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing past
/// U+10FFFF), or std::string_view::npos when all of `s` is UTF-8.
size_t firstInvalidUtf8(std::string_view s);

/// Latin-1 bytes as UTF-8.
std::string latin1ToUtf8(std::string_view s);

/// 1-based line and column of byte `offset` of `s`.
void lineColumnOf(std::string_view s, size_t offset, long long& line, long long& column);

/// `bytes`, the contents of file `path`, as UTF-8 under `mode` (see NonUtf8).
/// `decodedLatin1` (optional) is set when the Latin-1 fallback was taken.
std::string decodeText(const std::string& path, std::string bytes, NonUtf8 mode, bool* decodedLatin1 = nullptr);

} // namespace kiln::rt
