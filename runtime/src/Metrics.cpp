// Metrics CSV writer and the matplotlib plot hook for the examples.
#include "kiln/rt/Metrics.h"

#include "kiln/rt/Error.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>

namespace kiln::rt {

void makeDirs(const std::string& dir) {
  if (dir.empty()) return;
  for (size_t at = 1; at <= dir.size(); ++at) {
    if (at != dir.size() && dir[at] != '/') continue;
    std::string part = dir.substr(0, at);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      fail("cannot create directory %s: %s", part.c_str(), std::strerror(errno));
  }
}

MetricsLog::MetricsLog(std::string path, std::vector<std::string> columns) : Path(std::move(path)), Columns(columns.size()) {
  size_t slash = Path.find_last_of('/');
  if (slash != std::string::npos) makeDirs(Path.substr(0, slash));
  File = std::fopen(Path.c_str(), "w");
  if (!File) fail("cannot write %s: %s", Path.c_str(), std::strerror(errno));
  for (size_t i = 0; i < columns.size(); ++i) std::fprintf(File, "%s%s", i ? "," : "", columns[i].c_str());
  std::fprintf(File, "\n");
  std::fflush(File);
}

MetricsLog::~MetricsLog() {
  if (File) std::fclose(File);
}

void MetricsLog::row(const std::vector<double>& values) {
  if (values.size() != Columns)
    fail("%s: a row has %zu values for %zu columns", Path.c_str(), values.size(), Columns);
  for (size_t i = 0; i < values.size(); ++i) std::fprintf(File, "%s%.9g", i ? "," : "", values[i]);
  std::fprintf(File, "\n");
  std::fflush(File);
}

// Quotes a path for the shell (single quotes, with embedded ones escaped).
static std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

bool plotMetrics(const std::string& csv, const std::string& png, const std::string& title, const std::string& scriptDir) {
  std::string cmd = "/usr/bin/python3 " + shellQuote(scriptDir + "/plot_metrics.py") + " " + shellQuote(csv) + " " +
                    shellQuote(png) + " " + shellQuote(title);
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::fprintf(stderr, "note: no plot written (needs /usr/bin/python3 with matplotlib: apt-get install python3-matplotlib)\n");
    return false;
  }
  return true;
}

} // namespace kiln::rt
