// Progress bar on stderr: redrawn in place on a terminal, one line otherwise.
#include "kiln/rt/Progress.h"

#include "kiln/rt/Error.h"

#include <sys/ioctl.h>
#include <unistd.h>

namespace kiln::rt {

static constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
static constexpr int kBarWidth = 24;

std::string formatDuration(double seconds) {
  if (seconds < 60)
    return strFormat("%.1fs", seconds);
  auto whole = static_cast<long long>(seconds);
  if (whole < 3600)
    return strFormat("%lldm%02llds", whole / 60, whole % 60);
  return strFormat("%lldh%02lldm", whole / 3600, whole / 60 % 60);
}

static size_t terminalWidth(int fd) {
  struct winsize ws;
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
    return ws.ws_col - 1; // writing the last column makes some terminals wrap
  return 79;
}

Progress::Progress(std::string label, int64_t total)
    : Progress(std::move(label), total, stderr, ::isatty(STDERR_FILENO) == 1) {
  if (Interactive)
    MaxWidth = terminalWidth(STDERR_FILENO);
}

Progress::Progress(std::string label, int64_t total, std::FILE* out, bool interactive)
    : Label(std::move(label)), Total(total), Out(out), Interactive(interactive),
      Start(Clock::now()), LastDraw(Start) {}

Progress::~Progress() {
  if (LineOpen && !Finished) {
    std::fputc('\n', Out);
    std::fflush(Out);
  }
}

std::string Progress::render(std::string_view info) const {
  double elapsed = std::chrono::duration<double>(Clock::now() - Start).count();
  std::string line = Label;
  if (Total > 0) {
    double fraction = static_cast<double>(Done) / static_cast<double>(Total);
    fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    int filled = static_cast<int>(fraction * kBarWidth);
    line += " [";
    line.append(static_cast<size_t>(filled), '#');
    line.append(static_cast<size_t>(kBarWidth - filled), '.');
    line += strFormat("] %lld/%lld", (long long)Done, (long long)Total);
  } else {
    line += strFormat(" %lld", (long long)Done);
  }
  if (elapsed > 0 && Done > 0) {
    double rate = static_cast<double>(Done) / elapsed;
    line += rate >= 100 ? strFormat("  %.0f it/s", rate) : strFormat("  %.2f it/s", rate);
  }
  line += "  " + formatDuration(elapsed);
  if (!info.empty()) {
    line += "  ";
    line += info;
  }
  return line;
}

void Progress::draw(std::string_view info, bool endLine) {
  std::string line = render(info);
  if (Interactive) {
    if (MaxWidth && line.size() > MaxWidth)
      line.resize(MaxWidth);
    size_t width = line.size();
    if (width < LastWidth)
      line.append(LastWidth - width, ' '); // blank what the longer line left
    LastWidth = width;
    line.insert(line.begin(), '\r');
  }
  if (endLine)
    line += '\n';
  std::fwrite(line.data(), 1, line.size(), Out);
  std::fflush(Out);
  LineOpen = Interactive && !endLine;
}

void Progress::update(int64_t done, std::string_view info) {
  Done = done;
  Updated = true;
  if (!Interactive || Finished)
    return;
  auto now = Clock::now();
  bool complete = Total > 0 && done >= Total;
  if (LineOpen && !complete && now - LastDraw < kRedrawInterval)
    return;
  LastDraw = now;
  draw(info, false);
}

void Progress::finish(std::string_view info) {
  if (Finished)
    return;
  Finished = true;
  if (!Updated && Total > 0)
    Done = Total;
  draw(info, true);
}

} // namespace kiln::rt
