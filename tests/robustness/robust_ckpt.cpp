// The checkpoint tests' AOT program (linked with libkiln_rt only):
//   resume N M DIR   N steps, save, load into a fresh model, M more steps;
//                    exits 1 unless that equals N+M uninterrupted steps, bit
//                    for bit (every param, Adam moment, step counter, loss)
//   saver FILE       saves version 1, 2, 3, ... forever, printing each
//                    version once its save has returned (kill -9 target)
//   write FILE K     saves version K once
//   check FILE       loads FILE and prints its version; exits 1 unless every
//                    tensor holds exactly that version's values
// A version K fills every tensor with values that depend on K, the tensor
// and the element, so a torn or mixed file cannot pass `check`.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "RobustInputs.h"
#include "robust.h"

namespace {

float patternF(int64_t k, size_t t, size_t i) { return float(k) + float((t * 7 + i) % 1024) / 1024.0f; }
int32_t patternI(int64_t k, size_t t, size_t i) { return int32_t(k * 1000 + int64_t((t * 7 + i) % 1000)); }

size_t elements(const kiln::rt::CheckpointTensor& t) {
  size_t n = 1;
  for (int64_t d : t.shape) n *= size_t(d);
  return n;
}

void fillVersion(robust::Model& m, int64_t k) {
  auto ts = m.checkpointTensors();
  for (size_t t = 0; t < ts.size(); ++t)
    for (size_t i = 0; i < elements(ts[t]); ++i) {
      if (ts[t].dtype == kiln::rt::TensorDType::F32) static_cast<float*>(ts[t].data)[i] = patternF(k, t, i);
      else static_cast<int32_t*>(ts[t].data)[i] = patternI(k, t, i);
    }
}

// Every byte of every checkpoint tensor, for bitwise comparison.
std::vector<char> snapshot(const robust::Model& m) {
  std::vector<char> bytes;
  for (const auto& t : m.checkpointTensors()) {
    const char* p = static_cast<const char*>(t.data);
    bytes.insert(bytes.end(), p, p + elements(t) * 4);
  }
  return bytes;
}

std::vector<float> train(robust::Model& m, int from, int steps) {
  std::vector<float> losses;
  for (int s = from; s < from + steps; ++s) {
    robust::fillBatch(s, m.x(), m.y());
    m.trainStep();
    losses.push_back(m.trainStep_loss()[0]);
  }
  return losses;
}

bool sameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

int resume(int n, int mSteps, const std::string& dir) {
  std::string path = dir + "/resume.safetensors";
  auto* straight = new robust::Model;
  straight->init(robust::kSeed);
  std::vector<float> all = train(*straight, 0, n + mSteps);

  auto* first = new robust::Model;
  first->init(robust::kSeed);
  train(*first, 0, n);
  first->save(path);
  delete first;

  auto* resumed = new robust::Model;
  resumed->init(robust::kSeed + 1);  // different from the saved state, so load must overwrite it
  resumed->load(path);
  std::vector<float> tail = train(*resumed, n, mSteps);

  // Without the checkpoint the same steps give other numbers: the test can fail.
  auto* fresh = new robust::Model;
  fresh->init(robust::kSeed);
  std::vector<float> freshTail = train(*fresh, n, mSteps);

  std::vector<float> want(all.begin() + n, all.end());
  int bad = 0;
  if (!sameBits(tail, want)) {
    std::fprintf(stderr, "resume: losses of the resumed steps differ from the uninterrupted run\n");
    for (size_t i = 0; i < want.size(); ++i)
      std::fprintf(stderr, "  step %zu: resumed %a, uninterrupted %a\n", n + i, tail[i], want[i]);
    bad = 1;
  }
  if (snapshot(*resumed) != snapshot(*straight)) {
    std::fprintf(stderr, "resume: params or optimizer state differ after %d+%d steps\n", n, mSteps);
    bad = 1;
  }
  if (sameBits(freshTail, want)) {
    std::fprintf(stderr, "resume: a model that skipped the first %d steps matches too; the test proves nothing\n", n);
    bad = 1;
  }
  if (all.front() <= all.back()) {
    std::fprintf(stderr, "resume: the model did not train (loss %g -> %g)\n", all.front(), all.back());
    bad = 1;
  }
  delete straight;
  delete resumed;
  delete fresh;
  if (!bad) std::printf("resume: %d+%d steps bit-exact (%zu losses, %zu state bytes)\n", n, mSteps, want.size(),
                        snapshot(robust::Model()).size());
  return bad;
}

int check(const std::string& path) {
  robust::Model m;
  m.load(path);
  auto ts = m.checkpointTensors();
  int64_t k = int64_t(static_cast<float*>(ts[0].data)[0]);
  for (size_t t = 0; t < ts.size(); ++t)
    for (size_t i = 0; i < elements(ts[t]); ++i) {
      bool ok = ts[t].dtype == kiln::rt::TensorDType::F32 ? static_cast<float*>(ts[t].data)[i] == patternF(k, t, i)
                                                          : static_cast<int32_t*>(ts[t].data)[i] == patternI(k, t, i);
      if (!ok) {
        std::fprintf(stderr, "check: %s: tensor \"%s\" element %zu is not version %" PRId64 "'s value\n", path.c_str(),
                     ts[t].name.c_str(), i, k);
        return 1;
      }
    }
  std::printf("%" PRId64 "\n", k);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "resume" && argc == 5) return resume(std::atoi(argv[2]), std::atoi(argv[3]), argv[4]);
    if (mode == "check" && argc == 3) return check(argv[2]);
    if (mode == "write" && argc == 4) {
      robust::Model m;
      fillVersion(m, std::atoll(argv[3]));
      m.save(argv[2]);
      return 0;
    }
    if (mode == "saver" && argc == 3) {
      robust::Model m;
      for (int64_t k = 1;; ++k) {
        fillVersion(m, k);
        m.save(argv[2]);
        std::printf("%" PRId64 "\n", k);
        std::fflush(stdout);
      }
    }
  } catch (const kiln::rt::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: robust_ckpt resume N M DIR | saver FILE | write FILE K | check FILE\n");
  return 2;
}
