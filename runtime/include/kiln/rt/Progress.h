// A progress bar on stderr for long loops (epochs, evaluation). On a terminal
// it redraws in place at most ~10 times a second; otherwise (logs, CI) it stays
// silent until finish(), which prints one summary line. Never writes stdout.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace kiln::rt {

class Progress {
public:
  /// total <= 0 means unknown: no bar, just counts and rate.
  Progress(std::string label, int64_t total);

  /// For tests: draw to `out`, as on a terminal if `interactive`.
  Progress(std::string label, int64_t total, std::FILE* out, bool interactive);

  /// Ends an unfinished line on a terminal so later output starts clean.
  ~Progress();

  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// `done` items finished so far; `info` is shown after the rate, e.g.
  /// "loss 0.3124".
  void update(int64_t done, std::string_view info = {});

  /// Prints the final line with the last `done` given to update (or total if
  /// update was never called). Further calls do nothing.
  void finish(std::string_view info = {});

private:
  using Clock = std::chrono::steady_clock;

  std::string render(std::string_view info) const;
  void draw(std::string_view info, bool endLine);

  std::string Label;
  int64_t Total;
  std::FILE* Out;
  bool Interactive;
  bool Finished = false;
  bool Updated = false;
  bool LineOpen = false; ///< A partial line was drawn and needs a newline.
  size_t LastWidth = 0;  ///< Length of the line drawn last, to blank leftovers.
  size_t MaxWidth = 0;   ///< Terminal columns - 1; 0 = no limit.
  int64_t Done = 0;
  Clock::time_point Start;
  Clock::time_point LastDraw;
};

/// Formats seconds as "4.2s", "3m07s" or "1h02m".
std::string formatDuration(double seconds);

} // namespace kiln::rt
