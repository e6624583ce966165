// Unit tests for the fortune-file reader (kiln/rt/Fortunes.h): entries,
// categories and lines, directory reading, the split, and rejected input.
#include "kiln/rt/Error.h"
#include "kiln/rt/Fortunes.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace kiln::rt;
namespace fs = std::filesystem;

namespace {

struct FortuneDir {
  fs::path path;
  FortuneDir() {
    path = fs::temp_directory_path() / ("kiln_fortunes_test_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~FortuneDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

std::string errorOf(const std::string& path) {
  try {
    loadFortunes(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("fortune entries are split on percent lines with their first line") {
  FortuneDir d;
  std::string f = d.write("love", "Roses are red.\n%\n\tTwo\nlines\n%\n%\nlast, no final percent\n");
  auto es = readFortuneFile(f);
  REQUIRE(es.size() == 3);
  CHECK(es[0].text == "Roses are red.\n");
  CHECK(es[0].line == 1);
  CHECK(es[1].text == "\tTwo\nlines\n");
  CHECK(es[1].line == 3);
  CHECK(es[2].text == "last, no final percent\n");
  CHECK(es[2].line == 7);
  CHECK(es[2].category == "love");
}

TEST_CASE("a fortune directory is read in name order without dat files") {
  FortuneDir d;
  d.write("zoo", "z1\n%\nz2\n");
  d.write("art", "a1\n");
  d.write("art.dat", std::string("\0\0\x01", 3));
  auto es = loadFortunes(d.path.string());
  REQUIRE(es.size() == 3);
  CHECK(es[0].category == "art");
  CHECK(es[1].text == "z1\n");
  CHECK(es[2].category == "zoo");

  std::vector<FortuneEntry> train, val;
  splitFortunes(es, 2, train, val);
  CHECK(train.size() == 2);
  REQUIRE(val.size() == 1);
  CHECK(val[0].text == "z1\n");
}

TEST_CASE("malformed fortune files are rejected with file and line") {
  FortuneDir d;
  const char nulText[] = "ok\n%\nbad\0byte\n";
  std::string nul = d.write("nul", std::string(nulText, sizeof nulText - 1));
  CHECK(errorOf(nul) == nul + ":3: NUL byte at column 4; not a fortune file (a .dat index?)");
  std::string utf = d.write("utf", "fine \xC3\xA9\n%\ncut \xC3\n");
  std::string utfError;
  try {
    readFortuneFile(utf, NonUtf8::Reject);
  } catch (const Error& e) {
    utfError = e.what();
  }
  CHECK(utfError == utf + ":3: invalid UTF-8 (byte 0xC3 at offset 14, column 5)");
  CHECK(readFortuneFile(utf)[1].text == "cut \xC3\x83\n");  // by default: decoded as Latin-1 ("cut Ã")
  std::string empty = d.write("empty", "%\n  \n%\n");
  CHECK(errorOf(empty).find(":3: no fortune entries") != std::string::npos);
  CHECK(errorOf((d.path / "missing").string()).find("not found") != std::string::npos);
}
