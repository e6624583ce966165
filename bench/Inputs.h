// The benchmark's inputs: which values each input gets, from a small
// deterministic generator. No kiln dependency, so the AOT runner (linked with
// libkiln_rt only) and the kiln-linked tool share it.
#pragma once

#include <cstdint>
#include <string_view>

namespace bench {

// What the benchmark feeds an input: values uniform in [0, hi), integers for
// i32 inputs (labels, user/item ids, characters), as torch_bench.py does
// (torch.rand, torch.rand * 5, torch.randint).
inline double inputRange(std::string_view input) {
  if (input == "y") return 10;
  if (input == "user") return 943;
  if (input == "item") return 1682;
  if (input == "rating") return 5;
  if (input == "xs" || input == "ys" || input == "src" || input == "tgt") return 65;
  return 1;  // x, a, b
}

// A small deterministic generator for the inputs (splitmix64).
class InputRng {
public:
  explicit InputRng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  void fill(float* p, int64_t n, double hi) {
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(uniform() * hi);
  }
  void fill(int32_t* p, int64_t n, double hi) {
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(next() % static_cast<uint64_t>(hi));
  }

private:
  uint64_t s_;
};

}  // namespace bench
