// Training metrics for the example programs: a CSV file (one row per epoch
// or evaluation) and a plot of its curves made by matplotlib.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace kiln::rt {

/// Writes `path` (creating its directories) with a header of `columns`;
/// each row() appends one line and flushes, so a killed run keeps its rows.
class MetricsLog {
public:
  MetricsLog(std::string path, std::vector<std::string> columns);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  /// One value per column; throws Error on a count mismatch.
  void row(const std::vector<double>& values);
  const std::string& path() const { return Path; }

private:
  std::string Path;
  size_t Columns;
  std::FILE* File = nullptr;
};

/// Creates a directory and its parents (like mkdir -p); throws on failure.
void makeDirs(const std::string& dir);

/// Plots every column of a metrics CSV against its first column into `png`
/// with scripts/plot_metrics.py (matplotlib). Returns false, with a note on
/// stderr, if python3 or matplotlib is missing: plots are a convenience, so
/// their absence never fails a run. `scriptDir` is where plot_metrics.py is.
bool plotMetrics(const std::string& csv, const std::string& png, const std::string& title,
                 const std::string& scriptDir);

} // namespace kiln::rt
