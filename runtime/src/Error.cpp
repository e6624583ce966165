// printf-style message building for Error (the runtime does not use fmt).
#include "kiln/rt/Error.h"

#include <cstdarg>
#include <cstdio>

namespace kiln::rt {

static std::string vformat(const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  int len = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (len <= 0)
    return len == 0 ? std::string() : std::string(fmt);
  std::string out(static_cast<size_t>(len), '\0');
  std::vsnprintf(out.data(), out.size() + 1, fmt, args);
  return out;
}

std::string strFormat(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string out = vformat(fmt, args);
  va_end(args);
  return out;
}

void fail(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::string msg = vformat(fmt, args);
  va_end(args);
  throw Error(msg);
}

} // namespace kiln::rt
