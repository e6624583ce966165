// Unit tests for the runtime's text, ratings and embedding helpers: fortune
// files, the tokenizer and vocabulary, u.data / u.item loading with file:line
// errors, the synthetic ratings, the fixed split and cosine neighbours.
#include "kiln/rt/Error.h"
#include "kiln/rt/Ratings.h"
#include "kiln/rt/Text.h"
#include "kiln/rt/Vectors.h"

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

using namespace kiln::rt;
namespace fs = std::filesystem;

namespace {

std::string writeTemp(const std::string& name, const std::string& text) {
  fs::path p = fs::temp_directory_path() / ("kiln_text_test_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

std::string errorOf(auto&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

} // namespace

TEST_CASE("readFortunes splits on percent lines and keeps line numbers") {
  std::string p = writeTemp("f1", "\nFirst one,\ntwo lines.\n%\n%\nSecond.\r\n%\n  \nThird\n");
  std::vector<FortuneEntry> e = readFortunes(p);
  REQUIRE(e.size() == 3);
  CHECK(e[0].text == "First one,\ntwo lines.");
  CHECK(e[0].line == 2);
  CHECK(e[1].text == "Second.");
  CHECK(e[1].line == 6);
  CHECK(e[2].text == "Third");
  CHECK(e[2].line == 9);
  fs::remove(p);
}

TEST_CASE("readFortunes rejects binary and empty files naming them") {
  std::string bin = writeTemp("f2", std::string("ok\n%\nbad\0byte\n", 14));
  CHECK(errorOf([&] { readFortunes(bin); }) == bin + ":3: NUL byte at column 4; not a fortune file (a .dat index?)");
  std::string empty = writeTemp("f3", "%\n%\n");
  CHECK(errorOf([&] { readFortunes(empty); }) == empty + ":2: no fortune entries (entries are separated by lines holding only %)");
  CHECK(errorOf([] { readFortunes("/nonexistent/fortunes"); }).find("/nonexistent/fortunes: cannot open") == 0);
  fs::remove(bin);
  fs::remove(empty);
}

TEST_CASE("tokenizeWords lowercases and keeps inner apostrophes") {
  std::vector<std::string> w = tokenizeWords("Don't PANIC -- 'quoted' x86, it's 42!");
  CHECK(w == std::vector<std::string>{"don't", "panic", "quoted", "x86", "it's", "42"});
  CHECK(tokenizeWords("  ...  ").empty());
  CHECK(tokenizeWords("caf\xc3\xa9 ol\xc3\xa9") == std::vector<std::string>{"caf\xc3\xa9", "ol\xc3\xa9"});
}

TEST_CASE("Vocabulary orders by count then alphabet and honours limits") {
  std::vector<std::vector<std::string>> docs = {{"b", "a", "c", "b"}, {"a", "d", "b"}, {"c"}};
  Vocabulary v = Vocabulary::build(docs, 1);
  REQUIRE(v.size() == 4);
  CHECK(v.word(0) == "b");
  CHECK(v.count(0) == 3);
  CHECK(v.word(1) == "a"); // a and c both twice: alphabetical
  CHECK(v.word(2) == "c");
  CHECK(v.word(3) == "d");
  CHECK(v.totalCount() == 8);
  CHECK(v.id("d") == 3);
  CHECK(v.id("zzz") == -1);
  CHECK(v.encode({"d", "zzz", "b"}) == std::vector<int32_t>{3, 0});
  Vocabulary v2 = Vocabulary::build(docs, 2, 2);
  CHECK(v2.size() == 2);
  CHECK(v2.word(1) == "a");
  CHECK(v2.totalCount() == 5);
}

TEST_CASE("loadUData reads MovieLens rows with 0-based ids") {
  std::string p = writeTemp("u1", "196\t242\t3\t881250949\n186 302 3.5 891717742\r\n");
  Ratings r = loadUData(p);
  REQUIRE(r.size() == 2);
  CHECK(r.users == std::vector<int32_t>{195, 185});
  CHECK(r.items == std::vector<int32_t>{241, 301});
  CHECK(r.values == std::vector<float>{3.0f, 3.5f});
  CHECK(r.numUsers == 196);
  CHECK(r.numItems == 302);
  fs::remove(p);
}

TEST_CASE("loadUData rejects malformed rows with file and line") {
  struct Case {
    const char* text;
    const char* error;
  };
  Case cases[] = {
      {"1\t2\t3\t4\n1\t2\t3\n", ":2: expected 4 fields (user item rating timestamp), found 3"},
      {"0\t2\t3\t4\n", ":1: user id '0' is not an integer in 1..2^30"},
      {"1\tx\t3\t4\n", ":1: item id 'x' is not an integer in 1..2^30"},
      {"1\t2\t3\t4\n1\t2\tnan\t4\n", ":2: rating 'nan' is not a finite number"},
      {"1\t2\t3\t-4\n", ":1: timestamp '-4' is not an integer >= 0"},
      {"1\t2\t3\t4\n\n1\t2\t3\t4\n", ":2: expected 4 fields (user item rating timestamp), found 0"},
  };
  for (const Case& c : cases) {
    std::string p = writeTemp("u2", c.text);
    CHECK(errorOf([&] { loadUData(p); }) == p + c.error);
    fs::remove(p);
  }
  std::string empty = writeTemp("u3", "");
  CHECK(errorOf([&] { loadUData(empty); }) == empty + ": no ratings");
  fs::remove(empty);
}

TEST_CASE("loadItemTitles reads u.item and names the missing ones") {
  std::string p = writeTemp("i1", "1|Toy Story (1995)|01-Jan-1995||http://x|0|0\n3|Four Rooms\xe9|x\n");
  std::vector<std::string> t = loadItemTitles(p, 4);
  CHECK(t == std::vector<std::string>{"Toy Story (1995)", "item 2", "Four Rooms\xC3\xA9", "item 4"});  // Latin-1 é
  std::string bad = writeTemp("i2", "1|a\nnope\n");
  CHECK(errorOf([&] { loadItemTitles(bad, 2); }) == bad + ":2: expected 'id|title|...' with an integer id >= 1");
  fs::remove(p);
  fs::remove(bad);
}

TEST_CASE("syntheticRatings are distinct, clipped, seeded pairs with the requested noise") {
  SyntheticRatingsOptions o;
  o.numUsers = 50;
  o.numItems = 40;
  o.count = 1500;
  Ratings a = syntheticRatings(o, 3), b = syntheticRatings(o, 3), c = syntheticRatings(o, 4);
  REQUIRE(a.size() == 1500);
  CHECK(a.values == b.values);
  CHECK(a.users == b.users);
  CHECK(a.values != c.values);
  std::set<std::pair<int32_t, int32_t>> pairs;
  double mean = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    pairs.insert({a.users[i], a.items[i]});
    CHECK(a.values[i] >= 1.0f);
    CHECK(a.values[i] <= 5.0f);
    mean += a.values[i];
  }
  CHECK(pairs.size() == 1500);
  CHECK(mean / 1500 == doctest::Approx(3.5).epsilon(0.05));
  SyntheticTruth truth;
  Ratings d = syntheticRatings(o, 3, &truth);
  CHECK(d.values == a.values);
  REQUIRE(truth.itemBias.size() == 40);
  REQUIRE(truth.userBias.size() == 50);
  double ss0 = 0;
  for (double b : truth.itemBias) ss0 += b * b;
  CHECK(std::sqrt(ss0 / 40) == doctest::Approx(0.5).epsilon(0.3));
  // without factors, biases and clipping the ratings are mean + noise
  o.factorStd = o.userBiasStd = o.itemBiasStd = 0;
  o.minRating = -100;
  o.maxRating = 100;
  Ratings n = syntheticRatings(o, 5);
  double ss = 0;
  for (float v : n.values) ss += (v - 3.5) * (v - 3.5);
  CHECK(std::sqrt(ss / n.size()) == doctest::Approx(0.5).epsilon(0.05));
}

TEST_CASE("splitRatings is a fixed 80/20 partition") {
  SyntheticRatingsOptions o;
  o.numUsers = 30;
  o.numItems = 30;
  o.count = 500;
  Ratings all = syntheticRatings(o, 1), tr, va, tr2, va2;
  splitRatings(all, 0.8, 9, tr, va);
  splitRatings(all, 0.8, 9, tr2, va2);
  CHECK(tr.size() == 400);
  CHECK(va.size() == 100);
  CHECK(tr.values == tr2.values);
  CHECK(va.users == va2.users);
  CHECK(va.numItems == 30);
  std::multiset<std::pair<int32_t, int32_t>> before, after;
  for (int64_t i = 0; i < all.size(); ++i) before.insert({all.users[i], all.items[i]});
  for (const Ratings* r : {&tr, &va})
    for (int64_t i = 0; i < r->size(); ++i) after.insert({r->users[i], r->items[i]});
  CHECK(before == after);
  CHECK(errorOf([&] { splitRatings(all, 1.0, 9, tr, va); }) == "splitRatings: train fraction must be in (0, 1), got 1");
}

TEST_CASE("nearestByCosine ranks rows by angle and skips the query") {
  // rows: x axis, 45 degrees, y axis, -x, a long vector near x
  std::vector<float> t = {1, 0, 1, 1, 0, 1, -1, 0, 10, 1};
  CHECK(cosineSimilarity(&t[0], &t[2], 2) == doctest::Approx(std::sqrt(0.5)));
  CHECK(cosineSimilarity(&t[0], &t[6], 2) == doctest::Approx(-1));
  std::vector<Neighbour> nn = nearestByCosine(t.data(), 5, 2, 0, 3);
  REQUIRE(nn.size() == 3);
  CHECK(nn[0].row == 4);
  CHECK(nn[1].row == 1);
  CHECK(nn[2].row == 2);
  std::vector<bool> allowed = {true, true, false, true, false};
  nn = nearestByCosine(t.data(), 5, 2, 0, 5, &allowed);
  REQUIRE(nn.size() == 2);
  CHECK(nn[0].row == 1);
  CHECK(nn[1].row == 3);
  CHECK(nn[1].similarity == doctest::Approx(-1));
}
