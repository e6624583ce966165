// Two instances of the AOT model class trained in two threads at once give
// the same bits as the same two trained one after the other (links libkiln_rt
// only). Exits 1 on any difference in a loss or in a param or state byte.
#include <barrier>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "RobustInputs.h"
#include "robust.h"

namespace {

constexpr int kSteps = 12;

struct Run {
  std::vector<float> losses;
  std::vector<char> state;
};

Run train(int k, std::barrier<>* sync) {
  auto m = std::make_unique<robust::Model>();
  m->init(100 + static_cast<uint64_t>(k));
  Run r;
  for (int s = 0; s < kSteps; ++s) {
    if (sync) sync->arrive_and_wait();
    robust::fillBatch(1000 * k + s, m->x(), m->y());
    m->trainStep();
    r.losses.push_back(m->trainStep_loss()[0]);
  }
  for (const auto& t : m->checkpointTensors()) {
    size_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<size_t>(d);
    const char* p = static_cast<const char*>(t.data);
    r.state.insert(r.state.end(), p, p + n * 4);
  }
  return r;
}

bool same(const Run& x, const Run& y) {
  return x.losses.size() == y.losses.size() &&
         std::memcmp(x.losses.data(), y.losses.data(), x.losses.size() * sizeof(float)) == 0 && x.state == y.state;
}

}  // namespace

int main() {
  Run a = train(1, nullptr), b = train(2, nullptr);
  Run ta, tb;
  std::barrier<> sync(2);
  std::thread t1([&] { ta = train(1, &sync); });
  std::thread t2([&] { tb = train(2, &sync); });
  t1.join();
  t2.join();
  bool ok = same(ta, a) && same(tb, b) && !same(a, b) && a.losses.back() < a.losses.front();
  std::printf("two threads (AOT): losses %g -> %g and %g -> %g; %s\n", a.losses.front(), a.losses.back(), b.losses.front(),
              b.losses.back(), ok ? "bit-identical to one after the other" : "DIFFERENT from one after the other");
  return ok ? 0 : 1;
}
