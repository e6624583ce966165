// printf-style message building for Error (the runtime does not use fmt).
#include "kiln/rt/Error.h"

#include <cstdint>
#include <cstring>

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

void throwIndexError(const char* function, const char* input, long long bound, const char* use, const char* record) {
  int32_t value;
  int64_t position;
  std::memcpy(&value, record + 4, sizeof value);
  std::memcpy(&position, record + 8, sizeof position);
  fail("%s: input \"%s\" element %lld is %d, outside [0, %lld) (indices for %s); nothing was computed", function, input,
       static_cast<long long>(position), value, bound, use);
}

} // namespace kiln::rt
