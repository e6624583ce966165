// u.data / u.item loading, synthetic low-rank ratings and the fixed split
// (see Ratings.h).
#include "kiln/rt/Ratings.h"

#include "kiln/rt/Error.h"
#include "kiln/rt/Random.h"
#include "kiln/rt/Utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

namespace kiln::rt {

// Splits on runs of tabs and spaces.
static std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == '\t' || line[i] == ' '))
      ++i;
    size_t start = i;
    while (i < line.size() && line[i] != '\t' && line[i] != ' ')
      ++i;
    if (i > start)
      out.push_back(line.substr(start, i - start));
  }
  return out;
}

// A field for a message: bytes outside printable ASCII as \xNN, so a
// damaged or non-UTF-8 file cannot garble it; cut after 40 bytes.
static std::string shown(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += c >= 0x20 && c < 0x7F ? std::string(1, static_cast<char>(c)) : strFormat("\\x%02X", c);
  }
  return s.size() > 40 ? out + "..." : out;
}

static bool parseInt(std::string_view s, int64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

static bool parseDouble(std::string_view s, double& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(v);
}

Ratings loadUData(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("%s: cannot open ratings file", path.c_str());
  Ratings r;
  std::string line;
  int64_t lineNo = 0;
  static constexpr int64_t kMaxId = int64_t(1) << 30;
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    const char* file = path.c_str();
    long long ln = static_cast<long long>(lineNo);
    std::vector<std::string_view> f = fields(line);
    if (f.size() != 4)
      fail("%s:%lld: expected 4 fields (user item rating timestamp), found %zu", file, ln, f.size());
    int64_t user, item, stamp;
    double rating;
    if (!parseInt(f[0], user) || user < 1 || user > kMaxId)
      fail("%s:%lld: user id '%s' is not an integer in 1..2^30", file, ln, shown(f[0]).c_str());
    if (!parseInt(f[1], item) || item < 1 || item > kMaxId)
      fail("%s:%lld: item id '%s' is not an integer in 1..2^30", file, ln, shown(f[1]).c_str());
    if (!parseDouble(f[2], rating))
      fail("%s:%lld: rating '%s' is not a finite number", file, ln, shown(f[2]).c_str());
    if (!parseInt(f[3], stamp) || stamp < 0)
      fail("%s:%lld: timestamp '%s' is not an integer >= 0", file, ln, shown(f[3]).c_str());
    r.users.push_back(static_cast<int32_t>(user - 1));
    r.items.push_back(static_cast<int32_t>(item - 1));
    r.values.push_back(static_cast<float>(rating));
    r.numUsers = std::max(r.numUsers, user);
    r.numItems = std::max(r.numItems, item);
  }
  if (in.bad())
    fail("%s:%lld: read error", path.c_str(), static_cast<long long>(lineNo));
  if (r.values.empty())
    fail("%s: no ratings", path.c_str());
  return r;
}

std::vector<std::string> loadItemTitles(const std::string& path, int64_t numItems, NonUtf8 nonUtf8) {
  std::vector<std::string> titles(static_cast<size_t>(numItems));
  for (int64_t i = 0; i < numItems; ++i)
    titles[static_cast<size_t>(i)] = "item " + std::to_string(i + 1);
  std::ifstream file(path, std::ios::binary);
  if (!file)
    fail("%s: cannot open item file", path.c_str());
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad())
    fail("%s: read error", path.c_str());
  std::istringstream in(decodeText(path, std::move(bytes), nonUtf8));
  std::vector<int64_t> firstLine(static_cast<size_t>(numItems), 0);
  std::string line;
  int64_t lineNo = 0;
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty())
      continue;
    size_t bar = line.find('|');
    int64_t id;
    if (bar == std::string::npos || !parseInt(std::string_view(line).substr(0, bar), id) || id < 1)
      fail("%s:%lld: expected 'id|title|...' with an integer id >= 1", path.c_str(),
           static_cast<long long>(lineNo));
    size_t end = line.find('|', bar + 1);
    std::string title = line.substr(bar + 1, end == std::string::npos ? std::string::npos : end - bar - 1);
    if (id > numItems)
      continue;
    int64_t& first = firstLine[static_cast<size_t>(id - 1)];
    if (first > 0)
      fail("%s:%lld: item id %lld appears again (first on line %lld)", path.c_str(), static_cast<long long>(lineNo),
           static_cast<long long>(id), static_cast<long long>(first));
    first = lineNo;
    titles[static_cast<size_t>(id - 1)] = title;
  }
  return titles;
}

Ratings syntheticRatings(const SyntheticRatingsOptions& o, uint64_t seed, SyntheticTruth* truth) {
  if (o.numUsers < 1 || o.numItems < 1 || o.rank < 1 || o.count < 1 || o.count > o.numUsers * o.numItems)
    fail("syntheticRatings: need users, items, rank >= 1 and 1 <= count <= users * items");
  // one stream per kind of draw, so changing one size leaves the others alone
  enum : uint64_t { kUserF = 1, kItemF, kUserB, kItemB, kPairs, kNoise };
  size_t nu = static_cast<size_t>(o.numUsers), ni = static_cast<size_t>(o.numItems);
  size_t k = static_cast<size_t>(o.rank);
  std::vector<double> uf(nu * k), vf(ni * k), ub(nu), ib(ni);
  for (size_t i = 0; i < uf.size(); ++i)
    uf[i] = o.factorStd * normal01(seed, kUserF, i);
  for (size_t i = 0; i < vf.size(); ++i)
    vf[i] = o.factorStd * normal01(seed, kItemF, i);
  for (size_t i = 0; i < nu; ++i)
    ub[i] = o.userBiasStd * normal01(seed, kUserB, i);
  for (size_t i = 0; i < ni; ++i)
    ib[i] = o.itemBiasStd * normal01(seed, kItemB, i);
  if (truth)
    *truth = {ub, ib};

  Ratings r;
  r.numUsers = o.numUsers;
  r.numItems = o.numItems;
  std::vector<uint8_t> taken(nu * ni, 0);
  uint64_t counter = 0;
  while (r.size() < o.count) {
    uint64_t pair = uniformBelow(nu * ni, seed, kPairs, counter++);
    if (taken[pair])
      continue;
    taken[pair] = 1;
    size_t u = pair / ni, i = pair % ni;
    double dot = 0;
    for (size_t f = 0; f < k; ++f)
      dot += uf[u * k + f] * vf[i * k + f];
    double v = o.mean + ub[u] + ib[i] + dot + o.noiseStd * normal01(seed, kNoise, r.values.size());
    r.users.push_back(static_cast<int32_t>(u));
    r.items.push_back(static_cast<int32_t>(i));
    r.values.push_back(static_cast<float>(std::clamp(v, o.minRating, o.maxRating)));
  }
  return r;
}

void splitRatings(const Ratings& all, double trainFraction, uint64_t splitSeed, Ratings& train,
                  Ratings& val) {
  if (!(trainFraction > 0 && trainFraction < 1))
    fail("splitRatings: train fraction must be in (0, 1), got %g", trainFraction);
  size_t n = all.values.size();
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i)
    order[i] = i;
  for (size_t i = n; i > 1; --i) // Fisher-Yates, counter-based
    std::swap(order[i - 1], order[uniformBelow(i, splitSeed, 0, i)]);
  size_t nTrain = static_cast<size_t>(std::llround(trainFraction * static_cast<double>(n)));
  for (Ratings* part : {&train, &val}) {
    *part = Ratings();
    part->numUsers = all.numUsers;
    part->numItems = all.numItems;
  }
  for (size_t j = 0; j < n; ++j) {
    Ratings& dst = j < nTrain ? train : val;
    size_t i = order[j];
    dst.users.push_back(all.users[i]);
    dst.items.push_back(all.items[i]);
    dst.values.push_back(all.values[i]);
  }
}

} // namespace kiln::rt
