// Text loaders and encodings: a Latin-1 u.item (MovieLens 100k's encoding)
// is decoded to UTF-8 with one note on stderr, or refused with file:line and
// byte offset on request; malformed rows name their line; fortune files get
// the same treatment; the UTF-8 validator refuses what RFC 3629 refuses.
// docs/errors.md ("Text files and their encoding") shows the messages.
#include "kiln/rt/Error.h"
#include "kiln/rt/Fortunes.h"
#include "kiln/rt/Ratings.h"
#include "kiln/rt/Text.h"
#include "kiln/rt/Utf8.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

using namespace kiln::rt;
namespace fs = std::filesystem;

namespace {

// Files in a fresh directory, so messages can show the short name u.item.
struct TempDir {
  fs::path path, oldCwd;
  TempDir() {
    path = fs::temp_directory_path() / ("kiln_text_encoding_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
    oldCwd = fs::current_path();
    fs::current_path(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::current_path(oldCwd, ec);
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
  }
};

std::string errorOf(auto&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Runs f with stderr sent to a file; returns what it printed there.
std::string stderrOf(auto&& f) {
  std::fflush(stderr);
  std::string path = (fs::temp_directory_path() / ("kiln_stderr_" + std::to_string(::getpid()))).string();
  int saved = ::dup(2);
  std::FILE* tmp = std::fopen(path.c_str(), "w");
  ::dup2(::fileno(tmp), 2);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(tmp);
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(path);
  return text;
}

// Three rows in MovieLens' u.item layout, written in Latin-1: 0xE9 is é.
const std::string kLatin1Items =
    "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|0|0|0|1|1|1\n"
    "2|Mis\xE9rables, Les (1995)|01-Jan-1995||http://us.imdb.com/Title?Mis%E9rables|0|0|0|0|0|0\n"
    "3|Cit\xE9 des enfants perdus, La (1995)|01-Jan-1995||x|0|0\n";

}  // namespace

TEST_CASE("text files: a Latin-1 u.item is decoded to UTF-8, saying so once") {
  TempDir d;
  d.write("u.item", kLatin1Items);
  std::vector<std::string> titles;
  std::string note = stderrOf([&] { titles = loadItemTitles("u.item", 4); });
  CHECK(note == "u.item: not UTF-8 (byte 0xE9 at line 2, offset 103); decoded as Latin-1\n");
  REQUIRE(titles.size() == 4);
  CHECK(titles[0] == "Toy Story (1995)");
  CHECK(titles[1] == "Mis\xC3\xA9rables, Les (1995)");  // "Misérables" in UTF-8
  CHECK(titles[2] == "Cit\xC3\xA9 des enfants perdus, La (1995)");
  CHECK(titles[3] == "item 4");
  // a UTF-8 file is read as it is, without a note
  d.write("utf8.item", "1|Mis\xC3\xA9rables, Les (1995)|x\n");
  std::string quiet = stderrOf([&] { titles = loadItemTitles("utf8.item", 1); });
  CHECK(quiet.empty());
  CHECK(titles[0] == "Mis\xC3\xA9rables, Les (1995)");
}

TEST_CASE("text files: NonUtf8::Reject refuses a Latin-1 file with line and byte offset") {
  TempDir d;
  d.write("u.item", kLatin1Items);
  CHECK(errorOf([] { loadItemTitles("u.item", 4, NonUtf8::Reject); }) ==
        "u.item:2: invalid UTF-8 (byte 0xE9 at offset 103, column 6)");
  d.write("fortunes", "fine\n%\ncaf\xE9 au lait\n");
  CHECK(errorOf([] { readFortunes("fortunes", NonUtf8::Reject); }) ==
        "fortunes:3: invalid UTF-8 (byte 0xE9 at offset 10, column 4)");
  CHECK(errorOf([] { readFortuneFile("fortunes", NonUtf8::Reject); }) ==
        "fortunes:3: invalid UTF-8 (byte 0xE9 at offset 10, column 4)");
  // and by default both fortune readers decode it
  std::vector<FortuneEntry> e;
  std::string note = stderrOf([&] { e = readFortunes("fortunes"); });
  CHECK(note == "fortunes: not UTF-8 (byte 0xE9 at line 3, offset 10); decoded as Latin-1\n");
  REQUIRE(e.size() == 2);
  CHECK(e[1].text == "caf\xC3\xA9 au lait");
  CHECK(e[1].category == "fortunes");
  stderrOf([&] { e = readFortuneFile("fortunes"); });
  CHECK(e[1].text == "caf\xC3\xA9 au lait\n");
}

TEST_CASE("text files: malformed u.item rows name file and line") {
  TempDir d;
  struct Case {
    const char* text;
    const char* error;
  };
  Case cases[] = {
      {"1|a|x\nnope\n", "u.item:2: expected 'id|title|...' with an integer id >= 1"},
      {"1|a\n0|zero\n", "u.item:2: expected 'id|title|...' with an integer id >= 1"},
      {"1|a\n\n x|b\n", "u.item:3: expected 'id|title|...' with an integer id >= 1"},
      {"1|a\n2|b\n1|Mis\xE9rables\n", "u.item:3: item id 1 appears again (first on line 1)"},
  };
  for (const Case& c : cases) {
    d.write("u.item", c.text);
    std::string err;
    stderrOf([&] { err = errorOf([] { loadItemTitles("u.item", 3); }); });
    CHECK(err == c.error);
  }
  CHECK(errorOf([] { loadItemTitles("absent.item", 3); }) == "absent.item: cannot open item file");
}

TEST_CASE("text files: a u.data field with stray bytes is shown escaped, not raw") {
  TempDir d;
  d.write("u.data", "1\t2\t3\t4\n1\t2\xE9\t3\t4\n");
  CHECK(errorOf([] { loadUData("u.data"); }) == "u.data:2: item id '2\\xE9' is not an integer in 1..2^30");
}

TEST_CASE("text files: the UTF-8 validator follows RFC 3629") {
  const size_t npos = std::string_view::npos;
  CHECK(firstInvalidUtf8("plain ascii\n") == npos);
  CHECK(firstInvalidUtf8("\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == npos);  // é € 😀
  CHECK(firstInvalidUtf8("ab\xE9") == 2);                // Latin-1 é
  CHECK(firstInvalidUtf8("\xC0\xAF") == 0);              // overlong '/'
  CHECK(firstInvalidUtf8("x\xE0\x80\xAF") == 1);         // overlong 3-byte form
  CHECK(firstInvalidUtf8("\xED\xA0\x80") == 0);          // a surrogate (U+D800)
  CHECK(firstInvalidUtf8("\xF4\x90\x80\x80") == 0);      // past U+10FFFF
  CHECK(firstInvalidUtf8("ok\xE2\x82") == 2);            // cut short at the end
  CHECK(firstInvalidUtf8("\x80") == 0);                  // a lone continuation byte
  CHECK(latin1ToUtf8("Mis\xE9rables \xFF\x80") == "Mis\xC3\xA9rables \xC3\xBF\xC2\x80");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  CHECK(firstInvalidUtf8(latin1ToUtf8(all)) == npos);
}
